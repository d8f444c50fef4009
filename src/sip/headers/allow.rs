//! `Allow` (RFC 3261 §20.5): the methods a server accepts. A list element is one method.

use crate::sip::text::TrimWs;
use std::fmt;

use bytestring::ByteString;

use super::{HeaderError, HeaderName, TypedHeader};
use crate::sip::method::Method;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allow(pub Method);

impl TypedHeader for Allow {
    const NAME: HeaderName = HeaderName::Allow;
    const LIST: bool = true;

    fn parse(src: &ByteString, s: &str) -> Result<Allow, HeaderError> {
        Method::parse(src, s.trim_ws())
            .map(Allow)
            .ok_or(Self::err("not a method"))
    }
}

impl fmt::Display for Allow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods() {
        assert_eq!(Allow::parse_str("REGISTER").unwrap().0, Method::Register);
        assert!(Allow::parse_str("NOT A METHOD").is_err());
    }
}
