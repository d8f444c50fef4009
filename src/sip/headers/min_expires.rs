//! `Min-Expires` (RFC 3261 §20.23): sent with 423 Interval Too Brief.

use std::fmt;

use bytestring::ByteString;

use super::{HeaderError, HeaderName, TypedHeader, parse_u32};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinExpires(pub u32);

impl TypedHeader for MinExpires {
    const NAME: HeaderName = HeaderName::MinExpires;

    fn parse(_src: &ByteString, s: &str) -> Result<MinExpires, HeaderError> {
        parse_u32(s)
            .map(MinExpires)
            .ok_or(Self::err("not delta-seconds"))
    }
}

impl fmt::Display for MinExpires {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        assert_eq!(MinExpires::parse_str("60").unwrap().to_string(), "60");
        assert!(MinExpires::parse_str("-60").is_err());
    }
}
