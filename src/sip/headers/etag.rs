//! `SIP-ETag` and `SIP-If-Match` (RFC 3903 §11.3): entity-tags of a publication.

use crate::sip::text::TrimWs;
use std::fmt;

use bytestring::ByteString;

use super::{HeaderError, HeaderName, TypedHeader};
use crate::sip::text::{is_token_char, sub};

fn entity_tag(src: &ByteString, s: &str) -> Option<ByteString> {
    let s = s.trim_ws();
    (!s.is_empty() && s.chars().all(is_token_char)).then(|| sub(src, s))
}

/// The entity-tag a server assigns to a publication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipETag(pub ByteString);

/// The entity-tag a client refreshes, modifies or removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipIfMatch(pub ByteString);

impl TypedHeader for SipETag {
    const NAME: HeaderName = HeaderName::SipETag;

    fn parse(src: &ByteString, s: &str) -> Result<SipETag, HeaderError> {
        entity_tag(src, s)
            .map(SipETag)
            .ok_or(Self::err("not a token"))
    }
}

impl TypedHeader for SipIfMatch {
    const NAME: HeaderName = HeaderName::SipIfMatch;

    fn parse(src: &ByteString, s: &str) -> Result<SipIfMatch, HeaderError> {
        entity_tag(src, s)
            .map(SipIfMatch)
            .ok_or(Self::err("not a token"))
    }
}

impl fmt::Display for SipETag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for SipIfMatch {
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
            SipETag::parse_str("dx200xyz").unwrap().to_string(),
            "dx200xyz"
        );
        assert!(SipIfMatch::parse_str("a, b").is_err());
    }
}
