//! SIP Digest authentication (RFC 3261 §22, RFC 2617, RFC 8760) for phones that do not
//! speak Bearer: SHA-256 and MD5, `qop=auth`, stateless nonces, a bounded nonce-count
//! record against replays, constant-time comparison.
//!
//! A nonce is `base64url(issued-at ‖ salt ‖ HMAC-SHA256(secret, issued-at ‖ salt ‖
//! realm)[..16])`: the server keeps no state to check it, every nonce is unique (the random
//! salt), and an old one is recognised as stale (RFC 2617 `stale=true`) rather than wrong.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dashmap::DashMap;
use hmac::{Hmac, KeyInit, Mac};
use md5::Md5;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use bytestring::ByteString;

use crate::sip::headers::{AuthData, AuthValue, WwwAuthenticate};
use crate::sip::params::Param;
use crate::sip::text::quote;

/// Digest algorithms sipreg offers, strongest first (RFC 8760 §3: SHA-256 before MD5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha256,
    Md5,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Md5 => "MD5",
        }
    }

    pub fn parse(s: Option<&str>) -> Option<Algorithm> {
        match s {
            None => Some(Algorithm::Md5),
            Some(a) if a.eq_ignore_ascii_case("MD5") => Some(Algorithm::Md5),
            Some(a) if a.eq_ignore_ascii_case("SHA-256") => Some(Algorithm::Sha256),
            _ => None,
        }
    }

    fn hash(self, input: &str) -> String {
        match self {
            Algorithm::Md5 => hex(&Md5::digest(input.as_bytes())),
            Algorithm::Sha256 => hex(&Sha256::digest(input.as_bytes())),
        }
    }
}

fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push_str(&format!("{x:02x}"));
    }
    s
}

/// The credentials of an `Authorization: Digest ...` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    pub response: String,
    pub algorithm: Algorithm,
    pub qop: Option<String>,
    pub nc: Option<String>,
    pub cnonce: Option<String>,
}

impl Credentials {
    /// Reads Digest credentials; `None` when the scheme is not Digest or a field is missing.
    pub fn from_auth(a: &AuthValue) -> Option<Credentials> {
        if !a.is_scheme("Digest") {
            return None;
        }
        Some(Credentials {
            username: a.param("username")?,
            realm: a.param("realm")?,
            nonce: a.param("nonce")?,
            uri: a.param("uri")?,
            response: a.param("response")?,
            algorithm: Algorithm::parse(a.param("algorithm").as_deref())?,
            qop: a.param("qop"),
            nc: a.param("nc"),
            cnonce: a.param("cnonce"),
        })
    }

    /// The response a client holding `ha1` must have computed for `method`.
    pub fn expected(&self, ha1: &str, method: &str) -> String {
        let ha2 = self.algorithm.hash(&format!("{method}:{}", self.uri));
        match (&self.qop, &self.nc, &self.cnonce) {
            (Some(qop), Some(nc), Some(cnonce)) => self
                .algorithm
                .hash(&format!("{ha1}:{}:{nc}:{cnonce}:{qop}:{ha2}", self.nonce)),
            _ => self.algorithm.hash(&format!("{ha1}:{}:{ha2}", self.nonce)),
        }
    }

    /// Constant-time check of the response against `ha1`.
    pub fn verify(&self, ha1: &str, method: &str) -> bool {
        let want = self.expected(ha1, method);
        want.as_bytes()
            .ct_eq(self.response.to_ascii_lowercase().as_bytes())
            .into()
    }
}

/// What a nonce turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceState {
    Fresh,
    /// Ours, but too old: challenge again with `stale=true`.
    Stale,
    /// Not ours (or damaged).
    Invalid,
}

/// Issues and checks nonces, and remembers the nonce-counts seen.
pub struct Nonces {
    key: [u8; 32],
    ttl: Duration,
    epoch: Instant,
    epoch_unix: u64,
    seen: DashMap<String, (u32, u64)>,
    max_seen: usize,
}

type HmacSha256 = Hmac<Sha256>;

impl Nonces {
    /// `ttl`: how long a nonce is fresh. `max_seen`: how many nonces' counts are kept.
    pub fn new(ttl: Duration, max_seen: usize) -> Nonces {
        let mut key = [0u8; 32];
        rand::fill(&mut key);
        Nonces {
            key,
            ttl,
            epoch: Instant::now(),
            epoch_unix: crate::clock::unix_now(),
            seen: DashMap::new(),
            max_seen: max_seen.max(16),
        }
    }

    fn now(&self) -> u64 {
        self.epoch_unix + self.epoch.elapsed().as_secs()
    }

    fn tag(&self, issued: u64, salt: &[u8], realm: &str) -> [u8; 16] {
        let mut mac = match HmacSha256::new_from_slice(&self.key) {
            Ok(m) => m,
            Err(_) => return [0; 16],
        };
        mac.update(&issued.to_be_bytes());
        mac.update(salt);
        mac.update(realm.as_bytes());
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; 16];
        out.copy_from_slice(&full[..16]);
        out
    }

    /// A new nonce for `realm`.
    pub fn issue(&self, realm: &str) -> String {
        let issued = self.now();
        let mut salt = [0u8; 8];
        rand::fill(&mut salt);
        let mut raw = Vec::with_capacity(32);
        raw.extend_from_slice(&issued.to_be_bytes());
        raw.extend_from_slice(&salt);
        raw.extend_from_slice(&self.tag(issued, &salt, realm));
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Checks a nonce's origin and age.
    pub fn check(&self, nonce: &str, realm: &str) -> NonceState {
        let Ok(raw) = URL_SAFE_NO_PAD.decode(nonce) else {
            return NonceState::Invalid;
        };
        if raw.len() != 32 {
            return NonceState::Invalid;
        }
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&raw[..8]);
        let issued = u64::from_be_bytes(ts);
        let ok: bool = self
            .tag(issued, &raw[8..16], realm)
            .ct_eq(&raw[16..])
            .into();
        if !ok {
            return NonceState::Invalid;
        }
        if self.now().saturating_sub(issued) > self.ttl.as_secs() {
            NonceState::Stale
        } else {
            NonceState::Fresh
        }
    }

    /// Accepts a nonce-count only if it is higher than any seen with this nonce; a nonce
    /// not on record must start at 1 (so a forgotten nonce can never be replayed).
    pub fn accept_count(&self, nonce: &str, nc: Option<&str>) -> bool {
        let n = match nc {
            Some(nc) => match u32::from_str_radix(nc, 16) {
                Ok(n) if n > 0 => n,
                _ => return false,
            },
            // Without qop there is no count: each nonce may be used once.
            None => 1,
        };
        let now = self.now();
        let mut full = self.seen.len() >= self.max_seen;
        if full {
            let ttl = self.ttl.as_secs();
            self.seen.retain(|_, (_, t)| now.saturating_sub(*t) <= ttl);
            full = self.seen.len() >= self.max_seen;
        }
        // No other DashMap call while the entry's shard is locked (it would deadlock).
        match self.seen.entry(nonce.to_string()) {
            dashmap::mapref::entry::Entry::Occupied(mut e) => {
                if n <= e.get().0 {
                    return false;
                }
                e.get_mut().0 = n;
                true
            }
            dashmap::mapref::entry::Entry::Vacant(v) => {
                if n != 1 || full {
                    return false;
                }
                v.insert((n, now));
                true
            }
        }
    }

    /// One Digest challenge (RFC 8760 §2.2: the algorithm is always named).
    pub fn challenge(&self, realm: &str, algorithm: Algorithm, stale: bool) -> WwwAuthenticate {
        let mut ps = vec![
            param("realm", quote(realm)),
            param("nonce", quote(&self.issue(realm))),
            param("algorithm", algorithm.name().to_string()),
            param("qop", quote("auth")),
        ];
        if stale {
            ps.push(param("stale", "true".to_string()));
        }
        WwwAuthenticate(AuthValue {
            scheme: ByteString::from_static("Digest"),
            data: AuthData::Params(ps),
        })
    }
}

/// An auth-param whose value is already a token or a quoted-string.
pub(crate) fn param(name: &'static str, value: String) -> Param {
    Param {
        name: ByteString::from_static(name),
        value: Some(ByteString::from(value)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::headers::{Authorization, TypedHeader};

    fn creds(s: &str) -> Credentials {
        Credentials::from_auth(&Authorization::parse_str(s).unwrap().0).unwrap()
    }

    #[test]
    fn rfc2617_example_response() {
        // RFC 2617 §3.5 (HTTP GET, but the computation is the same).
        let c = creds(
            "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", qop=auth, nc=00000001, cnonce=\"0a4f113b\", response=\"6629fae49393a05397450978507c4ef1\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        );
        let ha1 = Algorithm::Md5.hash("Mufasa:testrealm@host.com:Circle Of Life");
        assert!(c.verify(&ha1, "GET"));
        assert!(!c.verify(&ha1, "POST"));
    }

    #[test]
    fn nonces_fresh_stale_invalid_and_counts() {
        let n = Nonces::new(Duration::from_secs(300), 100);
        let nonce = n.issue("example.com");
        assert_ne!(nonce, n.issue("example.com"), "every nonce is unique");
        assert_eq!(n.check(&nonce, "example.com"), NonceState::Fresh);
        assert_eq!(n.check(&nonce, "other.realm"), NonceState::Invalid);
        assert_eq!(n.check("garbage", "example.com"), NonceState::Invalid);
        let old = Nonces {
            ttl: Duration::ZERO,
            ..Nonces::new(Duration::ZERO, 100)
        };
        let stale = {
            let issued = old.now() - 10;
            let mut raw = issued.to_be_bytes().to_vec();
            raw.extend_from_slice(&[7; 8]);
            raw.extend_from_slice(&old.tag(issued, &[7; 8], "r"));
            URL_SAFE_NO_PAD.encode(raw)
        };
        assert_eq!(old.check(&stale, "r"), NonceState::Stale);
        assert!(n.accept_count(&nonce, Some("00000001")));
        assert!(!n.accept_count(&nonce, Some("00000001")), "replay");
        assert!(n.accept_count(&nonce, Some("00000002")));
        assert!(
            !n.accept_count("unseen", Some("00000005")),
            "unknown nonce must start at 1"
        );
    }
}
