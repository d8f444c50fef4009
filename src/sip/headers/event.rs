//! `Event` / `o` (RFC 6665 §8.2.1): an event package with parameters such as `id`.

use crate::sip::text::TrimWs;
use std::fmt;

use bytestring::ByteString;

use super::{HeaderError, HeaderName, TypedHeader};
use crate::sip::params::{Params, header_params};
use crate::sip::text::{sub, token};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The event type, e.g. `presence` (template packages such as `presence.winfo` kept whole).
    pub package: ByteString,
    pub params: Params,
}

impl Event {
    pub fn id(&self) -> Option<&str> {
        self.params.value("id")
    }
}

impl TypedHeader for Event {
    const NAME: HeaderName = HeaderName::Event;

    fn parse(src: &ByteString, s: &str) -> Result<Event, HeaderError> {
        let s = s.trim_ws();
        let (rest, package) = token(s).map_err(|_| Self::err("bad event type"))?;
        let (rest, params) = header_params(src, rest).map_err(|_| Self::err("bad parameter"))?;
        if !rest.trim_ws().is_empty() {
            return Err(Self::err("unexpected characters"));
        }
        Ok(Event {
            package: sub(src, package),
            params,
        })
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.package, self.params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        let e = Event::parse_str("presence;id=7").unwrap();
        assert_eq!((&*e.package, e.id()), ("presence", Some("7")));
        assert!(Event::parse_str("presence;").is_err());
    }
}
