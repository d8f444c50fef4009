//! Authentication of SIP requests: `Authorization: Bearer` (RFC 8898, a JWT or an API key
//! checked by the shared [`Validator`]) and `Authorization: Digest` (RFC 3261 §22,
//! RFC 8760) against the users store; the 401 challenges (the [`ChallengePolicy`] picks
//! them per client and transport), 403 for insufficient scope, the refusal of Bearer
//! tokens sent in clear, and throttling of repeated failures.
//!
//! The cached-Bearer case is answered synchronously ([`SipAuth::quick`]) so a refreshing
//! phone never waits on the database; everything else goes through [`SipAuth::full`].

use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::challenge::{Challenge, ChallengePolicy};
use super::digest::{Credentials, NonceState, Nonces, param};
use super::failures::Failures;
use super::{AuthError, Claims, Validator};
use crate::clock::unix_now;
use crate::sip::headers::{AuthData, AuthValue, HeaderName, TypedHeader, WwwAuthenticate};
use crate::sip::text::quote;
use crate::sip::{Request, Response};
use crate::transport::Context;
use crate::users::UsersService;
use bytestring::ByteString;

/// Who sent a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user_id: String,
    pub username: String,
    pub scopes: Vec<String>,
    pub roles: Vec<String>,
}

impl Identity {
    pub fn has_scope(&self, s: &str) -> bool {
        self.scopes.iter().any(|x| x == s)
    }

    /// The `admin` scope may act on any AOR.
    pub fn is_admin(&self) -> bool {
        self.has_scope("admin")
    }

    fn from_claims(c: &Claims) -> Identity {
        Identity {
            user_id: c.user_id().to_string(),
            username: c.username().to_string(),
            scopes: c.scopes().map(str::to_string).collect(),
            roles: c.roles().to_vec(),
        }
    }
}

/// The result of authenticating a request.
#[derive(Debug)]
pub enum Outcome {
    Authenticated(Identity),
    /// Answer with this (401 challenge, 403, 400).
    Refused(Response),
}

/// Settings for SIP authentication (the `[auth]` section).
#[derive(Debug, Clone)]
pub struct SipAuthSettings {
    pub realm: String,
    /// Which challenges each client gets, and where Bearer may travel.
    pub policy: ChallengePolicy,
    pub nonce_ttl: Duration,
    pub max_failures: u32,
    pub failure_window: Duration,
}

/// Addresses whose failures are tracked until `[limits]` says otherwise.
const DEFAULT_MAX_FAILURE_SOURCES: usize = 100_000;

/// Authenticates SIP requests.
pub struct SipAuth {
    users: Arc<UsersService>,
    validator: Arc<Validator>,
    nonces: Nonces,
    /// Replaced whole on reload ([`SipAuth::update`]); requests read a snapshot.
    settings: RwLock<Arc<SipAuthSettings>>,
    issuer: String,
    /// Failed attempts by source address; looked up for every request, bounded
    /// (`[limits] max_auth_failure_sources`).
    failures: Failures,
}

/// The credentials a request carries, if any usable.
enum Presented {
    None,
    Bearer(ByteString),
    Digest(Credentials),
}

fn presented(req: &Request) -> Presented {
    // Several Authorization fields may be present (one per realm); the first usable wins,
    // and an unknown scheme counts as none (RFC 4475 §3.3.7).
    for h in req.msg.headers.all(HeaderName::Authorization) {
        let Ok(a) = crate::sip::headers::Authorization::parse(req.msg.headers.src(), h.value)
        else {
            continue;
        };
        if a.0.is_scheme("Bearer") {
            // A slice of the request (a JWT is ~700 octets): not copied.
            if let AuthData::Token68(t) = a.0.data {
                return Presented::Bearer(t);
            }
        } else if let Some(c) = Credentials::from_auth(&a.0) {
            return Presented::Digest(c);
        }
    }
    Presented::None
}

/// A `Bearer` challenge with these auth-params (RFC 6750 §3).
fn bearer(params: Vec<crate::sip::params::Param>) -> WwwAuthenticate {
    WwwAuthenticate(AuthValue {
        scheme: ByteString::from_static("Bearer"),
        data: AuthData::Params(params),
    })
}

/// 503 at once when the first-sighting checks are full (the reason tells the metrics
/// apart from a store failure).
fn busy(retry_after_secs: u64) -> Response {
    Response::new(503)
        .with_reason(BUSY_REASON)
        .header("Retry-After", retry_after_secs.to_string())
}

/// The reason phrase of [`busy`].
pub(super) const BUSY_REASON: &str = "Too Many New Credentials";

/// The request's `User-Agent`, which the per-client challenge rules match.
fn user_agent(req: &Request) -> Option<&str> {
    req.msg.headers.first(HeaderName::UserAgent).map(str::trim)
}

/// The Request-URI as it appears on the request line (what a Digest `uri` must equal).
fn request_uri_text(req: &Request) -> &str {
    req.msg.first_line.split(' ').nth(1).unwrap_or("")
}

impl SipAuth {
    pub fn new(users: Arc<UsersService>, settings: SipAuthSettings) -> SipAuth {
        let validator = users.validator();
        let issuer = users.config().tokens.issuer.clone();
        SipAuth {
            nonces: Nonces::new(settings.nonce_ttl, 100_000),
            users,
            validator,
            settings: RwLock::new(Arc::new(settings)),
            issuer,
            failures: Failures::new(DEFAULT_MAX_FAILURE_SOURCES),
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> Arc<SipAuthSettings> {
        match self.settings.read() {
            Ok(s) => Arc::clone(&s),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Applies new settings to the requests that follow (SIGHUP). The nonce lifetime is
    /// fixed at start: nonces already handed out keep theirs.
    pub fn update(&self, settings: SipAuthSettings) {
        let new = Arc::new(settings);
        match self.settings.write() {
            Ok(mut s) => *s = new,
            Err(poisoned) => *poisoned.into_inner() = new,
        }
    }

    /// Bounds the addresses whose failures are tracked (`[limits]`, at start and reload).
    pub fn set_max_failure_sources(&self, n: usize) {
        self.failures.set_max_sources(n);
    }

    /// The failure map, for the operator's counters and the tests.
    pub fn failures(&self) -> &Failures {
        &self.failures
    }

    pub fn users(&self) -> &Arc<UsersService> {
        &self.users
    }

    fn bearer_challenge(&self, scope: &str, error: Option<&str>) -> WwwAuthenticate {
        let mut ps = vec![
            param("realm", quote(&self.settings().realm)),
            param("scope", quote(scope)),
            param("authz_server", quote(&self.issuer)),
        ];
        if let Some(e) = error {
            ps.push(param("error", quote(e)));
        }
        bearer(ps)
    }

    /// The challenges this client gets over this transport, in the configured order.
    fn challenges(
        &self,
        req: &Request,
        ctx: &Context,
        scope: &str,
        bearer_error: Option<&str>,
        stale: bool,
    ) -> Vec<WwwAuthenticate> {
        let settings = self.settings();
        settings
            .policy
            .offered(user_agent(req), ctx)
            .map(|c| match c {
                Challenge::Bearer => self.bearer_challenge(scope, bearer_error),
                Challenge::Digest(alg) => self.nonces.challenge(&settings.realm, alg, stale),
            })
            .collect()
    }

    /// 401 with the challenges this client gets (see [`ChallengePolicy`]). When it gets
    /// none (only Bearer configured for it, and it is not on TLS), 403: a 401 must carry
    /// a challenge (RFC 3261 §21.4.2).
    pub fn challenge(
        &self,
        req: &Request,
        ctx: &Context,
        scope: &str,
        bearer_error: Option<&str>,
        stale: bool,
    ) -> Response {
        let all = self.challenges(req, ctx, scope, bearer_error, stale);
        if all.is_empty() {
            let reason = if self.settings().policy.bearer_allowed(ctx) {
                "No Authentication Scheme For This Client"
            } else {
                "TLS Required"
            };
            return Response::new(403).with_reason(reason);
        }
        all.iter().fold(Response::new(401), |r, h| {
            r.header(WwwAuthenticate::NAME.as_str(), h.to_string())
        })
    }

    /// A Bearer token that crossed a cleartext transport from a non-loopback peer: not
    /// checked (RFC 6750 §5.3, RFC 8898 §6). 401 with `error="invalid_request"`, and the
    /// Digest challenges this client may use instead.
    fn token_in_clear(&self, req: &Request, ctx: &Context, scope: &str) -> Response {
        tracing::debug!(source = %ctx.source, transport = %ctx.transport, "Bearer token in clear refused");
        let bearer = self.bearer_challenge(scope, Some("invalid_request"));
        self.challenges(req, ctx, scope, None, false).iter().fold(
            Response::new(401)
                .with_reason("TLS Required For Bearer Tokens")
                .header(WwwAuthenticate::NAME.as_str(), bearer.to_string()),
            |r, h| r.header(WwwAuthenticate::NAME.as_str(), h.to_string()),
        )
    }

    fn insufficient_scope(&self, scope: &str) -> Response {
        let h = bearer(vec![
            param("realm", quote(&self.settings().realm)),
            param("error", quote("insufficient_scope")),
            param("scope", quote(scope)),
        ]);
        Response::new(403)
            .with_reason("Insufficient Scope")
            .header(WwwAuthenticate::NAME.as_str(), h.to_string())
    }

    /// A 403 with Retry-After while `ip` is over its failure budget.
    fn throttled(&self, ip: IpAddr) -> Option<Response> {
        let now = unix_now();
        let window = self.settings().failure_window.as_secs();
        let (count, start) = self.failures.current(ip, now, window)?;
        (count >= self.settings().max_failures).then(|| {
            Response::new(403)
                .with_reason("Too Many Failed Authentications")
                .header(
                    "Retry-After",
                    (window - now.saturating_sub(start)).max(1).to_string(),
                )
        })
    }

    fn record_failure(&self, ip: IpAddr) {
        let window = self.settings().failure_window.as_secs();
        self.failures.record(ip, unix_now(), window);
    }

    fn judge_claims(&self, c: &Claims, scope: &str) -> Outcome {
        if !c.has_scope(scope) && !c.has_scope("admin") {
            return Outcome::Refused(self.insufficient_scope(scope));
        }
        Outcome::Authenticated(Identity::from_claims(c))
    }

    /// The synchronous path: throttled sources, requests without credentials, tokens in
    /// clear, and Bearer tokens already in the validation cache. `None` means
    /// [`SipAuth::full`] is needed.
    pub fn quick(&self, req: &Request, scope: &str, ctx: &Context) -> Option<Outcome> {
        let outcome = self.quick_uncounted(req, scope, ctx);
        if let Some(o) = &outcome {
            super::counted::count(req, o);
        }
        outcome
    }

    fn quick_uncounted(&self, req: &Request, scope: &str, ctx: &Context) -> Option<Outcome> {
        if let Some(r) = self.throttled(ctx.source.ip()) {
            return Some(Outcome::Refused(r));
        }
        match presented(req) {
            Presented::None => Some(Outcome::Refused(
                self.challenge(req, ctx, scope, None, false),
            )),
            Presented::Bearer(_) if !self.settings().policy.bearer_allowed(ctx) => {
                Some(Outcome::Refused(self.token_in_clear(req, ctx, scope)))
            }
            Presented::Bearer(t) => match self.validator.validate_cached(&t)? {
                Ok(c) => Some(self.judge_claims(&c, scope)),
                Err(_) => None,
            },
            Presented::Digest(_) => None,
        }
    }

    /// Full authentication, asynchronous (token validation, Digest against the store).
    pub async fn full(&self, req: &Request, scope: &str, ctx: &Context) -> Outcome {
        let outcome = self.full_uncounted(req, scope, ctx).await;
        super::counted::count(req, &outcome);
        outcome
    }

    async fn full_uncounted(&self, req: &Request, scope: &str, ctx: &Context) -> Outcome {
        let source = ctx.source;
        if let Some(r) = self.throttled(source.ip()) {
            return Outcome::Refused(r);
        }
        match presented(req) {
            Presented::None => Outcome::Refused(self.challenge(req, ctx, scope, None, false)),
            Presented::Bearer(_) if !self.settings().policy.bearer_allowed(ctx) => {
                Outcome::Refused(self.token_in_clear(req, ctx, scope))
            }
            Presented::Bearer(t) => match self.validator.validate(&t).await {
                Ok(c) => self.judge_claims(&c, scope),
                Err(AuthError::Unavailable(e)) => {
                    tracing::warn!(error = %e, "token validation unavailable");
                    Outcome::Refused(Response::new(503).header("Retry-After", "5"))
                }
                Err(AuthError::Busy { retry_after_secs }) => {
                    Outcome::Refused(busy(retry_after_secs))
                }
                Err(e) => {
                    tracing::debug!(%source, error = %e, "Bearer token refused");
                    self.record_failure(source.ip());
                    Outcome::Refused(self.challenge(req, ctx, scope, Some("invalid_token"), false))
                }
            },
            Presented::Digest(c) => self.digest(req, c, scope, ctx).await,
        }
    }

    async fn digest(&self, req: &Request, c: Credentials, scope: &str, ctx: &Context) -> Outcome {
        let source = ctx.source;
        let challenge = |stale| Outcome::Refused(self.challenge(req, ctx, scope, None, stale));
        // Only an algorithm this client was offered is accepted.
        let offered = self
            .settings()
            .policy
            .configured(user_agent(req))
            .contains(&Challenge::Digest(c.algorithm));
        if !offered || c.realm != self.settings().realm {
            return challenge(false);
        }
        match self.nonces.check(&c.nonce, &self.settings().realm) {
            NonceState::Invalid => return challenge(false),
            NonceState::Stale => return challenge(true),
            NonceState::Fresh => {}
        }
        if c.uri != request_uri_text(req) {
            return Outcome::Refused(
                Response::new(400).with_reason("Digest uri does not match the Request-URI"),
            );
        }
        if c.qop
            .as_deref()
            .is_some_and(|q| !q.eq_ignore_ascii_case("auth"))
        {
            return challenge(false);
        }
        // The store look-ups below are bounded like first-sighting token checks.
        let _place = match self.validator.gate().enter().await {
            Ok(p) => p,
            Err(AuthError::Busy { retry_after_secs }) => {
                return Outcome::Refused(busy(retry_after_secs));
            }
            Err(e) => {
                tracing::warn!(error = %e, "digest lookup refused");
                return Outcome::Refused(Response::new(503).header("Retry-After", "5"));
            }
        };
        let ha1 = match self.users.digest_ha1(&c.username, c.algorithm.name()).await {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(error = %e, "digest lookup failed");
                return Outcome::Refused(Response::new(503).header("Retry-After", "5"));
            }
        };
        // Unknown users are checked against a dummy value so they cost the same.
        let ha1 = ha1.unwrap_or_else(|| "0".repeat(64));
        if !c.verify(&ha1, req.method.as_str()) {
            self.record_failure(source.ip());
            return challenge(false);
        }
        if !self.nonces.accept_count(&c.nonce, c.nc.as_deref()) {
            // A replayed count: make the client start over with a new nonce.
            return challenge(true);
        }
        let user = match self.users.get_user_by_name(&c.username).await {
            Ok(u) if u.active => u,
            _ => {
                self.record_failure(source.ip());
                return challenge(false);
            }
        };
        let id = Identity {
            user_id: user.id.clone(),
            username: user.username.clone(),
            scopes: user.scopes.clone(),
            roles: user.roles.clone(),
        };
        if !id.has_scope(scope) && !id.is_admin() {
            return Outcome::Refused(Response::new(403).with_reason("Insufficient Scope"));
        }
        Outcome::Authenticated(id)
    }
}
