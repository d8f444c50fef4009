//! `Min-Expires` (RFC 3261 §20.23): sent with 423 Interval Too Brief.

use bytestring::ByteString;

use super::{HeaderError, HeaderName, TypedHeader, parse_u32, u32_header};

u32_header!(
    /// The shortest expiry the server accepts.
    MinExpires,
    HeaderName::MinExpires,
    "not delta-seconds"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        assert_eq!(MinExpires::parse_str("60").unwrap().to_string(), "60");
        assert!(MinExpires::parse_str("-60").is_err());
    }
}
