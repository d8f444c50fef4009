//! `Subscription-State` (RFC 6665 §8.2.3): `active;expires=N`, `terminated;reason=...`.

use crate::sip::text::TrimWs;
use std::fmt;

use bytestring::ByteString;

use super::{HeaderError, HeaderName, TypedHeader, parse_u32};
use crate::sip::params::{Params, header_params};
use crate::sip::text::{sub, token};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionState {
    /// `active`, `pending`, `terminated` or an extension value.
    pub state: ByteString,
    pub params: Params,
}

impl SubscriptionState {
    pub fn expires(&self) -> Option<u32> {
        self.params.value("expires").and_then(parse_u32)
    }

    pub fn reason(&self) -> Option<&str> {
        self.params.value("reason")
    }
}

impl TypedHeader for SubscriptionState {
    const NAME: HeaderName = HeaderName::SubscriptionState;

    fn parse(src: &ByteString, s: &str) -> Result<SubscriptionState, HeaderError> {
        let s = s.trim_ws();
        let (rest, state) = token(s).map_err(|_| Self::err("bad state"))?;
        let (rest, params) = header_params(src, rest).map_err(|_| Self::err("bad parameter"))?;
        if !rest.trim_ws().is_empty() {
            return Err(Self::err("unexpected characters"));
        }
        Ok(SubscriptionState {
            state: sub(src, state),
            params,
        })
    }
}

impl fmt::Display for SubscriptionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.state, self.params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        let s = SubscriptionState::parse_str("terminated;reason=timeout").unwrap();
        assert_eq!(s.reason(), Some("timeout"));
        assert_eq!(
            SubscriptionState::parse_str("active;expires=600")
                .unwrap()
                .expires(),
            Some(600)
        );
    }
}
