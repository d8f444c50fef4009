//! One registered contact of an address-of-record, as much as a registrar must remember
//! of it (RFC 3261 §10.3, RFC 5626 instance and reg-id, RFC 3327 Path) and no more: the
//! strings are owned and compact, never slices of a receive buffer.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytestring::ByteString;

use crate::server::Transport;
use crate::sip::{SipUri, Uri};

/// Where the REGISTER came from (for NAT traversal and connection reuse).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    pub transport: Transport,
    pub addr: SocketAddr,
    /// The TCP connection it arrived on.
    pub connection: Option<u64>,
}

/// A binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// Unique for the life of the process (expiry bookkeeping).
    pub id: u64,
    /// The Contact URI exactly as registered (escapes and URI parameters kept).
    pub uri: Box<str>,
    /// `+sip.instance` without quotes, e.g. `<urn:uuid:...>`.
    pub instance: Option<Box<str>>,
    pub reg_id: Option<u32>,
    /// q in thousandths.
    pub q: Option<u16>,
    /// Absolute expiry, Unix seconds.
    pub expires_at: u64,
    pub call_id: Box<str>,
    pub cseq: u32,
    /// Path header values (RFC 3327), in order.
    pub path: Vec<Box<str>>,
    pub source: Source,
    pub user_agent: Option<Box<str>>,
    /// Unix seconds when first registered.
    pub registered_at: u64,
}

/// Unix seconds now.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

impl Binding {
    /// Seconds left before expiry.
    pub fn remaining(&self, now: u64) -> u64 {
        self.expires_at.saturating_sub(now)
    }

    /// The stored URI parsed again (it was valid when stored).
    pub fn parsed_uri(&self) -> Option<SipUri> {
        let s = ByteString::from(&*self.uri);
        match Uri::parse(&s, &s).ok()? {
            Uri::Sip(u) => Some(u),
            Uri::Other { .. } => None,
        }
    }

    /// RFC 5626 identity when the contact carries an instance id.
    pub fn same_instance(&self, instance: &str, reg_id: Option<u32>) -> bool {
        self.instance.as_deref() == Some(instance) && self.reg_id == reg_id
    }

    /// The value of a Contact header field listing this binding in a 200 OK.
    pub fn contact_value(&self, now: u64) -> String {
        let mut v = format!("<{}>;expires={}", self.uri, self.remaining(now));
        if let Some(q) = self.q {
            let q = if q == 1000 {
                "1".to_string()
            } else {
                format!("0.{:03}", q).trim_end_matches('0').to_string()
            };
            v.push_str(";q=");
            v.push_str(if q == "0." { "0" } else { &q });
        }
        if let Some(i) = &self.instance {
            v.push_str(&format!(";+sip.instance=\"{i}\""));
        }
        if let Some(r) = self.reg_id {
            v.push_str(&format!(";reg-id={r}"));
        }
        v
    }
}

#[cfg(test)]
impl Binding {
    /// A binding with every kind of field set, for unit tests.
    pub(crate) fn sample() -> Binding {
        Binding {
            id: 1,
            uri: "sip:alice@192.0.2.4:5060;transport=tcp".into(),
            instance: Some("<urn:uuid:abc>".into()),
            reg_id: Some(1),
            q: Some(500),
            expires_at: 1_000,
            call_id: "c".into(),
            cseq: 1,
            path: Vec::new(),
            source: Source {
                transport: Transport::Udp,
                addr: SocketAddr::from(([127, 0, 0, 1], 5060)),
                connection: None,
            },
            user_agent: None,
            registered_at: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding() -> Binding {
        Binding::sample()
    }

    #[test]
    fn contact_value_prints_remaining_and_params() {
        let b = binding();
        assert_eq!(
            b.contact_value(400),
            "<sip:alice@192.0.2.4:5060;transport=tcp>;expires=600;q=0.5;+sip.instance=\"<urn:uuid:abc>\";reg-id=1"
        );
        let mut b = binding();
        b.q = Some(0);
        b.instance = None;
        b.reg_id = None;
        assert_eq!(
            b.contact_value(2_000),
            "<sip:alice@192.0.2.4:5060;transport=tcp>;expires=0;q=0"
        );
        assert!(b.parsed_uri().is_some());
    }
}
