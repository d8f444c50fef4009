//! Addresses-of-record in canonical form (RFC 3261 §10.3 step 5): `sip:user@host` with
//! URI parameters dropped, the host lower-cased, the user part's case kept and its escapes
//! normalised (unescaped, then re-escaped only where the grammar needs it, upper-case hex).
//! A `%00` therefore stays `%00`: the AOR is never cut short at a NUL octet.

use std::fmt;

use crate::sip::SipUri;
use crate::sip::text::{is_unreserved_byte, unescape};

/// A canonical address-of-record. Shared text: the binding table's key, the expiry
/// queue, persistence and events all hold the same allocation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Aor(std::sync::Arc<str>);

fn user_byte_ok(b: u8) -> bool {
    is_unreserved_byte(b) || matches!(b, b'&' | b'=' | b'+' | b'$' | b',' | b';' | b'?' | b'/')
}

impl Aor {
    /// The AOR of a SIP or SIPS URI.
    pub fn from_uri(uri: &SipUri) -> Aor {
        let mut s = String::with_capacity(64);
        s.push_str(if uri.secure { "sips:" } else { "sip:" });
        if let Some(user) = &uri.user {
            for b in unescape(user) {
                if user_byte_ok(b) {
                    s.push(b as char);
                } else {
                    s.push_str(&format!("%{b:02X}"));
                }
            }
            s.push('@');
        }
        s.push_str(&uri.host.to_ascii_lowercase());
        Aor(s.into())
    }

    /// Parses a canonical AOR string back (as stored or given on the admin API).
    pub fn parse(text: &str) -> Option<Aor> {
        let src = bytestring::ByteString::from(text.trim());
        match crate::sip::Uri::parse(&src, &src).ok()? {
            crate::sip::Uri::Sip(u) => Some(Aor::from_uri(&u)),
            crate::sip::Uri::Other { .. } => None,
        }
    }

    /// An AOR read back from the store: taken as it is when it is already in canonical
    /// form (what [`Aor::from_uri`] writes), else parsed. Loading a million bindings
    /// should not run the SIP URI parser a million times on text sipreg wrote itself.
    pub fn from_stored(text: String) -> Option<Aor> {
        if Aor::is_canonical(&text) {
            return Some(Aor(text.into()));
        }
        Aor::parse(&text)
    }

    /// `sip:` or `sips:`, an optional user part of allowed or %XX-escaped octets and
    /// `@`, then a lower-case host of name characters (or an IPv6 reference).
    fn is_canonical(text: &str) -> bool {
        let Some(rest) = text
            .strip_prefix("sip:")
            .or_else(|| text.strip_prefix("sips:"))
        else {
            return false;
        };
        let (user, host) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        if let Some(user) = user {
            let b = user.as_bytes();
            let mut i = 0;
            if b.is_empty() {
                return false;
            }
            while i < b.len() {
                if b[i] == b'%' {
                    // An escape is only kept for an octet that may not appear as itself.
                    let hex = |c: u8| match c {
                        b'0'..=b'9' => Some(c - b'0'),
                        b'A'..=b'F' => Some(c - b'A' + 10),
                        _ => None,
                    };
                    let value = match (
                        b.get(i + 1).and_then(|c| hex(*c)),
                        b.get(i + 2).and_then(|c| hex(*c)),
                    ) {
                        (Some(h), Some(l)) => h * 16 + l,
                        _ => return false,
                    };
                    if user_byte_ok(value) {
                        return false;
                    }
                    i += 3;
                } else if user_byte_ok(b[i]) {
                    i += 1;
                } else {
                    return false;
                }
            }
        }
        if let Some(v6) = host.strip_prefix('[') {
            return v6.strip_suffix(']').is_some_and(|inner| {
                !inner.is_empty()
                    && inner
                        .bytes()
                        .all(|c| c.is_ascii_digit() || matches!(c, b'a'..=b'f' | b':' | b'.'))
            });
        }
        !host.is_empty()
            && host
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'-'))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The user part, still escaped (`None` for a bare domain AOR).
    pub fn user(&self) -> Option<&str> {
        let rest = self.0.split_once(':')?.1;
        rest.rsplit_once('@').map(|(u, _)| u)
    }

    pub fn host(&self) -> &str {
        let rest = self.0.split_once(':').map_or(&*self.0, |(_, r)| r);
        rest.rsplit_once('@').map_or(rest, |(_, h)| h)
    }
}

impl fmt::Display for Aor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aor(s: &str) -> Aor {
        Aor::parse(s).unwrap()
    }

    #[test]
    fn stored_text_is_taken_as_is_only_when_parsing_would_give_it_back() {
        for text in [
            "sip:alice@example.com",
            "sips:Alice@example.com",
            "sip:example.com",
            "sip:user%20x@[2001:db8::1]",
            "sip:%61lice@example.com",
            "sip:alice@Example.com",
            "sip:alice@example.com:5060",
            "sip:alice@example.com;transport=tcp",
            "sip:a%2@example.com",
            "tel:+1555",
            "sip:@example.com",
        ] {
            let parsed = Aor::parse(text).map(|a| a.as_str().to_owned());
            if Aor::is_canonical(text) {
                assert_eq!(parsed.as_deref(), Some(text), "{text} taken as canonical");
            }
            assert_eq!(
                Aor::from_stored(text.to_owned()).map(|a| a.as_str().to_owned()),
                parsed,
                "{text}"
            );
        }
        assert!(Aor::is_canonical("sip:alice@example.com"));
        assert!(Aor::is_canonical("sip:user%20x@[2001:db8::1]"));
        assert!(!Aor::is_canonical("sip:%61lice@example.com"));
        assert!(!Aor::is_canonical("sip:alice@example.com:5060"));
    }

    #[test]
    fn canonical_forms() {
        assert_eq!(
            aor("sip:%61lice@AtLanta.COM;transport=tcp").as_str(),
            "sip:alice@atlanta.com"
        );
        assert_eq!(
            aor("sip:Alice@example.com").as_str(),
            "sip:Alice@example.com"
        );
        assert_eq!(
            aor("sip:null-%00-null@example.com").as_str(),
            "sip:null-%00-null@example.com"
        );
        assert_eq!(aor("sip:a%2fb@x").as_str(), "sip:a/b@x");
        assert_eq!(aor("sip:a%40b@x").as_str(), "sip:a%40b@x");
        assert_eq!(
            aor("sip:alice@example.com:5070").as_str(),
            "sip:alice@example.com"
        );
        assert_eq!(aor("sip:alice@example.com").user(), Some("alice"));
        assert_eq!(aor("sip:alice@example.com").host(), "example.com");
        assert!(Aor::parse("tel:+1234").is_none());
    }
}
