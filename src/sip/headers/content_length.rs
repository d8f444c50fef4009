//! `Content-Length` / `l` (RFC 3261 §20.14): body size in octets; framing on streams.

use bytestring::ByteString;

use super::{HeaderError, HeaderName, TypedHeader, parse_u32, u32_header};

u32_header!(
    /// Body size in octets.
    ContentLength,
    HeaderName::ContentLength,
    "not a non-negative integer"
);

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
