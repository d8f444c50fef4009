//! `Allow-Events` / `u` (RFC 6665 §8.2.2): event packages a notifier supports.

use crate::sip::text::TrimWs;
use std::fmt;

use bytestring::ByteString;

use super::{HeaderError, HeaderName, TypedHeader};
use crate::sip::text::{is_token_char, sub};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowEvents(pub ByteString);

impl TypedHeader for AllowEvents {
    const NAME: HeaderName = HeaderName::AllowEvents;
    const LIST: bool = true;

    fn parse(src: &ByteString, s: &str) -> Result<AllowEvents, HeaderError> {
        let s = s.trim_ws();
        if s.is_empty() || !s.chars().all(is_token_char) {
            return Err(Self::err("not an event type"));
        }
        Ok(AllowEvents(sub(src, s)))
    }
}

impl fmt::Display for AllowEvents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        assert_eq!(
            AllowEvents::parse_str("presence").unwrap().to_string(),
            "presence"
        );
        assert!(AllowEvents::parse_str("pres ence").is_err());
    }
}
