//! `CSeq` (RFC 3261 §20.16): a 32-bit sequence number and the request method.

use crate::sip::text::TrimWs;
use std::fmt;

use bytestring::ByteString;

use super::{HeaderError, HeaderName, TypedHeader, parse_u32};
use crate::sip::method::Method;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    pub seq: u32,
    pub method: Method,
}

impl TypedHeader for CSeq {
    const NAME: HeaderName = HeaderName::CSeq;

    fn parse(src: &ByteString, s: &str) -> Result<CSeq, HeaderError> {
        let s = s.trim_ws();
        let split =
            memchr::memchr2(b' ', b'\t', s.as_bytes()).ok_or(Self::err("missing method"))?;
        let seq =
            parse_u32(&s[..split]).ok_or(Self::err("sequence number is not a 32-bit integer"))?;
        let method = Method::parse(src, s[split..].trim_ws()).ok_or(Self::err("invalid method"))?;
        Ok(CSeq { seq, method })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_limits() {
        let c = CSeq::parse_str("0009 \t INVITE").unwrap();
        assert_eq!((c.seq, c.method), (9, Method::Invite));
        assert_eq!(
            CSeq::parse_str("4294967295 REGISTER").unwrap().seq,
            u32::MAX
        );
        assert!(CSeq::parse_str("4294967296 REGISTER").is_err());
        assert!(CSeq::parse_str("36893488147419103232 REGISTER").is_err());
        assert!(CSeq::parse_str("-1 REGISTER").is_err());
        assert!(CSeq::parse_str("12").is_err());
        assert_eq!(
            CSeq::parse_str("7 OPTIONS").unwrap().to_string(),
            "7 OPTIONS"
        );
    }
}
