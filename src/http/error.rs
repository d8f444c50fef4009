//! API errors as JSON bodies (`{"error": code, "message": text}`) with the right
//! status, `WWW-Authenticate` for 401 and `Retry-After` for 429.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::auth::AuthError;
use crate::users::UsersError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Option<Vec<String>>,
    pub www_authenticate: Option<String>,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: None,
            www_authenticate: None,
            retry_after: None,
        }
    }

    /// 401 for a missing credential.
    pub fn unauthenticated() -> Self {
        let mut e = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "a Bearer token is required",
        );
        e.www_authenticate = Some("Bearer realm=\"sipreg\"".to_string());
        e
    }

    /// 403 for a valid caller lacking rights.
    pub fn forbidden(message: impl Into<String>) -> Self {
        let mut e = ApiError::new(StatusCode::FORBIDDEN, "forbidden", message);
        e.www_authenticate = Some(
            "Bearer realm=\"sipreg\", error=\"insufficient_scope\", scope=\"admin\"".to_string(),
        );
        e
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        if let AuthError::Unavailable(detail) = &e {
            tracing::error!("validator backend unavailable: {detail}");
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "try again later",
            );
        }
        if let AuthError::Busy { retry_after_secs } = e {
            let mut err = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", e.to_string());
            err.retry_after = Some(retry_after_secs);
            return err;
        }
        // The description may echo token data (the alg name): keep it to safe characters.
        let description: String = e
            .to_string()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | ':' | '-' | '.'))
            .collect();
        let mut err = ApiError::new(StatusCode::UNAUTHORIZED, "invalid_token", e.to_string());
        err.www_authenticate = Some(format!(
            "Bearer realm=\"sipreg\", error=\"invalid_token\", error_description=\"{description}\""
        ));
        err
    }
}

impl From<UsersError> for ApiError {
    fn from(e: UsersError) -> Self {
        let msg = e.to_string();
        match e {
            UsersError::Conflict(_) => ApiError::new(StatusCode::CONFLICT, "conflict", msg),
            UsersError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, "not_found", msg),
            UsersError::WeakPassword(rules) => {
                let mut err = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "weak_password", msg);
                err.details = Some(rules);
                err
            }
            UsersError::Invalid(_) => ApiError::bad_request(msg),
            UsersError::BadCredentials => {
                let mut err = ApiError::new(StatusCode::UNAUTHORIZED, "invalid_credentials", msg);
                err.www_authenticate = Some("Bearer realm=\"sipreg\"".to_string());
                err
            }
            UsersError::Throttled { retry_after_secs } => {
                let mut err = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "throttled", msg);
                err.retry_after = Some(retry_after_secs);
                err
            }
            UsersError::Busy { retry_after_secs } => {
                let mut err = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", msg);
                err.retry_after = Some(retry_after_secs);
                err
            }
            UsersError::Forbidden(m) => ApiError::forbidden(m),
            UsersError::ScopeNotGranted(_) => ApiError::forbidden(msg),
            UsersError::BadRefreshToken => {
                let mut err = ApiError::new(StatusCode::UNAUTHORIZED, "invalid_grant", msg);
                err.www_authenticate =
                    Some("Bearer realm=\"sipreg\", error=\"invalid_token\"".to_string());
                err
            }
            UsersError::Auth(a) => a.into(),
            UsersError::Db(_) | UsersError::Migrate(_) | UsersError::Internal(_) => {
                tracing::error!("internal error: {msg}");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": self.code, "message": self.message });
        if let Some(d) = self.details {
            body["details"] = json!(d);
        }
        let mut resp = (self.status, axum::Json(body)).into_response();
        let headers = resp.headers_mut();
        if let Some(v) = self
            .www_authenticate
            .and_then(|v| HeaderValue::from_str(&v).ok())
        {
            headers.insert(header::WWW_AUTHENTICATE, v);
        }
        if let Some(s) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}
