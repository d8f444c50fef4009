//! The device authorization grant (RFC 8628): a phone without a keyboard asks for a
//! device code and a short user code, shows the user code, and polls the token
//! endpoint while its user approves (or denies) the request on the verification page.
//!
//! Outstanding requests live in memory, bounded in number and life (a restart asks the
//! phone to start over, as an expired code would). User codes follow RFC 8628 §6.1:
//! eight letters from a 20-consonant alphabet (34.6 bits), case and dashes ignored,
//! with wrong entries throttled per address.

use std::time::{Duration, Instant};

use dashmap::DashMap;
use serde::Serialize;

use super::error::{ErrorCode, OAuthError};
use crate::auth::secret;

/// RFC 8628 §6.1's suggested alphabet: no vowels (no words), no look-alikes.
const ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
const USER_CODE_LEN: usize = 8;
/// RFC 8628 §3.5: each `slow_down` adds this to the interval.
const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);

/// What the device authorization endpoint answers (RFC 8628 §3.2).
#[derive(Debug, Serialize)]
pub struct DeviceAuthorization {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub expires_in: u64,
    pub interval: u64,
}

/// Where a request stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Pending,
    Approved { user_id: String },
    Denied,
}

#[derive(Debug, Clone)]
struct Entry {
    client_id: String,
    client_name: String,
    scopes: Vec<String>,
    user_code: String,
    expires: Instant,
    interval: Duration,
    last_poll: Option<Instant>,
    decision: Decision,
}

/// What the verification page shows of a request.
#[derive(Debug, Clone)]
pub struct DeviceView {
    pub user_code: String,
    pub client_name: String,
    pub scopes: Vec<String>,
}

/// A request approved by its user, taken by the device's poll.
#[derive(Debug)]
pub struct Approved {
    pub user_id: String,
    pub scopes: Vec<String>,
}

/// Outstanding device requests.
pub struct DeviceGrants {
    /// By device code (its SHA-256: the code itself is a bearer secret).
    by_device: DashMap<String, Entry>,
    /// User code → device code hash.
    by_user: DashMap<String, String>,
    ttl: Duration,
    interval: Duration,
    max: usize,
}

impl DeviceGrants {
    pub fn new(ttl: Duration, interval: Duration, max: usize) -> DeviceGrants {
        DeviceGrants {
            by_device: DashMap::new(),
            by_user: DashMap::new(),
            ttl: ttl.max(Duration::from_secs(1)),
            interval: interval.max(Duration::from_secs(1)),
            max: max.max(1),
        }
    }

    /// A new request for `client_id` with `scopes`; `verification_uri` is the page.
    pub fn start(
        &self,
        client_id: &str,
        client_name: &str,
        scopes: Vec<String>,
        verification_uri: &str,
    ) -> Result<DeviceAuthorization, OAuthError> {
        self.sweep();
        if self.by_device.len() >= self.max {
            return Err(OAuthError::new(
                ErrorCode::TemporarilyUnavailable,
                "too many outstanding device requests; try again later",
            ));
        }
        let device_code = secret::random_hex(32);
        let hash = secret::sha256_hex(&device_code);
        // A collision among live user codes is unlikely (2^34.6); draw again if so.
        let user_code = loop {
            let c = new_user_code();
            if let dashmap::Entry::Vacant(v) = self.by_user.entry(c.clone()) {
                v.insert(hash.clone());
                break c;
            }
        };
        self.by_device.insert(
            hash,
            Entry {
                client_id: client_id.to_string(),
                client_name: client_name.to_string(),
                scopes,
                user_code: user_code.clone(),
                expires: Instant::now() + self.ttl,
                interval: self.interval,
                last_poll: None,
                decision: Decision::Pending,
            },
        );
        let shown = display(&user_code);
        Ok(DeviceAuthorization {
            device_code,
            verification_uri_complete: format!("{verification_uri}?user_code={shown}"),
            verification_uri: verification_uri.to_string(),
            user_code: shown,
            expires_in: self.ttl.as_secs(),
            interval: self.interval.as_secs(),
        })
    }

    /// The live, undecided request a user typed the code of (`None` for a wrong,
    /// expired or already decided code).
    pub fn view(&self, typed: &str) -> Option<DeviceView> {
        let code = normalize(typed)?;
        let hash = self.by_user.get(&code)?.clone();
        let e = self.by_device.get(&hash)?;
        (e.decision == Decision::Pending && e.expires > Instant::now()).then(|| DeviceView {
            user_code: display(&e.user_code),
            client_name: e.client_name.clone(),
            scopes: e.scopes.clone(),
        })
    }

    /// Records the user's decision on a live, undecided request; `false` when there is
    /// none for that code.
    pub fn decide(&self, typed: &str, decision: Decision) -> bool {
        let Some(code) = normalize(typed) else {
            return false;
        };
        let Some(hash) = self.by_user.get(&code).map(|h| h.clone()) else {
            return false;
        };
        let Some(mut e) = self.by_device.get_mut(&hash) else {
            return false;
        };
        if e.decision != Decision::Pending || e.expires <= Instant::now() {
            return false;
        }
        e.decision = decision;
        true
    }

    /// A device's poll (RFC 8628 §3.4, §3.5) with its code, by `client_id`.
    pub fn poll(&self, device_code: &str, client_id: &str) -> Result<Approved, OAuthError> {
        let hash = secret::sha256_hex(device_code);
        let now = Instant::now();
        let invalid = || OAuthError::invalid_grant("unknown device code");
        let mut e = self.by_device.get_mut(&hash).ok_or_else(invalid)?;
        if e.client_id != client_id {
            return Err(invalid());
        }
        if e.expires <= now {
            drop(e);
            self.remove(&hash);
            return Err(OAuthError::new(
                ErrorCode::ExpiredToken,
                "the device code expired",
            ));
        }
        let too_soon = e
            .last_poll
            .is_some_and(|t| now.duration_since(t) < e.interval);
        e.last_poll = Some(now);
        match e.decision.clone() {
            Decision::Pending if too_soon => {
                e.interval += SLOW_DOWN_STEP;
                Err(OAuthError::new(
                    ErrorCode::SlowDown,
                    format!("poll at most every {} s", e.interval.as_secs()),
                ))
            }
            Decision::Pending => Err(OAuthError::new(
                ErrorCode::AuthorizationPending,
                "the user has not decided yet",
            )),
            Decision::Denied => {
                drop(e);
                self.remove(&hash);
                Err(OAuthError::new(
                    ErrorCode::AccessDenied,
                    "the user denied the request",
                ))
            }
            Decision::Approved { user_id } => {
                let scopes = e.scopes.clone();
                drop(e);
                // Single use: the code is gone once it has produced tokens.
                self.remove(&hash);
                Ok(Approved { user_id, scopes })
            }
        }
    }

    fn remove(&self, hash: &str) {
        if let Some((_, e)) = self.by_device.remove(hash) {
            self.by_user.remove(&e.user_code);
        }
    }

    /// Drops expired requests (called on each new one, so the maps stay bounded).
    fn sweep(&self) {
        let now = Instant::now();
        let expired: Vec<String> = self
            .by_device
            .iter()
            .filter(|e| e.expires <= now)
            .map(|e| e.key().clone())
            .collect();
        for h in expired {
            self.remove(&h);
        }
    }

    pub fn len(&self) -> usize {
        self.by_device.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_device.is_empty()
    }
}

fn new_user_code() -> String {
    let mut out = String::with_capacity(USER_CODE_LEN);
    let mut buf = [0u8; 32];
    while out.len() < USER_CODE_LEN {
        rand::fill(&mut buf);
        // Rejection sampling keeps every letter equally likely (240 = 12 × 20).
        for b in buf.iter().filter(|b| **b < 240) {
            if out.len() == USER_CODE_LEN {
                break;
            }
            out.push(char::from(ALPHABET[usize::from(*b % 20)]));
        }
    }
    out
}

/// `BCDFGHJK` → `BCDF-GHJK`.
fn display(code: &str) -> String {
    let (a, b) = code.split_at(code.len() / 2);
    format!("{a}-{b}")
}

/// What a person typed, as stored: letters upper-cased, dashes and spaces dropped;
/// `None` unless eight letters of the alphabet remain.
pub fn normalize(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == USER_CODE_LEN && code.bytes().all(|b| ALPHABET.contains(&b))).then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants(interval: u64) -> DeviceGrants {
        DeviceGrants::new(Duration::from_secs(600), Duration::from_secs(interval), 3)
    }

    #[test]
    fn user_codes_use_the_alphabet_and_forgive_typing() {
        for _ in 0..200 {
            let c = new_user_code();
            assert_eq!(c.len(), 8);
            assert!(c.bytes().all(|b| ALPHABET.contains(&b)), "{c}");
        }
        assert_eq!(normalize("bcdf-ghjk").as_deref(), Some("BCDFGHJK"));
        assert_eq!(normalize(" BCDF GHJK ").as_deref(), Some("BCDFGHJK"));
        assert_eq!(
            normalize("ABCD-EFGH"),
            None,
            "vowels are not in the alphabet"
        );
        assert_eq!(normalize("BCDF-GHJ"), None);
    }

    #[test]
    fn a_request_is_approved_once_and_taken_once() {
        let g = grants(5);
        let a = g
            .start(
                "c",
                "Phone",
                vec!["sip.register".into()],
                "https://x/device",
            )
            .unwrap();
        assert!(a.verification_uri_complete.ends_with(&a.user_code));
        let e = g.poll(&a.device_code, "c").unwrap_err();
        assert_eq!(e.code, ErrorCode::AuthorizationPending);
        // Polling again at once is too fast.
        assert_eq!(
            g.poll(&a.device_code, "c").unwrap_err().code,
            ErrorCode::SlowDown
        );
        // Another client cannot poll it.
        assert_eq!(
            g.poll(&a.device_code, "other").unwrap_err().code,
            ErrorCode::InvalidGrant
        );
        let view = g.view(&a.user_code.to_lowercase()).expect("a live request");
        assert_eq!(view.client_name, "Phone");
        assert!(g.decide(
            &a.user_code,
            Decision::Approved {
                user_id: "u1".into()
            }
        ));
        assert!(!g.decide(&a.user_code, Decision::Denied), "decided once");
        assert!(g.view(&a.user_code).is_none());
        // The next poll (even a fast one) takes the approval; the code is then gone.
        let ok = g.poll(&a.device_code, "c").unwrap();
        assert_eq!((ok.user_id.as_str(), ok.scopes.len()), ("u1", 1));
        assert_eq!(
            g.poll(&a.device_code, "c").unwrap_err().code,
            ErrorCode::InvalidGrant
        );
        assert!(g.is_empty());
    }

    #[test]
    fn denial_and_the_bound() {
        let g = grants(1);
        let a = g.start("c", "P", vec![], "u").unwrap();
        assert!(g.decide(&a.user_code, Decision::Denied));
        assert_eq!(
            g.poll(&a.device_code, "c").unwrap_err().code,
            ErrorCode::AccessDenied
        );
        for _ in 0..3 {
            g.start("c", "P", vec![], "u").unwrap();
        }
        let full = g.start("c", "P", vec![], "u").unwrap_err();
        assert_eq!(full.code, ErrorCode::TemporarilyUnavailable);
    }

    #[test]
    fn expired_codes_answer_expired_token() {
        let g = DeviceGrants::new(Duration::from_millis(1), Duration::from_secs(1), 3);
        // The TTL is at least one second.
        assert_eq!(g.ttl, Duration::from_secs(1));
        let a = g.start("c", "P", vec![], "u").unwrap();
        if let Some(mut e) = g.by_device.get_mut(&secret::sha256_hex(&a.device_code)) {
            e.expires = Instant::now();
        }
        assert_eq!(
            g.poll(&a.device_code, "c").unwrap_err().code,
            ErrorCode::ExpiredToken
        );
        assert!(g.view(&a.user_code).is_none());
    }
}

/// Why the verification page could not go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// No live request has that code (wrong, expired or already decided).
    WrongCode,
    /// Too many wrong codes or passwords from this address: wait this many seconds.
    Throttled(u64),
    BadCredentials,
    /// The store failed (logged).
    Unavailable,
}

impl VerifyError {
    pub fn message(&self) -> String {
        match self {
            VerifyError::WrongCode => {
                "That code is not valid. Check the code your device shows.".to_string()
            }
            VerifyError::Throttled(s) => format!("Too many attempts. Try again in {s} s."),
            VerifyError::BadCredentials => "Wrong username or password.".to_string(),
            VerifyError::Unavailable => "The server cannot do this now. Try again.".to_string(),
        }
    }
}

impl super::OAuthServer {
    /// The device authorization endpoint (RFC 8628 §3.1).
    pub async fn device_authorize(
        &self,
        params: &super::Params,
        auth: &super::ClientAuth,
    ) -> Result<DeviceAuthorization, OAuthError> {
        let client = self.authenticate_client(auth).await?;
        super::clients::allows(&client, super::GrantType::DeviceCode)?;
        let scopes = super::token::grant_scopes(params.get("scope"), &client.scopes)?;
        let page = format!(
            "{}{}",
            self.users.config().tokens.issuer.trim_end_matches('/'),
            super::metadata::DEVICE_PAGE_PATH
        );
        self.device.start(&client.id, &client.name, scopes, &page)
    }

    /// The request a person's typed code names, for the verification page. Wrong codes
    /// count against the address.
    pub fn device_view(
        &self,
        typed: &str,
        source: std::net::IpAddr,
    ) -> Result<DeviceView, VerifyError> {
        let key = [format!("device-ip:{source}")];
        if let Some(s) = self.device_throttle.retry_after(&key) {
            return Err(VerifyError::Throttled(s));
        }
        self.device.view(typed).ok_or_else(|| {
            self.device_throttle.record_failure(&key);
            VerifyError::WrongCode
        })
    }

    /// The person's decision. Approving needs their username and password (checked,
    /// and throttled, as any login); denying needs only the code.
    pub async fn device_decide(
        &self,
        typed: &str,
        credentials: Option<(&str, &str)>,
        source: std::net::IpAddr,
    ) -> Result<(), VerifyError> {
        self.device_view(typed, source)?;
        let decision = match credentials {
            Some((username, password)) => {
                let user = self
                    .users
                    .check_password(username, password, Some(source))
                    .await
                    .map_err(|e| match e {
                        crate::users::UsersError::BadCredentials => VerifyError::BadCredentials,
                        crate::users::UsersError::Throttled { retry_after_secs } => {
                            VerifyError::Throttled(retry_after_secs)
                        }
                        other => {
                            tracing::error!(error = %other, "device verification failed");
                            VerifyError::Unavailable
                        }
                    })?;
                tracing::info!(user_id = %user.id, "device request approved");
                Decision::Approved { user_id: user.id }
            }
            None => Decision::Denied,
        };
        if self.device.decide(typed, decision) {
            Ok(())
        } else {
            Err(VerifyError::WrongCode)
        }
    }

    /// The device's token request (RFC 8628 §3.4).
    pub(super) async fn device_code_grant(
        &self,
        params: &super::Params,
        client: &crate::users::store::ClientRecord,
    ) -> Result<super::TokenResponse, OAuthError> {
        let code = params.require("device_code")?;
        let approved = self.device.poll(code, &client.id)?;
        let user = self.users.get_user(&approved.user_id).await?;
        let allowed: Vec<String> = approved
            .scopes
            .into_iter()
            .filter(|s| user.scopes.contains(s))
            .collect();
        let scopes = super::token::grant_scopes(None, &allowed)?;
        tracing::info!(user_id = %user.id, client_id = %client.id, "token issued (device grant)");
        self.session_tokens(&user, client, &scopes).await
    }
}
