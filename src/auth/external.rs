//! Trusted external issuers: their keys come from a PEM file or a JWKS URL. The JWKS
//! is fetched on first use; once older than `jwks_refresh_secs` it is refreshed in
//! the background while the known keys keep serving; an unknown kid triggers a
//! refetch at most once per `jwks_min_refetch_secs`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey};

use super::{AuthError, TrustedIssuer};

/// A JWKS document larger than this is refused.
const MAX_JWKS_BYTES: usize = 1 << 20;

type KeyMap = HashMap<String, (DecodingKey, Algorithm)>;

pub struct ExternalIssuer {
    pub cfg: TrustedIssuer,
    static_key: Option<(DecodingKey, Algorithm)>,
    keys: RwLock<Arc<KeyMap>>,
    /// When the last fetch was attempted (successful or not).
    fetched_at: Mutex<Option<Instant>>,
    /// One fetch at a time per issuer.
    fetching: tokio::sync::Mutex<()>,
    client: reqwest::Client,
}

impl ExternalIssuer {
    pub fn new(cfg: TrustedIssuer, client: reqwest::Client) -> Result<Self, String> {
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
        if static_key.is_none() && cfg.jwks_url.is_none() {
            return Err(format!(
                "trusted issuer {} needs public_key_file or jwks_url",
                cfg.issuer
            ));
        }
        Ok(ExternalIssuer {
            cfg,
            static_key,
            keys: RwLock::new(Arc::new(HashMap::new())),
            fetched_at: Mutex::new(None),
            fetching: tokio::sync::Mutex::new(()),
            client,
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
        let Some(url) = &self.cfg.jwks_url else {
            return;
        };
        let _one_at_a_time = self.fetching.lock().await;
        if self.age().is_some_and(|a| a < min_age) {
            return;
        }
        // Record the attempt even when it fails, so a dead IdP is not hammered.
        if let Ok(mut t) = self.fetched_at.lock() {
            *t = Some(Instant::now());
        }
        match self.fetch(url).await {
            Ok(keys) => match self.keys.write() {
                Ok(mut k) => *k = Arc::new(keys),
                Err(poisoned) => *poisoned.into_inner() = Arc::new(keys),
            },
            Err(e) => tracing::warn!(issuer = %self.cfg.issuer, "JWKS fetch failed: {e}"),
        }
    }

    async fn fetch(&self, url: &str) -> Result<KeyMap, String> {
        let resp = self
            .client
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
            return Err("JWKS too large".to_string());
        }
        let body = resp.bytes().await.map_err(|e| e.to_string())?;
        if body.len() > MAX_JWKS_BYTES {
            return Err("JWKS too large".to_string());
        }
        let set: JwkSet = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = &jwk.common.key_id else {
                continue;
            };
            let alg = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => Algorithm::RS256,
                AlgorithmParameters::EllipticCurve(_) => Algorithm::ES256,
                _ => continue,
            };
            if let Ok(key) = DecodingKey::from_jwk(jwk) {
                keys.insert(kid.clone(), (key, alg));
            }
        }
        Ok(keys)
    }
}
