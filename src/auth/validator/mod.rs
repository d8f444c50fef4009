//! The token validator shared by SIP and HTTP. It accepts sipreg's own tokens (RS256,
//! or ES256/EdDSA with `[tokens] algorithm`), tokens of trusted external issuers
//! (RS256/ES256, mapped to a local user and sipreg scopes by [`super::mapping`]), and
//! API keys, and returns the claims. Only RS256, ES256 and EdDSA are allowed, each only
//! with a key of its kind: `none` and every HS* are refused before any key is looked at.
//! Successful results are cached (see [`super::cache`]) so the SIP hot path can call
//! [`Validator::validate_cached`] without awaiting.
//!
//! Validating sipreg's own token asks the store nothing: revocations are in memory
//! ([`super::revocations`]), loaded at start and kept current from the store's
//! revocation log (this process's changes at once through [`Validator::sync`], other
//! processes' by polling, [`Validator::watch`]). The signature check of a token not yet
//! cached, and an API key's look-up, run on a bounded pool of low-priority threads, never
//! on the threads that receive SIP; a full pool answers `Busy` at once. An external
//! token's user is looked up (or created) in the store the first time it is seen.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::api_key::{self, KEY_PREFIX};
use super::cache::ValidationCache;
use super::external::ExternalIssuer;
use super::gate::Gate;
use super::keys::KeyStore;
use super::mapping;
use super::provision::{LocalUser, Provisioner};
use super::revocations::{Revocations, Standing};
use super::{AuthError, Claims, Provision, TokensConfig, TrustedIssuer, now, secret};
use crate::users::UsersError;
use crate::users::cpu_pool::CpuPool;
use crate::users::store::Store;

mod revocation_feed;

/// The issuers `wanted`, reusing those of `old` whose settings are the same (with the
/// keys they fetched).
fn build_issuers(
    wanted: &[TrustedIssuer],
    old: &[Arc<ExternalIssuer>],
    (client, loopback): &(reqwest::Client, reqwest::Client),
) -> Result<Vec<Arc<ExternalIssuer>>, String> {
    wanted
        .iter()
        .map(|t| match old.iter().find(|o| o.cfg == *t) {
            Some(same) => Ok(Arc::clone(same)),
            None => ExternalIssuer::new(t.clone(), client.clone(), loopback.clone()).map(Arc::new),
        })
        .collect()
}

/// Longer credentials are refused unread (a JWT of sipreg is under 1 KiB).
pub const MAX_TOKEN_LEN: usize = 8 * 1024;
/// Least time between two key-ring reloads caused by unknown kids.
const RELOAD_EVERY: Duration = Duration::from_secs(10);
/// `last_used_at` of an API key is written at most this often.
const TOUCH_EVERY_SECS: i64 = 60;
/// Most users `provision = "auto"` issuers may create per minute, all issuers together.
const MAX_PROVISIONS_PER_MINUTE: u32 = 60;

#[derive(Deserialize)]
struct PeekHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

#[derive(Deserialize)]
struct PeekPayload {
    #[serde(default)]
    iss: Option<String>,
}

pub struct Validator {
    cfg: TokensConfig,
    keys: Arc<KeyStore>,
    store: Store,
    cache: ValidationCache,
    /// The trusted external issuers in force (replaced whole on reload).
    external: RwLock<Arc<Vec<Arc<ExternalIssuer>>>>,
    /// The HTTP clients external issuers fetch keys with (kept for issuers added on reload).
    clients: (reqwest::Client, reqwest::Client),
    /// Bumped by every change of the trusted issuers.
    generation: AtomicU64,
    revocations: Revocations,
    /// The last revocation log row applied; held while catching up (never on the SIP
    /// path).
    log_position: tokio::sync::Mutex<i64>,
    /// First-sighting signature checks.
    pool: CpuPool,
    /// First-sighting store look-ups (API keys; Digest through [`Validator::gate`]).
    gate: Gate,
    /// External tokens' users already looked up, by issuer and username.
    known_users: moka::sync::Cache<(String, String), LocalUser>,
    last_reload: Mutex<Option<Instant>>,
    /// Finds (and may create) the users external tokens name; set by the users service.
    provisioner: OnceLock<Weak<dyn Provisioner>>,
    /// Start of the current minute and the users created in it.
    provisioned: Mutex<(Instant, u32)>,
}

impl Validator {
    pub fn new(cfg: TokensConfig, keys: Arc<KeyStore>, store: Store) -> Result<Self, String> {
        // Signatures are checked with ring (RS256, ES256), see `super::crypto`.
        super::crypto::install();
        let build = |proxy: bool| {
            let b = reqwest::Client::builder().connect_timeout(Duration::from_secs(5));
            let b = if proxy { b } else { b.no_proxy() };
            b.build().map_err(|e| e.to_string())
        };
        let clients = (build(true)?, build(false)?);
        let external = build_issuers(&cfg.trusted_issuers, &[], &clients)?;
        let threads = match cfg.verify_threads {
            0 => crate::users::cpu_pool::default_slots(),
            n => n,
        };
        // Tokens signed before a change are presented at most this long after it.
        let horizon = super::secs(cfg.access_ttl_secs).saturating_add(super::secs(cfg.leeway_secs));
        Ok(Validator {
            cache: ValidationCache::new(cfg.cache_capacity, cfg.cache_max_secs),
            revocations: Revocations::new(horizon),
            log_position: tokio::sync::Mutex::new(0),
            pool: CpuPool::with_limits("jwt-verify", threads, threads + cfg.verify_queue),
            gate: Gate::new(threads, cfg.verify_queue),
            known_users: moka::sync::Cache::builder()
                .max_capacity(u64::try_from(cfg.cache_capacity).unwrap_or(u64::MAX))
                .support_invalidation_closures()
                .build(),
            cfg,
            keys,
            store,
            external: RwLock::new(Arc::new(external)),
            clients,
            generation: AtomicU64::new(0),
            last_reload: Mutex::new(None),
            provisioner: OnceLock::new(),
            provisioned: Mutex::new((Instant::now(), 0)),
        })
    }

    /// Where external tokens' users are looked up and created (the users service). Set
    /// once; later calls are ignored.
    pub fn set_provisioner(&self, p: Weak<dyn Provisioner>) {
        let _ = self.provisioner.set(p);
    }

    /// The cached verdict, without awaiting: `Some(Ok)` for a cached valid credential,
    /// `Some(Err)` for one refused on sight (oversized, empty), `None` when the caller
    /// must run [`Validator::validate`].
    pub fn validate_cached(&self, token: &str) -> Option<Result<Arc<Claims>, AuthError>> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Some(Err(AuthError::Malformed));
        }
        let key = secret::sha256(token.as_bytes());
        // Shared, not cloned: a copy of the claims (a handful of strings) per REGISTER
        // showed up in profiles.
        let now = now();
        let hit = self.cache.get(&key, now)?;
        crate::metrics::token_cache(true);
        // Revoked since it was cached (another process's change, applied by polling,
        // may not have reached the cache yet): refused, and dropped.
        match self.revocations.check(&hit, now) {
            Ok(Standing::Known) => Some(Ok(hit)),
            // Learnt too late to be recorded (see `Revocations::learn`): check in full.
            Ok(Standing::Unknown) => None,
            Err(e) => {
                self.cache.remove(&key);
                Some(Err(e))
            }
        }
    }

    /// Full validation: signature, algorithm, kid, iss, aud, exp/nbf, revocation.
    pub async fn validate(&self, token: &str) -> Result<Claims, AuthError> {
        if let Some(verdict) = self.validate_cached(token) {
            return verdict.map(|c| (*c).clone());
        }
        // A miss is counted once, here, where the token is checked in full (the SIP
        // path looks in the cache twice before it gets here).
        crate::metrics::token_cache(false);
        let generation = self.generation.load(Ordering::Acquire);
        let claims = if token.starts_with(KEY_PREFIX) {
            self.check_api_key(token).await?
        } else {
            self.check_jwt(token).await?
        };
        if self.revocations.check(&claims, now())? == Standing::Unknown {
            self.confirm_subject(&claims).await?;
        }
        // The trusted issuers were replaced (reload) while this token was being checked:
        // an issuer removed meanwhile is refused, and the verdict is not cached (the
        // reload has just emptied the cache of that issuer's tokens).
        if self.generation.load(Ordering::Acquire) != generation
            && claims.iss != self.cfg.issuer
            && claims.api_key_id.is_none()
        {
            return match self.issuer(&claims.iss) {
                Some(_) => Ok(claims),
                None => Err(AuthError::WrongIssuer),
            };
        }
        self.cache.insert(
            secret::sha256(token.as_bytes()),
            Arc::new(claims.clone()),
            now(),
        );
        Ok(claims)
    }

    /// The trusted external issuers in force.
    fn issuers(&self) -> Arc<Vec<Arc<ExternalIssuer>>> {
        match self.external.read() {
            Ok(e) => Arc::clone(&e),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// The trusted issuer named `iss`, if it is trusted now.
    fn issuer(&self, iss: &str) -> Option<Arc<ExternalIssuer>> {
        self.issuers().iter().find(|e| e.cfg.issuer == iss).cloned()
    }

    /// Replaces the trusted external issuers (SIGHUP) for the tokens that follow. An
    /// issuer whose settings are unchanged keeps its fetched keys; the cached verdicts of
    /// a removed or changed issuer's tokens are forgotten, so they are checked again
    /// (and refused, when it is gone). Returns the issuers added, changed and removed.
    pub fn set_trusted_issuers(&self, wanted: &[TrustedIssuer]) -> Result<Vec<String>, String> {
        let old = self.issuers();
        let new = build_issuers(wanted, &old, &self.clients)?;
        let mut touched: Vec<String> = Vec::new();
        for o in old.iter() {
            if !new.iter().any(|n| Arc::ptr_eq(n, o)) {
                touched.push(o.cfg.issuer.clone());
            }
        }
        for n in &new {
            if !old.iter().any(|o| Arc::ptr_eq(n, o)) && !touched.contains(&n.cfg.issuer) {
                touched.push(n.cfg.issuer.clone());
            }
        }
        match self.external.write() {
            Ok(mut e) => *e = Arc::new(new),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(new),
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
        // After the swap: a verdict cached from here on was reached under the new list.
        if !touched.is_empty() {
            let gone = touched.clone();
            self.cache.invalidate(move |c| gone.contains(&c.iss));
        }
        Ok(touched)
    }

    /// The bound on first-sighting store look-ups, shared with Digest.
    pub fn gate(&self) -> &Gate {
        &self.gate
    }

    /// Cached verdicts held.
    pub fn cache_len(&self) -> usize {
        self.cache.len()
    }

    async fn check_jwt(&self, token: &str) -> Result<Claims, AuthError> {
        let Peeked { alg, kid, iss } = peek_jwt(token)?;
        let local = iss == self.cfg.issuer;
        let mut external = None;
        let (key, key_alg, audiences) = if local {
            let kid = kid.as_deref().ok_or(AuthError::UnknownKey)?;
            let (key, key_alg) = self.local_key(kid).await?;
            (key, key_alg, self.cfg.audiences.clone())
        } else {
            let ext = self.issuer(&iss).ok_or(AuthError::WrongIssuer)?;
            let (key, key_alg) = ext.key(kid.as_deref()).await?;
            let audiences = ext.cfg.audiences.clone();
            external = Some(ext);
            (key, key_alg, audiences)
        };
        // The key decides the algorithm, never the token (no RS/ES confusion).
        if key_alg != alg {
            return Err(AuthError::AlgorithmNotAllowed(alg_name(alg)));
        }
        let mut v = Validation::new(alg);
        v.leeway = self.cfg.leeway_secs;
        v.validate_nbf = true;
        v.set_issuer(&[&iss]);
        v.set_audience(&audiences);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        if let Some(ext) = external {
            let raw = self.verify::<Map<String, Value>>(token, key, v).await?;
            return self.external_claims(&ext, raw).await;
        }
        // A local token: its revocation, user and client are checked in memory by the
        // caller (`validate`), no store query.
        self.verify::<Claims>(token, key, v).await
    }

    /// The signature and registered claims checked on the verification pool.
    async fn verify<T: serde::de::DeserializeOwned + Send + 'static>(
        &self,
        token: &str,
        key: DecodingKey,
        v: Validation,
    ) -> Result<T, AuthError> {
        let token = token.to_string();
        self.pool
            .run(move || {
                jsonwebtoken::decode::<T>(&token, &key, &v)
                    .map(|d| d.claims)
                    .map_err(|e| map_jwt_error(e.kind()))
            })
            .await
            .map_err(pool_error)?
    }

    /// The claims of a valid external token, in sipreg's terms: `sub` and `username`
    /// are the local user's (found, or created with `provision = "auto"`), `scope` is
    /// what the issuer's mapping grants.
    async fn external_claims(
        &self,
        ext: &ExternalIssuer,
        raw: Map<String, Value>,
    ) -> Result<Claims, AuthError> {
        let iss = ext.cfg.issuer.as_str();
        let mapped = mapping::map(&ext.cfg, &raw).map_err(|why| {
            tracing::warn!(issuer = %iss, "external token refused: {why}");
            AuthError::Unmapped(why)
        })?;
        let user = self
            .local_user(&ext.cfg.issuer, ext.cfg.provision, &mapped.username)
            .await?;
        if !user.active {
            return Err(AuthError::UserDisabled);
        }
        let int = |name: &str| raw.get(name).and_then(Value::as_i64).unwrap_or(0);
        let text = |name: &str| raw.get(name).and_then(Value::as_str).map(str::to_string);
        let aud = match raw.get("aud") {
            Some(Value::String(a)) => vec![a.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        };
        Ok(Claims {
            iss: iss.to_string(),
            sub: user.id,
            aud,
            exp: int("exp"),
            iat: int("iat"),
            nbf: int("nbf"),
            jti: text("jti").unwrap_or_default(),
            username: user.username,
            roles: mapped.roles,
            scope: mapped.scopes.join(" "),
            client_id: text("client_id"),
            api_key_id: None,
            sid: None,
        })
    }

    /// The local user an external token names; unknown ones are refused or created.
    async fn local_user(
        &self,
        issuer: &str,
        provision: Provision,
        username: &str,
    ) -> Result<LocalUser, AuthError> {
        // A user already mapped is not looked up again (a change to it drops the entry;
        // disabled or removed users are refused by the revocation state).
        let known = (issuer.to_string(), username.to_string());
        if let Some(u) = self.known_users.get(&known) {
            return Ok(u);
        }
        let u = self.find_or_provision(issuer, provision, username).await?;
        self.known_users.insert(known, u.clone());
        Ok(u)
    }

    /// The store's answer for an external token's user, on first sight.
    async fn find_or_provision(
        &self,
        issuer: &str,
        provision: Provision,
        username: &str,
    ) -> Result<LocalUser, AuthError> {
        let Some(p) = self.provisioner.get().and_then(Weak::upgrade) else {
            return Err(AuthError::Unavailable("no users service".to_string()));
        };
        let _place = self.gate.enter().await?;
        if let Some(u) = p.find(username).await.map_err(AuthError::Unavailable)? {
            return Ok(u);
        }
        if provision == Provision::Refuse {
            tracing::warn!(%issuer, %username, "external token refused: no such user (provision = \"refuse\")");
            return Err(AuthError::UnknownUser);
        }
        if !self.provision_allowed() {
            tracing::warn!(%issuer, %username, "external token refused: too many users provisioned this minute");
            return Err(AuthError::UnknownUser);
        }
        match p.create(username).await {
            Ok(u) => {
                tracing::info!(%issuer, %username, user_id = %u.id, "user provisioned from an external token");
                Ok(u)
            }
            // Two first tokens at once: the other one created it.
            Err(e) => match p.find(username).await.map_err(AuthError::Unavailable)? {
                Some(u) => Ok(u),
                None => {
                    tracing::warn!(%issuer, %username, "cannot provision user: {e}");
                    Err(AuthError::UnknownUser)
                }
            },
        }
    }

    /// Counts one provisioning against the per-minute budget.
    fn provision_allowed(&self) -> bool {
        let Ok(mut w) = self.provisioned.lock() else {
            return false;
        };
        if w.0.elapsed() >= Duration::from_secs(60) {
            *w = (Instant::now(), 0);
        }
        w.1 += 1;
        w.1 <= MAX_PROVISIONS_PER_MINUTE
    }

    /// The verification key of `kid` and its algorithm (a key has exactly one).
    async fn local_key(&self, kid: &str) -> Result<(DecodingKey, Algorithm), AuthError> {
        if let Some(k) = self.keys.ring().find(kid) {
            // Retired: every token it signed has expired (see `keys::retire_time`).
            if k.retire_after.is_some_and(|t| t <= now()) {
                return Err(AuthError::UnknownKey);
            }
            return Ok((k.decoding.clone(), k.alg));
        }
        // Maybe another process rotated keys: reload, at most once per RELOAD_EVERY.
        let due = match self.last_reload.lock() {
            Ok(mut last) => {
                let due = last.is_none_or(|t| t.elapsed() >= RELOAD_EVERY);
                if due {
                    *last = Some(Instant::now());
                }
                due
            }
            Err(_) => false,
        };
        if due && let Err(e) = self.keys.reload().await {
            tracing::warn!("key ring reload failed: {e}");
        }
        self.keys
            .ring()
            .find(kid)
            .map(|k| (k.decoding.clone(), k.alg))
            .ok_or(AuthError::UnknownKey)
    }

    async fn check_api_key(&self, key: &str) -> Result<Claims, AuthError> {
        let unavailable = |e: crate::users::UsersError| AuthError::Unavailable(e.to_string());
        let (prefix, secret) = api_key::parse(key).ok_or(AuthError::InvalidApiKey)?;
        // The look-up waits on the store (sqlx's own threads): bounded by the gate.
        let _place = self.gate.enter().await?;
        let (info, hash) = self
            .store
            .api_key_by_prefix(prefix)
            .await
            .map_err(unavailable)?
            .ok_or(AuthError::InvalidApiKey)?;
        if !api_key::matches(secret, &hash) {
            return Err(AuthError::InvalidApiKey);
        }
        if info.revoked_at.is_some() {
            return Err(AuthError::Revoked);
        }
        let now = now();
        if info.expires_at.is_some_and(|e| e <= now) {
            return Err(AuthError::Expired);
        }
        let (user, _) = self
            .store
            .user_by_id(&info.user_id)
            .await
            .map_err(unavailable)?
            .ok_or(AuthError::UserDisabled)?;
        if !user.active {
            return Err(AuthError::UserDisabled);
        }
        let touch_due = info
            .last_used_at
            .is_none_or(|t| now - t >= TOUCH_EVERY_SECS);
        if touch_due && let Err(e) = self.store.touch_api_key(&info.id, now).await {
            tracing::warn!(key_id = %info.id, "cannot record API key use: {e}");
        }
        let ttl = super::secs(self.cfg.access_ttl_secs);
        Ok(Claims {
            iss: self.cfg.issuer.clone(),
            sub: user.id,
            aud: self.cfg.audiences.clone(),
            exp: info
                .expires_at
                .map_or(now.saturating_add(ttl), |e| e.min(now.saturating_add(ttl))),
            iat: now,
            nbf: now,
            jti: String::new(),
            username: user.username,
            roles: user.roles,
            scope: info.scopes.join(" "),
            api_key_id: Some(info.id),
            sid: None,
            client_id: None,
        })
    }
}

/// What the validator reads of a JWT before any key is looked at.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peeked {
    /// One of the allowed algorithms (RS256, ES256, EdDSA), never `none` or HS*.
    pub alg: Algorithm,
    pub kid: Option<String>,
    pub iss: String,
}

/// Reads the header and issuer of a compact JWT without checking anything else: three
/// segments, an allowed `alg`, an `iss`. Pure, and public only for the fuzz targets
/// (`fuzz/`): everything here runs on input from anyone, before any signature check.
#[doc(hidden)]
pub fn peek_jwt(token: &str) -> Result<Peeked, AuthError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Malformed);
    };
    let header: PeekHeader = peek(h)?;
    let alg = match header.alg.as_str() {
        "RS256" => Algorithm::RS256,
        "ES256" => Algorithm::ES256,
        "EdDSA" => Algorithm::EdDSA,
        other => {
            return Err(AuthError::AlgorithmNotAllowed(
                other.chars().take(16).collect(),
            ));
        }
    };
    let payload: PeekPayload = peek(p)?;
    let iss = payload.iss.ok_or(AuthError::Malformed)?;
    Ok(Peeked {
        alg,
        kid: header.kid,
        iss,
    })
}

/// The `alg` name of an allowed algorithm, as the token spelled it.
fn alg_name(alg: Algorithm) -> String {
    match alg {
        Algorithm::ES256 => "ES256",
        Algorithm::EdDSA => "EdDSA",
        _ => "RS256",
    }
    .to_string()
}

/// A full verification pool is `Busy` (503 with Retry-After); anything else is the
/// backend failing.
fn pool_error(e: UsersError) -> AuthError {
    match e {
        UsersError::Busy { retry_after_secs } => AuthError::Busy { retry_after_secs },
        other => AuthError::Unavailable(other.to_string()),
    }
}

fn peek<T: serde::de::DeserializeOwned>(segment: &str) -> Result<T, AuthError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| AuthError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| AuthError::Malformed)
}

fn map_jwt_error(kind: &ErrorKind) -> AuthError {
    match kind {
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::InvalidAlgorithm | ErrorKind::UnsupportedAlgorithm => {
            AuthError::AlgorithmNotAllowed("mismatch".to_string())
        }
        ErrorKind::InvalidRsaKey(_) | ErrorKind::InvalidEcdsaKey | ErrorKind::InvalidKeyFormat => {
            AuthError::BadSignature
        }
        _ => AuthError::Malformed,
    }
}
