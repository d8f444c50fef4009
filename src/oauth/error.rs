//! Token and revocation endpoint errors (RFC 6749 §5.2, RFC 7009 §2.2.1, RFC 8628 §3.5):
//! a code from the RFCs, a human-readable description, and the HTTP status each implies.

use crate::users::UsersError;

/// The `error` codes of RFC 6749 §5.2 (and `server_error`, which the token endpoint
/// answers with 500 when the store fails).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    UnsupportedTokenType,
    /// RFC 6749 §4.1.2.1: the authorization endpoint serves only `code`.
    UnsupportedResponseType,
    /// RFC 8628 §3.5: the user has not decided yet; poll again.
    AuthorizationPending,
    /// RFC 8628 §3.5: polling too fast; the interval grows by 5 s.
    SlowDown,
    /// RFC 8628 §3.5: the user denied the request.
    AccessDenied,
    /// RFC 8628 §3.5: the device code expired.
    ExpiredToken,
    /// Too many outstanding device requests (RFC 6749 §4.1.2.1's code), 503.
    TemporarilyUnavailable,
    ServerError,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::UnsupportedTokenType => "unsupported_token_type",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
            ErrorCode::AuthorizationPending => "authorization_pending",
            ErrorCode::SlowDown => "slow_down",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::ExpiredToken => "expired_token",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            ErrorCode::ServerError => "server_error",
        }
    }

    /// 400, except `invalid_client` (401: the client must authenticate, with a
    /// `WWW-Authenticate: Basic` challenge) and `server_error` (500).
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::InvalidClient => 401,
            ErrorCode::TemporarilyUnavailable => 503,
            ErrorCode::ServerError => 500,
            _ => 400,
        }
    }
}

/// An OAuth error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub code: ErrorCode,
    /// `error_description`: safe to show, never a secret.
    pub description: String,
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<String>) -> OAuthError {
        OAuthError {
            code,
            description: description.into(),
        }
    }

    pub fn invalid_request(description: impl Into<String>) -> OAuthError {
        OAuthError::new(ErrorCode::InvalidRequest, description)
    }

    pub fn invalid_client() -> OAuthError {
        OAuthError::new(ErrorCode::InvalidClient, "client authentication failed")
    }

    pub fn invalid_grant(description: impl Into<String>) -> OAuthError {
        OAuthError::new(ErrorCode::InvalidGrant, description)
    }

    pub fn invalid_scope(description: impl Into<String>) -> OAuthError {
        OAuthError::new(ErrorCode::InvalidScope, description)
    }
}

impl std::fmt::Display for OAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.description)
    }
}

/// What a grant's failure in the users service means to the client: its credentials
/// or grant are bad (`invalid_grant`), or the server failed (`server_error`; the
/// detail is logged, not sent).
impl From<UsersError> for OAuthError {
    fn from(e: UsersError) -> OAuthError {
        match e {
            UsersError::BadCredentials => OAuthError::invalid_grant("invalid username or password"),
            UsersError::Throttled { retry_after_secs } => OAuthError::invalid_grant(format!(
                "too many failed logins; retry in {retry_after_secs} s"
            )),
            UsersError::Busy { retry_after_secs } => OAuthError::new(
                ErrorCode::TemporarilyUnavailable,
                format!("the server is busy; retry in {retry_after_secs} s"),
            ),
            UsersError::BadRefreshToken => {
                OAuthError::invalid_grant("invalid or expired refresh token")
            }
            UsersError::Forbidden(why) => OAuthError::invalid_grant(why),
            UsersError::ScopeNotGranted(s) => {
                OAuthError::invalid_scope(format!("scope '{s}' was not granted"))
            }
            UsersError::NotFound(what) => OAuthError::invalid_grant(format!("{what} not found")),
            UsersError::Invalid(why) => OAuthError::invalid_request(why),
            other => {
                tracing::error!(error = %other, "token endpoint failure");
                OAuthError::new(ErrorCode::ServerError, "the server could not issue a token")
            }
        }
    }
}
