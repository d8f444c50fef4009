//! `Content-Length` / `l` (RFC 3261 §20.14): body size in octets; framing on streams.

use std::fmt;

use bytestring::ByteString;

use super::{HeaderError, HeaderName, TypedHeader, parse_u32};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentLength(pub u32);

impl TypedHeader for ContentLength {
    const NAME: HeaderName = HeaderName::ContentLength;

    fn parse(_src: &ByteString, s: &str) -> Result<ContentLength, HeaderError> {
        parse_u32(s)
            .map(ContentLength)
            .ok_or(Self::err("not a non-negative integer"))
    }
}

impl fmt::Display for ContentLength {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        assert_eq!(ContentLength::parse_str("150").unwrap(), ContentLength(150));
        assert!(ContentLength::parse_str("-999").is_err());
        assert!(ContentLength::parse_str("").is_err());
    }
}
