//! Trusted external issuers: their keys come from a PEM file, a JWKS URL, or OpenID
//! discovery (`{issuer}/.well-known/openid-configuration` → `jwks_uri`). The JWKS
//! is fetched on first use, then refreshed every `jwks_refresh_secs` by a background
//! task, and on use once older than that (the known keys keep serving meanwhile); an unknown kid triggers a
//! refetch at most once per `jwks_min_refetch_secs`. A failed fetch (provider down,
//! bad document, no usable key) keeps the last good key set and is logged. Plain
//! `http://` is only fetched from loopback (tests, a co-located IdP); a loopback
//! address is never reached through a proxy.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

use super::{AuthError, TrustedIssuer};

/// A JWKS or discovery document larger than this is refused.
const MAX_JWKS_BYTES: usize = 1 << 20;
/// Where OpenID Connect Discovery 1.0 §4 puts the provider's metadata.
const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";
/// Shortest period of the scheduled refresh (`jwks_refresh_secs = 0` refreshes on
/// every use, in the background, but is not a busy loop).
const MIN_SCHEDULE_SECS: u64 = 5;

/// The part of the provider metadata sipreg reads.
#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

/// Whether `url` may be fetched: `https`, or `http` to a loopback host.
pub fn allowed_url(url: &str) -> bool {
    match url::Url::parse(url) {
        Ok(u) if u.scheme() == "https" => u.host().is_some(),
        Ok(u) if u.scheme() == "http" => is_loopback_url(url),
        _ => false,
    }
}

/// Whether `url` names a loopback host (127.0.0.0/8, ::1, localhost).
pub fn is_loopback_url(url: &str) -> bool {
    match url::Url::parse(url)
        .ok()
        .and_then(|u| u.host().map(|h| h.to_owned()))
    {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

type KeyMap = HashMap<String, (DecodingKey, Algorithm)>;

pub struct ExternalIssuer {
    pub cfg: TrustedIssuer,
    static_key: Option<(DecodingKey, Algorithm)>,
    keys: RwLock<Arc<KeyMap>>,
    /// When the last fetch was attempted (successful or not).
    fetched_at: Mutex<Option<Instant>>,
    /// One fetch at a time per issuer.
    fetching: tokio::sync::Mutex<()>,
    /// Whether the periodic refresh task runs.
    scheduled: std::sync::atomic::AtomicBool,
    /// The `jwks_uri` discovery found; forgotten when a fetch from it fails.
    discovered: Mutex<Option<String>>,
    client: reqwest::Client,
    /// The same without proxies, for loopback URLs.
    loopback_client: reqwest::Client,
}

impl ExternalIssuer {
    pub fn new(
        cfg: TrustedIssuer,
        client: reqwest::Client,
        loopback_client: reqwest::Client,
    ) -> Result<Self, String> {
        let static_key = match &cfg.public_key_file {
            Some(path) => {
                let pem = std::fs::read(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                let key = DecodingKey::from_rsa_pem(&pem)
                    .map(|k| (k, Algorithm::RS256))
                    .or_else(|_| DecodingKey::from_ec_pem(&pem).map(|k| (k, Algorithm::ES256)))
                    .map_err(|e| format!("{}: not an RSA or EC public key: {e}", path.display()))?;
                Some(key)
            }
            None => None,
        };
        if static_key.is_none() {
            // Where the keys come from: jwks_url, or discovery under the issuer URL.
            let source = cfg.jwks_url.as_deref().unwrap_or(&cfg.issuer);
            if !allowed_url(source) {
                return Err(format!(
                    "trusted issuer {}: {source} must be https (http only to loopback), \
                     or set public_key_file",
                    cfg.issuer
                ));
            }
        }
        Ok(ExternalIssuer {
            cfg,
            static_key,
            keys: RwLock::new(Arc::new(HashMap::new())),
            fetched_at: Mutex::new(None),
            fetching: tokio::sync::Mutex::new(()),
            discovered: Mutex::new(None),
            scheduled: std::sync::atomic::AtomicBool::new(false),
            client,
            loopback_client,
        })
    }

    /// The key for `kid` (a configured PEM key ignores kid), and its algorithm.
    pub async fn key(
        self: &Arc<Self>,
        kid: Option<&str>,
    ) -> Result<(DecodingKey, Algorithm), AuthError> {
        if let Some(k) = &self.static_key {
            return Ok(k.clone());
        }
        self.schedule();
        let kid = kid.ok_or(AuthError::UnknownKey)?;
        if let Some(found) = self.lookup(kid) {
            if self
                .age()
                .is_none_or(|a| a >= Duration::from_secs(self.cfg.jwks_refresh_secs))
            {
                // Stale: refresh behind the scenes, keep answering with what we have.
                let this = self.clone();
                tokio::spawn(async move {
                    this.refetch(Duration::from_secs(this.cfg.jwks_refresh_secs))
                        .await
                });
            }
            return Ok(found);
        }
        self.refetch(Duration::from_secs(self.cfg.jwks_min_refetch_secs))
            .await;
        self.lookup(kid).ok_or(AuthError::UnknownKey)
    }

    /// Starts (once, from the first use, inside the runtime) the periodic refresh, so
    /// keys the provider withdrew stop verifying even while no token arrives. The task
    /// ends with the issuer.
    fn schedule(self: &Arc<Self>) {
        if self
            .scheduled
            .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            return;
        }
        let period = Duration::from_secs(self.cfg.jwks_refresh_secs.max(MIN_SCHEDULE_SECS));
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                let Some(this) = weak.upgrade() else { return };
                this.refetch(period).await;
            }
        });
    }

    fn lookup(&self, kid: &str) -> Option<(DecodingKey, Algorithm)> {
        let keys = match self.keys.read() {
            Ok(k) => k.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        keys.get(kid).cloned()
    }

    fn age(&self) -> Option<Duration> {
        match self.fetched_at.lock() {
            Ok(t) => t.map(|t| t.elapsed()),
            Err(poisoned) => poisoned.into_inner().map(|t| t.elapsed()),
        }
    }

    /// Fetches the JWKS unless another fetch happened less than `min_age` ago.
    async fn refetch(&self, min_age: Duration) {
        if self.static_key.is_some() {
            return;
        }
        let _one_at_a_time = self.fetching.lock().await;
        if self.age().is_some_and(|a| a < min_age) {
            return;
        }
        // Record the attempt even when it fails, so a dead IdP is not hammered.
        if let Ok(mut t) = self.fetched_at.lock() {
            *t = Some(Instant::now());
        }
        let fetched = match self.jwks_url().await {
            Ok(url) => self.fetch_keys(&url).await.inspect_err(|_| {
                // Maybe the provider moved its keys: discover again next time.
                if let Ok(mut d) = self.discovered.lock() {
                    *d = None;
                }
            }),
            Err(e) => Err(e),
        };
        match fetched {
            Ok(keys) => match self.keys.write() {
                Ok(mut k) => *k = Arc::new(keys),
                Err(poisoned) => *poisoned.into_inner() = Arc::new(keys),
            },
            Err(e) => tracing::warn!(
                issuer = %self.cfg.issuer,
                kept = self.key_count(),
                "JWKS fetch failed, keeping the last good keys: {e}"
            ),
        }
    }

    fn key_count(&self) -> usize {
        match self.keys.read() {
            Ok(k) => k.len(),
            Err(poisoned) => poisoned.into_inner().len(),
        }
    }

    /// `jwks_url`, or the `jwks_uri` of the provider's discovery document.
    async fn jwks_url(&self) -> Result<String, String> {
        if let Some(url) = &self.cfg.jwks_url {
            return Ok(url.clone());
        }
        if let Some(url) = self.discovered.lock().ok().and_then(|d| d.clone()) {
            return Ok(url);
        }
        let url = format!("{}{DISCOVERY_PATH}", self.cfg.issuer.trim_end_matches('/'));
        let doc: Discovery = serde_json::from_slice(&self.get(&url).await?)
            .map_err(|e| format!("discovery document {url}: {e}"))?;
        // OpenID Connect Discovery 1.0 §4.3: the document must name this very issuer.
        if doc.issuer != self.cfg.issuer {
            return Err(format!("discovery document {url} names another issuer"));
        }
        if !allowed_url(&doc.jwks_uri) {
            return Err(format!(
                "discovery document {url}: jwks_uri must be https (http only to loopback)"
            ));
        }
        tracing::info!(issuer = %self.cfg.issuer, jwks_uri = %doc.jwks_uri, "OpenID provider discovered");
        if let Ok(mut d) = self.discovered.lock() {
            *d = Some(doc.jwks_uri.clone());
        }
        Ok(doc.jwks_uri)
    }

    /// A bounded GET of `url`.
    async fn get(&self, url: &str) -> Result<bytes::Bytes, String> {
        let client = if is_loopback_url(url) {
            &self.loopback_client
        } else {
            &self.client
        };
        let resp = client
            .get(url)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map_err(|e| e.to_string())?
            .error_for_status()
            .map_err(|e| e.to_string())?;
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_JWKS_BYTES as u64)
        {
            return Err(format!("{url}: document too large"));
        }
        let body = resp.bytes().await.map_err(|e| e.to_string())?;
        if body.len() > MAX_JWKS_BYTES {
            return Err(format!("{url}: document too large"));
        }
        Ok(body)
    }

    async fn fetch_keys(&self, url: &str) -> Result<KeyMap, String> {
        let body = self.get(url).await?;
        let set: JwkSet = serde_json::from_slice(&body).map_err(|e| format!("{url}: {e}"))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = &jwk.common.key_id else {
                continue;
            };
            // Signing keys only (RFC 7517 §4.2): an encryption key is never a verifier.
            if jwk
                .common
                .public_key_use
                .as_ref()
                .is_some_and(|u| *u != jsonwebtoken::jwk::PublicKeyUse::Signature)
            {
                continue;
            }
            let alg = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => Algorithm::RS256,
                AlgorithmParameters::EllipticCurve(_) => Algorithm::ES256,
                _ => continue,
            };
            if let Ok(key) = DecodingKey::from_jwk(jwk) {
                keys.insert(kid.clone(), (key, alg));
            }
        }
        if keys.is_empty() {
            return Err(format!("{url}: no usable RS256/ES256 key"));
        }
        Ok(keys)
    }
}
