//! One registered contact of an address-of-record, as much as a registrar must remember
//! of it (RFC 3261 §10.3, RFC 5626 instance and reg-id, RFC 3327 Path) and no more: the
//! strings are owned and compact, never slices of a receive buffer.

use std::net::SocketAddr;

use bytestring::ByteString;

use crate::sip::{SipUri, Uri};
use crate::transport::Transport;

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

    /// The value of a Contact header field listing this binding in a 200 OK. Written
    /// without the formatting machinery, into one exactly sized string: it runs for
    /// every binding listed in every 200 OK.
    pub fn contact_value(&self, now: u64) -> String {
        let mut num = itoa::Buffer::new();
        let expires = num.format(self.remaining(now));
        let mut v = String::with_capacity(
            self.uri.len()
                + expires.len()
                + 11
                + self.q.map_or(0, |_| 9)
                + self.instance.as_ref().map_or(0, |i| i.len() + 16)
                + self.reg_id.map_or(0, |_| 18),
        );
        v.push('<');
        v.push_str(&self.uri);
        v.push_str(">;expires=");
        v.push_str(expires);
        if let Some(q) = self.q {
            v.push_str(";q=");
            if q == 1000 {
                v.push('1');
            } else {
                // `0.` and the thousandths padded to three digits, trailing zeros dropped.
                let digits = num.format(q);
                let kept = digits.trim_end_matches('0');
                if kept.is_empty() {
                    v.push('0');
                } else {
                    v.push_str("0.");
                    for _ in digits.len()..3 {
                        v.push('0');
                    }
                    v.push_str(kept);
                }
            }
        }
        if let Some(i) = &self.instance {
            v.push_str(";+sip.instance=\"");
            v.push_str(i);
            v.push('"');
        }
        if let Some(r) = self.reg_id {
            v.push_str(";reg-id=");
            v.push_str(num.format(r));
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

    /// The straightforward `format!` version [`Binding::contact_value`] must agree with.
    fn contact_value_reference(b: &Binding, now: u64) -> String {
        let mut v = format!("<{}>;expires={}", b.uri, b.remaining(now));
        if let Some(q) = b.q {
            let q = if q == 1000 {
                "1".to_string()
            } else {
                format!("0.{:03}", q).trim_end_matches('0').to_string()
            };
            v.push_str(";q=");
            v.push_str(if q == "0." { "0" } else { &q });
        }
        if let Some(i) = &b.instance {
            v.push_str(&format!(";+sip.instance=\"{i}\""));
        }
        if let Some(r) = b.reg_id {
            v.push_str(&format!(";reg-id={r}"));
        }
        v
    }

    #[test]
    fn contact_value_agrees_with_the_format_version() {
        let mut b = Binding::sample();
        for q in [
            None,
            Some(0),
            Some(1),
            Some(5),
            Some(10),
            Some(50),
            Some(99),
            Some(100),
        ]
        .into_iter()
        .chain([
            Some(120),
            Some(500),
            Some(999),
            Some(1000),
            Some(1500),
            Some(u16::MAX),
        ]) {
            for (instance, reg_id) in [
                (None, None),
                (Some("<urn:uuid:abc>"), Some(1)),
                (Some("x"), None),
                (None, Some(u32::MAX)),
            ] {
                b.q = q;
                b.instance = instance.map(Into::into);
                b.reg_id = reg_id;
                for now in [0, 400, 999, 1_000, 5_000] {
                    assert_eq!(b.contact_value(now), contact_value_reference(&b, now));
                }
            }
        }
    }
}
