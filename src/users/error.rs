//! Errors of the users store and token service, each mapping to one HTTP status.

use crate::auth::AuthError;

/// Why a users or token operation failed. Messages are safe to show to the caller:
/// they never contain a password, token or key.
#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    /// A uniqueness rule was broken, e.g. "username 'alice' already exists".
    #[error("{0}")]
    Conflict(String),
    #[error("{0} not found")]
    NotFound(String),
    /// The password breaks the policy; every broken rule is listed.
    #[error("password rejected: {}", .0.join("; "))]
    WeakPassword(Vec<String>),
    #[error("invalid input: {0}")]
    Invalid(String),
    #[error("invalid username or password")]
    BadCredentials,
    #[error("too many failed logins; retry in {retry_after_secs} s")]
    Throttled { retry_after_secs: u64 },
    /// The background CPU pool (Argon2, token signatures) is full: HTTP 503 with
    /// `Retry-After`, OAuth `temporarily_unavailable`.
    #[error("the server is busy; retry in {retry_after_secs} s")]
    Busy { retry_after_secs: u64 },
    #[error("not allowed: {0}")]
    Forbidden(String),
    #[error("invalid or expired refresh token")]
    BadRefreshToken,
    /// A scope asked for that was not granted (OAuth `invalid_scope`).
    #[error("scope not granted: {0}")]
    ScopeNotGranted(String),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0}")]
    Internal(String),
}

/// Turns a unique-constraint violation into `Conflict(message)`, leaves others alone.
pub(crate) fn conflict_or(err: sqlx::Error, message: impl FnOnce() -> String) -> UsersError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => UsersError::Conflict(message()),
        _ => UsersError::Db(err),
    }
}
