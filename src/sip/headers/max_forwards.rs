//! `Max-Forwards` (RFC 3261 §20.22). sipreg is the final recipient, so the value only
//! has to be well formed; zero is processed like any other value (RFC 4475 §3.3.11).

use std::fmt;

use bytestring::ByteString;

use super::{HeaderError, HeaderName, TypedHeader, parse_u32};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxForwards(pub u32);

impl TypedHeader for MaxForwards {
    const NAME: HeaderName = HeaderName::MaxForwards;

    fn parse(_src: &ByteString, s: &str) -> Result<MaxForwards, HeaderError> {
        parse_u32(s)
            .map(MaxForwards)
            .ok_or(Self::err("not a number"))
    }
}

impl fmt::Display for MaxForwards {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

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
