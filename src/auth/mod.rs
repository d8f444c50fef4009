//! Token service pieces: claims, signing keys and JWKS, API key format, the
//! validation cache, trusted external issuers, and the validator used by SIP and HTTP.

pub mod api_key;
pub mod cache;
pub mod challenge;
pub mod claims;
pub mod config;
mod counted;
pub mod crypto;
pub mod digest;
pub mod error;
pub mod external;
pub mod failures;
pub mod gate;
pub mod issuer;
pub mod keys;
pub mod mapping;
pub mod provision;
pub mod revocations;
pub mod secret;
pub mod sip;
pub mod validator;

pub use claims::Claims;
pub use config::{
    AuthConfig, CleartextBearer, ClientRuleConfig, Provision, SigningAlgorithm, TokensConfig,
    TrustedIssuer,
};
pub use error::AuthError;
pub use validator::Validator;

/// A configured duration in seconds as a signed offset, saturating instead of wrapping.
pub fn secs(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Current Unix time in seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| secs(d.as_secs()))
}
