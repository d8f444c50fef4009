//! Signing keys: RSA-2048 (or, with `[tokens] algorithm`, P-256 or Ed25519) generated
//! into the key folder (mode 0600), or a configured PEM file; `kid` is the RFC 7638
//! thumbprint. The key ring holds every key not yet
//! retired: the newest signs, all verify and appear in JWKS.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};

use super::crypto::RingSigner;
use super::{SigningAlgorithm, TokensConfig};
use crate::users::UsersError;
use crate::users::store::Store;

/// Extra time an old key stays after its last possible token expired, covering
/// nodes that have not reloaded the ring yet.
const RETIRE_MARGIN_SECS: i64 = 120;

/// One key usable for signing and verifying.
pub struct SigningKey {
    pub kid: String,
    /// RS256, ES256 or EdDSA, from the kind of key.
    pub alg: Algorithm,
    pub encoding: EncodingKey,
    /// The private key parsed once for ring; `None` for keys ring refuses (under 2048
    /// bits), which sign through jsonwebtoken's RustCrypto backend.
    pub signer: Option<RingSigner>,
    pub decoding: DecodingKey,
    pub jwk: Jwk,
    pub created_at: i64,
    pub retire_after: Option<i64>,
}

/// The live keys; `current` signs.
pub struct KeyRing {
    pub keys: Vec<Arc<SigningKey>>,
    pub current: Arc<SigningKey>,
}

impl KeyRing {
    pub fn find(&self, kid: &str) -> Option<&Arc<SigningKey>> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: self.keys.iter().map(|k| k.jwk.clone()).collect(),
        }
    }
}

/// Reads a PEM private key (RSA in PKCS#1 or PKCS#8, P-256 or Ed25519 in PKCS#8) and
/// derives its algorithm, public JWK and kid.
pub fn load_pem(
    pem: &[u8],
    created_at: i64,
    retire_after: Option<i64>,
) -> Result<SigningKey, UsersError> {
    let bad =
        |e: jsonwebtoken::errors::Error| UsersError::Internal(format!("bad signing key: {e}"));
    let (alg, encoding) = if let Ok(k) = EncodingKey::from_rsa_pem(pem) {
        (Algorithm::RS256, k)
    } else if let Ok(k) = EncodingKey::from_ec_pem(pem) {
        (Algorithm::ES256, k)
    } else {
        (
            Algorithm::EdDSA,
            EncodingKey::from_ed_pem(pem).map_err(bad)?,
        )
    };
    let mut jwk = Jwk::from_encoding_key(&encoding, alg).map_err(bad)?;
    let kid = jwk.thumbprint(ThumbprintHash::SHA256).map_err(bad)?;
    jwk.common.key_id = Some(kid.clone());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    let decoding = DecodingKey::from_jwk(&jwk).map_err(bad)?;
    let signer = match alg {
        Algorithm::ES256 => RingSigner::es256(encoding.as_bytes()),
        Algorithm::EdDSA => RingSigner::ed25519(encoding.as_bytes()),
        _ => RingSigner::rs256(encoding.as_bytes()),
    };
    let signer = match (signer, alg) {
        (Ok(s), _) => Some(s),
        // ring refuses RSA keys under 2048 bits: RustCrypto signs with those.
        (Err(e), Algorithm::RS256) => {
            tracing::warn!(kid = %kid, "signing key not usable with ring ({e}); signing with RustCrypto");
            None
        }
        (Err(e), _) => return Err(bad(e)),
    };
    Ok(SigningKey {
        kid,
        alg,
        encoding,
        signer,
        decoding,
        jwk,
        created_at,
        retire_after,
    })
}

/// A new RSA-2048 key written to `dir` with mode 0600; returns its path and kid.
pub fn generate_into(dir: &Path) -> Result<(PathBuf, String), UsersError> {
    generate_alg_into(dir, SigningAlgorithm::Rs256)
}

/// A new key for `alg` (RSA-2048, P-256, Ed25519) written to `dir` with mode 0600;
/// returns its path and kid.
pub fn generate_alg_into(
    dir: &Path,
    alg: SigningAlgorithm,
) -> Result<(PathBuf, String), UsersError> {
    let pem = match alg {
        SigningAlgorithm::Rs256 => rsa_pem()?,
        SigningAlgorithm::Es256 | SigningAlgorithm::EdDsa => {
            let rng = ring::rand::SystemRandom::new();
            let failed = |_| UsersError::Internal("key generation failed".to_string());
            let pkcs8 = if alg == SigningAlgorithm::Es256 {
                ring::signature::EcdsaKeyPair::generate_pkcs8(
                    &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    &rng,
                )
                .map_err(failed)?
                .as_ref()
                .to_vec()
            } else {
                let v2 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).map_err(failed)?;
                ed25519_pkcs8_v1(v2.as_ref())?
            };
            pkcs8_pem(&pkcs8)
        }
    };
    write_key(dir, &pem)
}

/// The PKCS#8 v1 form (RFC 8410 §7) of ring's v2 Ed25519 document: what OpenSSL writes
/// and what every reader (RustCrypto's among them) takes.
fn ed25519_pkcs8_v1(v2: &[u8]) -> Result<Vec<u8>, UsersError> {
    const V2_PREFIX: [u8; 16] = [
        0x30, 0x51, 0x02, 0x01, 0x01, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    const V1_PREFIX: [u8; 16] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    let seed = v2
        .strip_prefix(&V2_PREFIX[..])
        .and_then(|rest| rest.get(..32))
        .ok_or_else(|| UsersError::Internal("unexpected Ed25519 key encoding".to_string()))?;
    Ok([&V1_PREFIX[..], seed].concat())
}

/// A PEM `PRIVATE KEY` block (RFC 7468 §10) of a PKCS#8 DER key.
fn pkcs8_pem(der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    pem
}

fn rsa_pem() -> Result<String, UsersError> {
    use rsa::pkcs8::{EncodePrivateKey, LineEnding};
    let key = rsa::PrivateKey::new(&mut rand::rngs::SysRng, 2048)
        .map_err(|e| UsersError::Internal(format!("RSA key generation failed: {e}")))?;
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| UsersError::Internal(format!("PEM encoding failed: {e}")))?;
    Ok(pem.to_string())
}

/// Writes `pem` to `dir` as `signing-{kid}.pem`, mode 0600, never over another file.
fn write_key(dir: &Path, pem: &str) -> Result<(PathBuf, String), UsersError> {
    let io = |e: std::io::Error| {
        UsersError::Internal(format!(
            "cannot write signing key in {}: {e}",
            dir.display()
        ))
    };
    let kid = load_pem(pem.as_bytes(), 0, None)?.kid;
    std::fs::create_dir_all(dir).map_err(io)?;
    let path = dir.join(format!("signing-{kid}.pem"));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&path).map_err(io)?;
    file.write_all(pem.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    Ok((path, kid))
}

/// The shared, reloadable key ring.
pub struct KeyStore {
    store: Store,
    cfg: TokensConfig,
    ring: RwLock<Arc<KeyRing>>,
}

impl KeyStore {
    /// Loads the live keys, creating the first one when there is none.
    pub async fn open(store: Store, cfg: TokensConfig) -> Result<KeyStore, UsersError> {
        super::crypto::install();
        let now = super::now();
        if !cfg.signing_key_file.as_os_str().is_empty() {
            let pem = std::fs::read(&cfg.signing_key_file).map_err(|e| {
                UsersError::Internal(format!(
                    "cannot read {}: {e}",
                    cfg.signing_key_file.display()
                ))
            })?;
            let kid = load_pem(&pem, now, None)?.kid;
            let path = cfg.signing_key_file.display().to_string();
            store
                .add_signing_key(&kid, &path, now, retire_time(&cfg, now))
                .await?;
        } else if store.live_signing_keys(now).await?.is_empty()
            || current_alg(&store, now)
                .await?
                .is_some_and(|alg| alg != cfg.algorithm.jws())
        {
            // No key yet, or `[tokens] algorithm` changed: a new key signs from now on,
            // the others retire once their tokens have expired.
            let (path, kid) = generate_alg_into(&cfg.key_dir, cfg.algorithm)?;
            tracing::info!(kid = %kid, path = %path.display(), algorithm = ?cfg.algorithm, "generated a signing key");
            store
                .add_signing_key(
                    &kid,
                    &path.display().to_string(),
                    now,
                    retire_time(&cfg, now),
                )
                .await?;
        }
        let ring = load_ring(&store, now).await?;
        Ok(KeyStore {
            store,
            cfg,
            ring: RwLock::new(Arc::new(ring)),
        })
    }

    pub fn ring(&self) -> Arc<KeyRing> {
        match self.ring.read() {
            Ok(r) => r.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Re-reads the live keys (after a rotation by the CLI or another node).
    pub async fn reload(&self) -> Result<(), UsersError> {
        let ring = Arc::new(load_ring(&self.store, super::now()).await?);
        match self.ring.write() {
            Ok(mut r) => *r = ring,
            Err(poisoned) => *poisoned.into_inner() = ring,
        }
        Ok(())
    }

    /// Adds a new signing key; the others retire once their tokens have expired.
    pub async fn rotate(&self) -> Result<String, UsersError> {
        let now = super::now();
        let (path, kid) = generate_alg_into(&self.cfg.key_dir, self.cfg.algorithm)?;
        self.store
            .add_signing_key(
                &kid,
                &path.display().to_string(),
                now,
                retire_time(&self.cfg, now),
            )
            .await?;
        tracing::info!(kid = %kid, "signing key rotated");
        self.reload().await?;
        Ok(kid)
    }
}

fn retire_time(cfg: &TokensConfig, now: i64) -> i64 {
    now.saturating_add(super::secs(cfg.access_ttl_secs))
        .saturating_add(super::secs(cfg.leeway_secs))
        .saturating_add(RETIRE_MARGIN_SECS)
}

/// The algorithm of the key that signs now, if any key loads.
async fn current_alg(store: &Store, now: i64) -> Result<Option<Algorithm>, UsersError> {
    match load_ring(store, now).await {
        Ok(ring) => Ok(Some(ring.current.alg)),
        Err(_) => Ok(None),
    }
}

async fn load_ring(store: &Store, now: i64) -> Result<KeyRing, UsersError> {
    let rows = store.live_signing_keys(now).await?;
    let mut keys = Vec::new();
    for row in rows {
        match std::fs::read(&row.key_path) {
            Ok(pem) => {
                let key = load_pem(&pem, row.created_at, row.retire_after)?;
                if key.kid != row.kid {
                    tracing::warn!(kid = %row.kid, "signing key file changed; skipped");
                    continue;
                }
                keys.push(Arc::new(key));
            }
            Err(e) => {
                tracing::warn!(kid = %row.kid, path = %row.key_path, "cannot read signing key: {e}")
            }
        }
    }
    // The newest key without a retirement date signs.
    let current = keys
        .iter()
        .rev()
        .find(|k| k.retire_after.is_none())
        .or_else(|| keys.last())
        .cloned()
        .ok_or_else(|| UsersError::Internal("no usable signing key".to_string()))?;
    Ok(KeyRing { keys, current })
}
