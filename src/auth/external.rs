//! Trusted external issuers: their keys come from a PEM file or a JWKS URL. The JWKS
//! is fetched on first use, refreshed when older than `jwks_refresh_secs`, and an
//! unknown kid triggers a refetch at most once per `jwks_min_refetch_secs`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey};
use tokio::sync::Mutex;

use super::{AuthError, TrustedIssuer};

/// A JWKS document larger than this is refused.
const MAX_JWKS_BYTES: usize = 1 << 20;

#[derive(Default)]
struct Fetched {
    keys: HashMap<String, (DecodingKey, Algorithm)>,
    fetched_at: Option<Instant>,
}

pub struct ExternalIssuer {
    pub cfg: TrustedIssuer,
    static_key: Option<(DecodingKey, Algorithm)>,
    fetched: Mutex<Fetched>,
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
            fetched: Mutex::new(Fetched::default()),
            client,
        })
    }

    /// The key for `kid` (the static key ignores kid), and the algorithm it is for.
    pub async fn key(&self, kid: Option<&str>) -> Result<(DecodingKey, Algorithm), AuthError> {
        if let Some(k) = &self.static_key {
            return Ok(k.clone());
        }
        let Some(url) = &self.cfg.jwks_url else {
            return Err(AuthError::UnknownKey);
        };
        let kid = kid.ok_or(AuthError::UnknownKey)?;
        let mut fetched = self.fetched.lock().await;
        let age = fetched.fetched_at.map(|t| t.elapsed());
        let stale = age.is_none_or(|a| a >= Duration::from_secs(self.cfg.jwks_refresh_secs));
        let unknown = !fetched.keys.contains_key(kid);
        let may_refetch =
            age.is_none_or(|a| a >= Duration::from_secs(self.cfg.jwks_min_refetch_secs));
        if stale || (unknown && may_refetch) {
            // Record the attempt even when it fails, so a dead IdP is not hammered.
            fetched.fetched_at = Some(Instant::now());
            match self.fetch(url).await {
                Ok(keys) => fetched.keys = keys,
                Err(e) => tracing::warn!(issuer = %self.cfg.issuer, "JWKS fetch failed: {e}"),
            }
        }
        fetched.keys.get(kid).cloned().ok_or(AuthError::UnknownKey)
    }

    async fn fetch(&self, url: &str) -> Result<HashMap<String, (DecodingKey, Algorithm)>, String> {
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
                jsonwebtoken::jwk::AlgorithmParameters::RSA(_) => Algorithm::RS256,
                jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_) => Algorithm::ES256,
                _ => continue,
            };
            if let Ok(key) = DecodingKey::from_jwk(jwk) {
                keys.insert(kid.clone(), (key, alg));
            }
        }
        Ok(keys)
    }
}
