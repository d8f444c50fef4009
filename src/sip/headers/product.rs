//! `User-Agent` and `Server` (RFC 3261 §20.41, §20.35): free text kept as sent.

use crate::sip::text::TrimWs;
use std::fmt;

use bytestring::ByteString;

use super::{HeaderError, HeaderName, TypedHeader};
use crate::sip::text::sub;

fn product_text(src: &ByteString, s: &str) -> Option<ByteString> {
    let s = s.trim_ws();
    (!s.is_empty() && !s.contains(['\r', '\n'])).then(|| sub(src, s))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserAgent(pub ByteString);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server(pub ByteString);

impl TypedHeader for UserAgent {
    const NAME: HeaderName = HeaderName::UserAgent;

    fn parse(src: &ByteString, s: &str) -> Result<UserAgent, HeaderError> {
        product_text(src, s)
            .map(UserAgent)
            .ok_or(Self::err("empty"))
    }
}

impl TypedHeader for Server {
    const NAME: HeaderName = HeaderName::Server;

    fn parse(src: &ByteString, s: &str) -> Result<Server, HeaderError> {
        product_text(src, s).map(Server).ok_or(Self::err("empty"))
    }
}

impl fmt::Display for UserAgent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for Server {
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
            UserAgent::parse_str(" SIPimp.org/0.2.5 (curses)")
                .unwrap()
                .to_string(),
            "SIPimp.org/0.2.5 (curses)"
        );
        assert!(Server::parse_str("  ").is_err());
    }
}
