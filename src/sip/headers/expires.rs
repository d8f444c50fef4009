//! `Expires` (RFC 3261 §20.19): delta-seconds. A value too large for 32 bits is an error
//! here; the registrar then falls back to its default, as §20.19 asks for malformed values.

use std::fmt;

use bytestring::ByteString;

use super::{HeaderError, HeaderName, TypedHeader, parse_u32};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expires(pub u32);

impl TypedHeader for Expires {
    const NAME: HeaderName = HeaderName::Expires;

    fn parse(_src: &ByteString, s: &str) -> Result<Expires, HeaderError> {
        parse_u32(s)
            .map(Expires)
            .ok_or(Self::err("not delta-seconds"))
    }
}

impl fmt::Display for Expires {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        assert_eq!(Expires::parse_str(" 3600 ").unwrap(), Expires(3600));
        assert!(Expires::parse_str("10000000000000000000").is_err());
        assert!(Expires::parse_str("Thu, 01 Dec 1994 16:00:00 GMT").is_err());
    }
}
