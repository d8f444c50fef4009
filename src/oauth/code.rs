//! Authorization codes (RFC 6749 §4.1.2) and the login-to-consent step, in memory:
//! random, single-use, short-lived, bounded in number. A code stays known after its
//! redemption (until it would have expired) so that a second redemption is caught and
//! the tokens the first one bought can be revoked (§4.1.2: "SHOULD revoke").

use std::time::{Duration, Instant};

use dashmap::DashMap;

use super::error::{ErrorCode, OAuthError};
use crate::auth::Claims;
use crate::auth::secret;

/// What an approved authorization request grants, bound to its code.
#[derive(Debug, Clone)]
pub struct CodeGrant {
    pub client_id: String,
    pub redirect_uri: String,
    /// Scopes as approved, `openid` included when asked for.
    pub scopes: Vec<String>,
    pub user_id: String,
    /// The S256 challenge, when the request had one.
    pub code_challenge: Option<String>,
    /// OpenID Connect: echoed in the ID token.
    pub nonce: Option<String>,
    /// When the user logged in (the ID token's `auth_time`).
    pub auth_time: i64,
}

/// What a redeemed code issued, to revoke if the code comes back.
#[derive(Debug, Clone)]
pub struct Issued {
    pub client_id: String,
    /// SHA-256 hex of the refresh token, when one was issued.
    pub refresh_hash: Option<String>,
    pub access: Claims,
}

#[derive(Debug)]
enum State {
    Fresh(Box<CodeGrant>),
    /// Redeemed (or burnt by a failed redemption); `reused` is set by a later attempt
    /// that came before the first one recorded what it issued.
    Redeemed {
        issued: Option<Box<Issued>>,
        reused: bool,
    },
}

/// The outcome of presenting a code.
#[derive(Debug)]
pub enum Taken {
    Fresh(Box<CodeGrant>),
    /// Presented before: what it issued, if anything yet.
    Reused(Option<Box<Issued>>),
    Unknown,
}

/// Secrets with a deadline, kept by their SHA-256 and bounded in number.
pub struct Expiring<V> {
    map: DashMap<String, (Instant, V)>,
    ttl: Duration,
    max: usize,
}

impl<V> Expiring<V> {
    pub fn new(ttl: Duration, max: usize) -> Expiring<V> {
        Expiring {
            map: DashMap::new(),
            ttl: ttl.max(Duration::from_secs(1)),
            max: max.max(1),
        }
    }

    /// Stores `value` under a new random secret, which is returned.
    pub fn insert(&self, value: V) -> Result<String, OAuthError> {
        self.sweep();
        if self.map.len() >= self.max {
            return Err(OAuthError::new(
                ErrorCode::TemporarilyUnavailable,
                "too many outstanding authorization requests; try again later",
            ));
        }
        let secret = secret::random_hex(32);
        self.map.insert(
            secret::sha256_hex(&secret),
            (Instant::now() + self.ttl, value),
        );
        Ok(secret)
    }

    /// Removes and returns the live value of `secret`.
    pub fn take(&self, secret: &str) -> Option<V> {
        let (_, (expires, v)) = self.map.remove(&secret::sha256_hex(secret))?;
        (expires > Instant::now()).then_some(v)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    fn sweep(&self) {
        let now = Instant::now();
        self.map.retain(|_, (expires, _)| *expires > now);
    }
}

/// The outstanding authorization codes.
pub struct AuthCodes {
    codes: Expiring<State>,
}

impl AuthCodes {
    pub fn new(ttl: Duration, max: usize) -> AuthCodes {
        AuthCodes {
            codes: Expiring::new(ttl, max),
        }
    }

    /// A new code for `grant`.
    pub fn issue(&self, grant: CodeGrant) -> Result<String, OAuthError> {
        self.codes.insert(State::Fresh(Box::new(grant)))
    }

    /// Presents `code`: a fresh one is marked redeemed and its grant returned.
    pub fn take(&self, code: &str) -> Taken {
        let key = secret::sha256_hex(code);
        let Some(mut entry) = self.codes.map.get_mut(&key) else {
            return Taken::Unknown;
        };
        if entry.0 <= Instant::now() {
            drop(entry);
            self.codes.map.remove(&key);
            return Taken::Unknown;
        }
        let state = std::mem::replace(
            &mut entry.1,
            State::Redeemed {
                issued: None,
                reused: false,
            },
        );
        match state {
            State::Fresh(g) => Taken::Fresh(g),
            State::Redeemed { issued, .. } => {
                // Stays redeemed, flagged, so the first redemption revokes what it issues.
                entry.1 = State::Redeemed {
                    issued: issued.clone(),
                    reused: true,
                };
                Taken::Reused(issued)
            }
        }
    }

    /// Records what `code`'s redemption issued. `false` when the code was presented
    /// again meanwhile: the caller must revoke what it issued.
    pub fn record(&self, code: &str, issued: Issued) -> bool {
        let key = secret::sha256_hex(code);
        match self.codes.map.get_mut(&key) {
            Some(mut e) => match &mut e.1 {
                State::Redeemed {
                    issued: slot,
                    reused,
                } if !*reused => {
                    *slot = Some(Box::new(issued));
                    true
                }
                _ => false,
            },
            // Expired and swept between take and record: nobody can present it again.
            None => true,
        }
    }

    pub fn len(&self) -> usize {
        self.codes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> CodeGrant {
        CodeGrant {
            client_id: "c".into(),
            redirect_uri: "https://app.example.com/cb".into(),
            scopes: vec!["sip.register".into()],
            user_id: "u".into(),
            code_challenge: None,
            nonce: None,
            auth_time: 0,
        }
    }

    #[test]
    fn a_code_is_single_use_and_a_reuse_is_reported() {
        let codes = AuthCodes::new(Duration::from_secs(60), 10);
        let code = codes.issue(grant()).unwrap();
        assert!(matches!(codes.take("nope"), Taken::Unknown));
        assert!(matches!(codes.take(&code), Taken::Fresh(g) if g.user_id == "u"));
        // A second presentation before the first recorded its tokens: flagged.
        assert!(matches!(codes.take(&code), Taken::Reused(None)));
        let access: Claims = serde_json::from_value(serde_json::json!({
            "iss": "i", "sub": "u", "aud": "a", "exp": 1, "jti": "j"
        }))
        .unwrap();
        let issued = Issued {
            client_id: "c".into(),
            refresh_hash: None,
            access,
        };
        assert!(
            !codes.record(&code, issued.clone()),
            "the reuse must revoke"
        );
        // A normal redemption records, and the reuse then sees what was issued.
        let code = codes.issue(grant()).unwrap();
        assert!(matches!(codes.take(&code), Taken::Fresh(_)));
        assert!(codes.record(&code, issued));
        assert!(matches!(codes.take(&code), Taken::Reused(Some(i)) if i.access.jti == "j"));
    }

    #[test]
    fn codes_are_bounded() {
        let codes = AuthCodes::new(Duration::from_secs(60), 2);
        codes.issue(grant()).unwrap();
        codes.issue(grant()).unwrap();
        let e = codes.issue(grant()).unwrap_err();
        assert_eq!(e.code, ErrorCode::TemporarilyUnavailable);
        assert_eq!(codes.len(), 2);
    }

    #[test]
    fn expired_codes_are_unknown() {
        let codes = AuthCodes::new(Duration::from_secs(60), 2);
        let code = codes.issue(grant()).unwrap();
        if let Some(mut e) = codes.codes.map.get_mut(&secret::sha256_hex(&code)) {
            e.0 = Instant::now();
        }
        assert!(matches!(codes.take(&code), Taken::Unknown));
        assert!(codes.is_empty());
    }
}
