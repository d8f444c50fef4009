//! The token validator shared by SIP and HTTP. It accepts sipreg's own RS256 tokens,
//! tokens of trusted external issuers (RS256/ES256), and API keys, and returns the
//! claims. Only RS256 and ES256 are allowed: `none` and every HS* are refused before
//! any key is looked at. Successful results are cached (see [`super::cache`]) so the
//! SIP hot path can call [`Validator::validate_cached`] without awaiting.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::api_key::{self, KEY_PREFIX};
use super::cache::ValidationCache;
use super::external::ExternalIssuer;
use super::keys::KeyStore;
use super::{AuthError, Claims, TokensConfig, now, secret};
use crate::users::store::Store;

/// Longer credentials are refused unread (a JWT of sipreg is under 1 KiB).
pub const MAX_TOKEN_LEN: usize = 8 * 1024;
/// Least time between two key-ring reloads caused by unknown kids.
const RELOAD_EVERY: Duration = Duration::from_secs(10);
/// `last_used_at` of an API key is written at most this often.
const TOUCH_EVERY_SECS: i64 = 60;

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
    external: Vec<Arc<ExternalIssuer>>,
    last_reload: Mutex<Option<Instant>>,
}

impl Validator {
    pub fn new(cfg: TokensConfig, keys: Arc<KeyStore>, store: Store) -> Result<Self, String> {
        let build = |proxy: bool| {
            let b = reqwest::Client::builder().connect_timeout(Duration::from_secs(5));
            let b = if proxy { b } else { b.no_proxy() };
            b.build().map_err(|e| e.to_string())
        };
        let (client, loopback_client) = (build(true)?, build(false)?);
        let external = cfg
            .trusted_issuers
            .iter()
            .map(|t| {
                // A JWKS on this machine is never fetched through a proxy.
                let local = t.jwks_url.as_deref().is_some_and(is_loopback_url);
                let c = if local {
                    loopback_client.clone()
                } else {
                    client.clone()
                };
                ExternalIssuer::new(t.clone(), c).map(Arc::new)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Validator {
            cache: ValidationCache::new(cfg.cache_capacity, cfg.cache_max_secs),
            cfg,
            keys,
            store,
            external,
            last_reload: Mutex::new(None),
        })
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
        self.cache.get(&key, now()).map(Ok)
    }

    /// Full validation: signature, algorithm, kid, iss, aud, exp/nbf, revocation.
    pub async fn validate(&self, token: &str) -> Result<Claims, AuthError> {
        if let Some(verdict) = self.validate_cached(token) {
            return verdict.map(|c| (*c).clone());
        }
        let claims = if token.starts_with(KEY_PREFIX) {
            self.check_api_key(token).await?
        } else {
            self.check_jwt(token).await?
        };
        self.cache.insert(
            secret::sha256(token.as_bytes()),
            Arc::new(claims.clone()),
            now(),
        );
        Ok(claims)
    }

    /// Forget cached results for a revoked access token.
    pub fn forget_jti(&self, jti: &str) {
        self.cache.invalidate(|c| c.jti == jti);
    }

    /// Forget cached results of a disabled or removed user.
    pub fn forget_user(&self, user_id: &str) {
        self.cache.invalidate(|c| c.sub == user_id);
    }

    /// Forget cached results of a revoked API key.
    pub fn forget_api_key(&self, key_id: &str) {
        self.cache
            .invalidate(|c| c.api_key_id.as_deref() == Some(key_id));
    }

    async fn check_jwt(&self, token: &str) -> Result<Claims, AuthError> {
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
            other => {
                return Err(AuthError::AlgorithmNotAllowed(
                    other.chars().take(16).collect(),
                ));
            }
        };
        let payload: PeekPayload = peek(p)?;
        let iss = payload.iss.ok_or(AuthError::Malformed)?;
        let local = iss == self.cfg.issuer;
        let (key, key_alg, audiences) = if local {
            let kid = header.kid.as_deref().ok_or(AuthError::UnknownKey)?;
            (
                self.local_key(kid).await?,
                Algorithm::RS256,
                self.cfg.audiences.clone(),
            )
        } else {
            let ext = self
                .external
                .iter()
                .find(|e| e.cfg.issuer == iss)
                .ok_or(AuthError::WrongIssuer)?;
            let (key, key_alg) = ext.key(header.kid.as_deref()).await?;
            (key, key_alg, ext.cfg.audiences.clone())
        };
        // The key decides the algorithm, never the token (no RS/ES confusion).
        if key_alg != alg {
            return Err(AuthError::AlgorithmNotAllowed(header.alg));
        }
        let mut v = Validation::new(alg);
        v.leeway = self.cfg.leeway_secs;
        v.validate_nbf = true;
        v.set_issuer(&[&iss]);
        v.set_audience(&audiences);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &v)
            .map_err(|e| map_jwt_error(e.kind()))?
            .claims;
        if local {
            let unavailable = |e: crate::users::UsersError| AuthError::Unavailable(e.to_string());
            if !claims.jti.is_empty()
                && self
                    .store
                    .jti_revoked(&claims.jti)
                    .await
                    .map_err(unavailable)?
            {
                return Err(AuthError::Revoked);
            }
            // A client_credentials token speaks for a client, not a user: it lives as
            // long as the client is registered.
            let active = if claims.client_id.as_deref() == Some(claims.sub.as_str())
                && claims.username.is_empty()
            {
                self.store
                    .client_by_id(&claims.sub)
                    .await
                    .map(|c| c.is_some())
            } else {
                self.store.user_active(&claims.sub).await
            };
            if !active.map_err(unavailable)? {
                return Err(AuthError::UserDisabled);
            }
        }
        Ok(claims)
    }

    async fn local_key(&self, kid: &str) -> Result<DecodingKey, AuthError> {
        if let Some(k) = self.keys.ring().find(kid) {
            return Ok(k.decoding.clone());
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
            .map(|k| k.decoding.clone())
            .ok_or(AuthError::UnknownKey)
    }

    async fn check_api_key(&self, key: &str) -> Result<Claims, AuthError> {
        let unavailable = |e: crate::users::UsersError| AuthError::Unavailable(e.to_string());
        let (prefix, secret) = api_key::parse(key).ok_or(AuthError::InvalidApiKey)?;
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
            client_id: None,
        })
    }
}

fn is_loopback_url(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    ["127.", "localhost:", "localhost/", "[::1]"]
        .iter()
        .any(|p| rest.starts_with(p))
        || rest == "localhost"
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
