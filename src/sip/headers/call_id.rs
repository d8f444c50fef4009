//! `Call-ID` (RFC 3261 §20.8): `word ["@" word]`, compared byte for byte.

use std::fmt;

use bytestring::ByteString;

use super::{HeaderError, HeaderName, TypedHeader};
use crate::sip::text::{is_word_char, is_ws, sub};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CallId(pub ByteString);

impl TypedHeader for CallId {
    const NAME: HeaderName = HeaderName::CallId;

    fn parse(src: &ByteString, s: &str) -> Result<CallId, HeaderError> {
        let s = s.trim_matches(is_ws);
        let mut parts = s.splitn(2, '@');
        let ok = |w: Option<&str>| w.is_some_and(|w| !w.is_empty() && w.chars().all(is_word_char));
        let first = parts.next();
        let second = parts.next();
        if !ok(first) || (second.is_some() && !ok(second)) {
            return Err(Self::err("not a word[@word]"));
        }
        Ok(CallId(sub(src, s)))
    }
}

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words() {
        assert!(CallId::parse_str("intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{").is_ok());
        assert!(CallId::parse_str("a@b@c").is_err());
        assert!(CallId::parse_str("").is_err());
        assert!(CallId::parse_str("has space").is_err());
    }
}
