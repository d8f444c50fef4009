//! `Expires` (RFC 3261 §20.19): delta-seconds. A value too large for 32 bits is an error
//! here; the registrar then falls back to its default, as §20.19 asks for malformed values.

use bytestring::ByteString;

use super::{HeaderError, HeaderName, TypedHeader, parse_u32, u32_header};

u32_header!(
    /// Delta-seconds until a binding, subscription or publication expires.
    Expires,
    HeaderName::Expires,
    "not delta-seconds"
);

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
