//! Request extractors: the authenticated caller (Bearer JWT or API key), and JSON or
//! form bodies whose rejections become JSON errors.

use std::sync::Arc;

use axum::extract::rejection::{FormRejection, JsonRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::auth::Claims;
use crate::users::UsersService;

/// The caller, authenticated by `Authorization: Bearer <JWT or API key>`.
pub struct Caller(pub Claims);

impl Caller {
    /// Administrators: the `admin` scope on a credential sipreg itself issued.
    pub fn is_admin(&self, svc: &UsersService) -> bool {
        self.0.has_scope("admin") && self.0.iss == svc.config().tokens.issuer
    }

    pub fn require_admin(&self, svc: &UsersService) -> Result<(), ApiError> {
        if self.is_admin(svc) {
            Ok(())
        } else {
            Err(ApiError::forbidden("the admin scope is required"))
        }
    }

    /// The caller is `user_id` itself (local credential) or an administrator.
    pub fn require_self_or_admin(&self, svc: &UsersService, user_id: &str) -> Result<(), ApiError> {
        if self.is_self(svc, user_id) || self.is_admin(svc) {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                "not allowed on another user's resources",
            ))
        }
    }

    pub fn is_self(&self, svc: &UsersService, user_id: &str) -> bool {
        self.0.sub == user_id && self.0.iss == svc.config().tokens.issuer
    }
}

/// The Bearer credential of a request, if any.
pub fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

impl FromRequestParts<Arc<UsersService>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        svc: &Arc<UsersService>,
    ) -> Result<Self, ApiError> {
        let token = bearer(parts).ok_or_else(ApiError::unauthenticated)?;
        Ok(Caller(svc.validate(token).await?))
    }
}

/// A JSON body; malformed JSON is 400, a well-formed body of the wrong shape 422.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(JsonBody(v)),
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError::new(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                e.body_text(),
            )),
            Err(e) => Err(ApiError::bad_request(e.body_text())),
        }
    }
}

/// A form body (`application/x-www-form-urlencoded`), rejections as JSON 400.
pub struct FormBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for FormBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        axum::Form::<T>::from_request(req, state)
            .await
            .map(|axum::Form(v)| FormBody(v))
            .map_err(|e: FormRejection| ApiError::bad_request(e.body_text()))
    }
}
