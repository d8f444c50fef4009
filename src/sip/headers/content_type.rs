//! `Content-Type` / `c` (RFC 3261 §20.15): `type/subtype *(;param)`.

use crate::sip::text::TrimWs;
use std::fmt;

use bytestring::ByteString;

use super::{HeaderError, HeaderName, TypedHeader};
use crate::sip::params::{Params, header_params};
use crate::sip::text::{sep, sub, token};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentType {
    pub mtype: ByteString,
    pub subtype: ByteString,
    pub params: Params,
}

impl ContentType {
    /// Case-insensitive match on `type/subtype`, parameters ignored.
    pub fn is(&self, mtype: &str, subtype: &str) -> bool {
        self.mtype.eq_ignore_ascii_case(mtype) && self.subtype.eq_ignore_ascii_case(subtype)
    }
}

impl TypedHeader for ContentType {
    const NAME: HeaderName = HeaderName::ContentType;

    fn parse(src: &ByteString, s: &str) -> Result<ContentType, HeaderError> {
        let s = s.trim_ws();
        let (rest, mtype) = token(s).map_err(|_| Self::err("bad media type"))?;
        let (rest, _) = sep("/")(rest).map_err(|_| Self::err("missing '/'"))?;
        let (rest, subtype) = token(rest).map_err(|_| Self::err("bad media subtype"))?;
        let (rest, params) = header_params(src, rest).map_err(|_| Self::err("bad parameter"))?;
        if !rest.trim_ws().is_empty() {
            return Err(Self::err("unexpected characters"));
        }
        Ok(ContentType {
            mtype: sub(src, mtype),
            subtype: sub(src, subtype),
            params,
        })
    }
}

impl fmt::Display for ContentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}{}", self.mtype, self.subtype, self.params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        let c = ContentType::parse_str("multipart/mixed;boundary=7a9cbec02ceef655").unwrap();
        assert!(c.is("Multipart", "MIXED"));
        assert_eq!(c.params.value("boundary"), Some("7a9cbec02ceef655"));
        assert!(ContentType::parse_str("application").is_err());
    }
}
