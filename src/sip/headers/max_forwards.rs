//! `Max-Forwards` (RFC 3261 §20.22). sipreg is the final recipient, so the value only
//! has to be well formed; zero is processed like any other value (RFC 4475 §3.3.11).

use bytestring::ByteString;

use super::{HeaderError, HeaderName, TypedHeader, parse_u32, u32_header};

u32_header!(
    /// Hops a request may still take.
    MaxForwards,
    HeaderName::MaxForwards,
    "not a number"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        assert_eq!(MaxForwards::parse_str("0068").unwrap(), MaxForwards(68));
        assert_eq!(MaxForwards::parse_str("0").unwrap(), MaxForwards(0));
        assert!(MaxForwards::parse_str("x").is_err());
    }
}
