//! `/auth/*`, JWKS, introspection and health.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::{Caller, FormBody, JsonBody, bearer};
use crate::users::{AccessToken, TokenPair, UsersService};

type Svc = State<Arc<UsersService>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    username: String,
    password: String,
}

pub async fn login(
    State(svc): Svc,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    JsonBody(body): JsonBody<LoginBody>,
) -> Result<Json<TokenPair>, ApiError> {
    Ok(Json(
        svc.login(&body.username, &body.password, Some(peer.ip()))
            .await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshBody {
    refresh_token: String,
}

pub async fn refresh(
    State(svc): Svc,
    JsonBody(body): JsonBody<RefreshBody>,
) -> Result<Json<TokenPair>, ApiError> {
    Ok(Json(svc.refresh(&body.refresh_token).await?))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LogoutBody {
    #[serde(default)]
    refresh_token: Option<String>,
}

/// Revokes the refresh token family given in the body and, when the request carries
/// a valid Bearer access token, that token too.
pub async fn logout(
    State(svc): Svc,
    caller: Option<Caller>,
    JsonBody(body): JsonBody<LogoutBody>,
) -> Result<StatusCode, ApiError> {
    if caller.is_none() && body.refresh_token.is_none() {
        return Err(ApiError::unauthenticated());
    }
    let claims = caller.map(|c| c.0);
    svc.logout(body.refresh_token.as_deref(), claims.as_ref())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    api_key: String,
}

/// API key → short-lived access token.
pub async fn token(
    State(svc): Svc,
    JsonBody(body): JsonBody<TokenBody>,
) -> Result<Json<AccessToken>, ApiError> {
    Ok(Json(svc.exchange_api_key(&body.api_key).await?))
}

pub async fn jwks(State(svc): Svc) -> Json<jsonwebtoken::jwk::JwkSet> {
    Json(svc.jwks())
}

#[derive(Deserialize)]
pub struct IntrospectForm {
    token: String,
}

/// RFC 7662: the caller must be an administrator.
pub async fn introspect(
    State(svc): Svc,
    caller: Caller,
    FormBody(form): FormBody<IntrospectForm>,
) -> Result<Json<Value>, ApiError> {
    caller.require_admin(&svc)?;
    Ok(Json(svc.introspect(&form.token).await))
}

pub async fn health() -> (StatusCode, Json<Value>) {
    // Alive only: the store is `/ready`'s business (a probe restarting a process whose
    // database is down would not bring the database back).
    (StatusCode::OK, Json(json!({ "status": "ok" })))
}

/// An optional caller: absent header is `None`, a bad credential is still a 401.
impl axum::extract::OptionalFromRequestParts<Arc<UsersService>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        svc: &Arc<UsersService>,
    ) -> Result<Option<Self>, ApiError> {
        if bearer(parts).is_none() {
            return Ok(None);
        }
        <Caller as FromRequestParts<_>>::from_request_parts(parts, svc)
            .await
            .map(Some)
    }
}
