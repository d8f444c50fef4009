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
