//! `Call-ID` (RFC 3261 §20.8): `word ["@" word]`, compared byte for byte.

use crate::sip::text::TrimWs;
use std::fmt;

use bytestring::ByteString;

use super::{HeaderError, HeaderName, TypedHeader};
use crate::sip::text::{is_word_byte, sub};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CallId(pub ByteString);

impl TypedHeader for CallId {
    const NAME: HeaderName = HeaderName::CallId;

    fn parse(src: &ByteString, s: &str) -> Result<CallId, HeaderError> {
        let s = s.trim_ws();
        let ok = |w: &str| !w.is_empty() && w.bytes().all(is_word_byte);
        let valid = match crate::sip::text::find_byte(b'@', s.as_bytes()) {
            Some(at) => ok(&s[..at]) && ok(&s[at + 1..]),
            None => ok(s),
        };
        if !valid {
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
