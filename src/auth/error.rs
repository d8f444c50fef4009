//! Why a token or API key was refused. Each reason is distinct so callers (and the
//! examples) can tell them apart; none carries the token itself.

/// A rejected credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("malformed token")]
    Malformed,
    #[error("algorithm not allowed: {0}")]
    AlgorithmNotAllowed(String),
    #[error("unknown signing key")]
    UnknownKey,
    #[error("bad signature")]
    BadSignature,
    #[error("token expired")]
    Expired,
    #[error("token not yet valid")]
    NotYetValid,
    #[error("wrong issuer")]
    WrongIssuer,
    #[error("wrong audience")]
    WrongAudience,
    #[error("token revoked")]
    Revoked,
    #[error("user disabled or removed")]
    UserDisabled,
    #[error("user unknown to sipreg")]
    UnknownUser,
    #[error("token names no usable user: {0}")]
    Unmapped(String),
    #[error("invalid API key")]
    InvalidApiKey,
    #[error("authentication backend unavailable: {0}")]
    Unavailable(String),
    /// The pool for first-sighting checks is full: SIP 503 and HTTP 503 with
    /// `Retry-After`, at once.
    #[error("too many new credentials to check; retry in {retry_after_secs} s")]
    Busy { retry_after_secs: u64 },
}
