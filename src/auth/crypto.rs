//! jsonwebtoken's crypto backed by `ring` (already in the tree through rustls) for the
//! algorithms sipreg signs and verifies: RS256, ES256 and EdDSA. RS256 with ring
//! verifies several times faster than the pure-Rust `rsa` crate (see BENCHMARKS.md,
//! "Token signatures"). Every other algorithm, and the JWK helpers, stay with
//! jsonwebtoken's RustCrypto provider. [`install`] makes it the process default.

use jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER as RUST_CRYPTO;
use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{Error, ErrorKind};
use jsonwebtoken::signature;
use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind, EncodingKey};
use ring::signature::{self as sig, KeyPair};

/// The provider: ring for RS256/ES256/EdDSA, RustCrypto for the rest.
pub static RING_PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: new_signer,
    verifier_factory: new_verifier,
    key_utils: KeyUtils {
        rsa_pub_components_from_private_key: |der| {
            (RUST_CRYPTO.key_utils.rsa_pub_components_from_private_key)(der)
        },
        rsa_pub_components_from_public_key: |der| {
            (RUST_CRYPTO.key_utils.rsa_pub_components_from_public_key)(der)
        },
        ec_pub_components_from_private_key: |der, alg| {
            (RUST_CRYPTO.key_utils.ec_pub_components_from_private_key)(der, alg)
        },
        ed_pub_components_from_private_key: |der, curve| {
            (RUST_CRYPTO.key_utils.ed_pub_components_from_private_key)(der, curve)
        },
        compute_digest: |data, hash| (RUST_CRYPTO.key_utils.compute_digest)(data, hash),
    },
};

/// Makes [`RING_PROVIDER`] jsonwebtoken's process default. Idempotent; when something
/// used jsonwebtoken before (RustCrypto was picked already) it logs and keeps working
/// with the slower backend, since both produce the same tokens.
pub fn install() {
    if let Err(current) = RING_PROVIDER.install_default()
        && !std::ptr::eq(current, &RING_PROVIDER)
    {
        tracing::debug!("jsonwebtoken already uses another crypto provider");
    }
}

fn new_signer(alg: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>, Error> {
    match alg {
        // ring refuses RSA keys under 2048 bits; RustCrypto still signs with them.
        Algorithm::RS256 => match RingSigner::rs256(key.as_bytes()) {
            Ok(s) => Ok(Box::new(s)),
            Err(_) => (RUST_CRYPTO.signer_factory)(alg, key),
        },
        _ => (RUST_CRYPTO.signer_factory)(alg, key),
    }
}

fn new_verifier(alg: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>, Error> {
    let params: &'static dyn sig::VerificationAlgorithm = match (alg, key.kind()) {
        // ring checks only 2048..8192-bit moduli; smaller (legacy) keys and RSA keys
        // given as DER stay with RustCrypto.
        (Algorithm::RS256, DecodingKeyKind::RsaModulusExponent { n, .. })
            if modulus_bits(n) >= 2048 =>
        {
            &sig::RSA_PKCS1_2048_8192_SHA256
        }
        (Algorithm::ES256, _) => &sig::ECDSA_P256_SHA256_FIXED,
        (Algorithm::EdDSA, _) => &sig::ED25519,
        _ => return (RUST_CRYPTO.verifier_factory)(alg, key),
    };
    Ok(Box::new(RingVerifier {
        alg: *alg,
        params,
        key: key.clone(),
    }))
}

/// The size of a big-endian modulus, leading zero bytes aside.
fn modulus_bits(n: &[u8]) -> usize {
    let n = &n[n.iter().take_while(|b| **b == 0).count()..];
    n.first()
        .map_or(0, |top| n.len() * 8 - top.leading_zeros() as usize)
}

/// A parsed private key: parse once (ring validates the key, which costs more than
/// an EC signature), sign many times.
pub enum RingSigner {
    Rs256(sig::RsaKeyPair),
    Es256(sig::EcdsaKeyPair),
    EdDsa(sig::Ed25519KeyPair),
}

impl RingSigner {
    /// From a PKCS#1 DER RSA private key (what [`EncodingKey::from_rsa_pem`] holds).
    pub fn rs256(pkcs1_der: &[u8]) -> Result<RingSigner, Error> {
        sig::RsaKeyPair::from_der(pkcs1_der)
            .map(RingSigner::Rs256)
            .map_err(|e| ErrorKind::InvalidRsaKey(e.to_string()).into())
    }

    /// From a PKCS#8 DER P-256 private key.
    pub fn es256(pkcs8_der: &[u8]) -> Result<RingSigner, Error> {
        let rng = ring::rand::SystemRandom::new();
        sig::EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8_der, &rng)
            .map(RingSigner::Es256)
            .map_err(|_| ErrorKind::InvalidEcdsaKey.into())
    }

    /// From a PKCS#8 DER Ed25519 private key.
    pub fn ed25519(pkcs8_der: &[u8]) -> Result<RingSigner, Error> {
        sig::Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8_der)
            .map(RingSigner::EdDsa)
            .map_err(|_| ErrorKind::InvalidEddsaKey.into())
    }

    pub fn algorithm(&self) -> Algorithm {
        match self {
            RingSigner::Rs256(_) => Algorithm::RS256,
            RingSigner::Es256(_) => Algorithm::ES256,
            RingSigner::EdDsa(_) => Algorithm::EdDSA,
        }
    }

    /// The raw JWS signature of `msg` (RFC 7518 §3.3, §3.4; RFC 8037 §3.1).
    pub fn sign_bytes(&self, msg: &[u8]) -> Result<Vec<u8>, Error> {
        let rng = ring::rand::SystemRandom::new();
        let failed = || Error::from(ErrorKind::InvalidKeyFormat);
        match self {
            RingSigner::Rs256(k) => {
                let mut out = vec![0; k.public().modulus_len()];
                k.sign(&sig::RSA_PKCS1_SHA256, &rng, msg, &mut out)
                    .map_err(|_| failed())?;
                Ok(out)
            }
            RingSigner::Es256(k) => k
                .sign(&rng, msg)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| failed()),
            RingSigner::EdDsa(k) => Ok(k.sign(msg).as_ref().to_vec()),
        }
    }

    /// The public key bytes of an EC or Ed25519 key (uncompressed point; 32 bytes).
    pub fn public_key_bytes(&self) -> &[u8] {
        match self {
            RingSigner::Rs256(k) => k.public_key().as_ref(),
            RingSigner::Es256(k) => k.public_key().as_ref(),
            RingSigner::EdDsa(k) => k.public_key().as_ref(),
        }
    }
}

impl signature::Signer<Vec<u8>> for RingSigner {
    fn try_sign(&self, msg: &[u8]) -> Result<Vec<u8>, signature::Error> {
        self.sign_bytes(msg).map_err(signature::Error::from_source)
    }
}

impl JwtSigner for RingSigner {
    fn algorithm(&self) -> Algorithm {
        RingSigner::algorithm(self)
    }
}

struct RingVerifier {
    alg: Algorithm,
    params: &'static dyn sig::VerificationAlgorithm,
    key: DecodingKey,
}

impl signature::Verifier<Vec<u8>> for RingVerifier {
    fn verify(&self, msg: &[u8], signature: &Vec<u8>) -> Result<(), signature::Error> {
        let bad = |_| signature::Error::new();
        match self.key.kind() {
            // An RSA key offered for ES256/EdDSA never verifies.
            DecodingKeyKind::RsaModulusExponent { .. } if self.alg != Algorithm::RS256 => {
                Err(signature::Error::new())
            }
            DecodingKeyKind::RsaModulusExponent { n, e } => sig::RsaPublicKeyComponents { n, e }
                .verify(&sig::RSA_PKCS1_2048_8192_SHA256, msg, signature)
                .map_err(bad),
            DecodingKeyKind::SecretOrDer(bytes) => sig::UnparsedPublicKey::new(self.params, bytes)
                .verify(msg, signature)
                .map_err(bad),
        }
    }
}

impl JwtVerifier for RingVerifier {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}
