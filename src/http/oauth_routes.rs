//! The OAuth 2.0 endpoints: discovery (RFC 8414, OpenID Connect Discovery), the token endpoint (RFC 6749 §3.2),
//! revocation (RFC 7009), and the clients registry on the admin API (`/clients`).
//!
//! Token and revocation requests are form-encoded; answers are JSON with
//! `Cache-Control: no-store` (RFC 6749 §5.1), errors as RFC 6749 §5.2 with a `Basic`
//! challenge on `invalid_client`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::json;

use super::error::ApiError;
use super::extract::{Caller, JsonBody, bearer};
use crate::oauth::token::client_auth;
use crate::oauth::{Metadata, NewClient, OAuthError, OAuthServer, Params};
use crate::users::store::ClientRecord;

type Oauth = State<Arc<OAuthServer>>;

/// The OAuth routes a client uses, over `server` (the discovery path follows the
/// issuer's path): served on the public listener.
pub fn public(server: Arc<OAuthServer>) -> axum::Router {
    use axum::routing::{get, post};
    let metadata_path = Metadata::path_for(&server.users().config().tokens.issuer);
    let openid_path =
        crate::oauth::oidc::Configuration::path_for(&server.users().config().tokens.issuer);
    axum::Router::new()
        .route(&metadata_path, get(metadata))
        .route(&openid_path, get(openid_configuration))
        .route(crate::oauth::metadata::TOKEN_PATH, post(token))
        .route(crate::oauth::metadata::REVOCATION_PATH, post(revoke))
        .route(
            crate::oauth::metadata::DEVICE_AUTHORIZATION_PATH,
            post(device_authorization),
        )
        .with_state(server)
}

/// The clients registry, for administrators: on the admin listener only.
pub fn admin(server: Arc<OAuthServer>) -> axum::Router {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/clients", post(create_client).get(list_clients))
        .route("/clients/{id}", get(get_client).delete(remove_client))
        .with_state(server)
}

async fn metadata(State(server): Oauth) -> Json<Metadata> {
    Json(server.metadata())
}

async fn openid_configuration(State(server): Oauth) -> Json<crate::oauth::oidc::Configuration> {
    Json(server.openid_configuration())
}

async fn token(
    State(server): Oauth,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let params = form(&headers, &body)?;
        let auth = client_auth(basic(&headers)?, &params)?;
        server.token(&params, &auth, Some(peer.ip())).await
    }
    .await;
    match result {
        Ok(t) => no_store((StatusCode::OK, Json(t)).into_response()),
        Err(e) => oauth_error(e),
    }
}

async fn revoke(State(server): Oauth, headers: HeaderMap, body: Bytes) -> Response {
    let result = async {
        let params = form(&headers, &body)?;
        let auth = client_auth(basic(&headers)?, &params)?;
        server.revoke(&params, &auth).await
    }
    .await;
    match result {
        Ok(()) => no_store(StatusCode::OK.into_response()),
        Err(e) => oauth_error(e),
    }
}

/// RFC 8628 §3.1, §3.2.
async fn device_authorization(State(server): Oauth, headers: HeaderMap, body: Bytes) -> Response {
    let result = async {
        let params = form(&headers, &body)?;
        let auth = client_auth(basic(&headers)?, &params)?;
        server.device_authorize(&params, &auth).await
    }
    .await;
    match result {
        Ok(d) => no_store((StatusCode::OK, Json(d)).into_response()),
        Err(e) => oauth_error(e),
    }
}

/// The body's parameters, if it is form-encoded (RFC 6749 §3.2).
fn form(headers: &HeaderMap, body: &[u8]) -> Result<Params, OAuthError> {
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| {
            t.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form_type {
        return Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    Params::parse(body)
}

/// `Authorization: Basic` client credentials: base64 of the form-encoded id and secret
/// joined by a colon (RFC 6749 §2.3.1). Another scheme is ignored here.
fn basic(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = || OAuthError::invalid_client();
    let value = value.to_str().map_err(|_| bad())?;
    let Some((scheme, b64)) = value.split_once(' ') else {
        return Err(bad());
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let (id, secret) = text.split_once(':').ok_or_else(bad)?;
    let decode = |s: &str| -> Result<String, OAuthError> {
        let plus = s.replace('+', " ");
        percent_encoding::percent_decode_str(&plus)
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| bad())
    };
    Ok(Some((decode(id)?, decode(secret)?)))
}

fn no_store(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

/// RFC 6749 §5.2: `{"error", "error_description"}`; 401 with a `Basic` challenge for
/// `invalid_client`.
fn oauth_error(e: OAuthError) -> Response {
    let status = StatusCode::from_u16(e.code.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let body = json!({ "error": e.code.as_str(), "error_description": e.description });
    let mut resp = no_store((status, Json(body)).into_response());
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"sipreg\""),
        );
    }
    // RFC 6749 §5.2 `temporarily_unavailable`: the pools are full for a moment.
    if status == StatusCode::SERVICE_UNAVAILABLE {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    resp
}

/// Admin callers of the clients registry.
impl FromRequestParts<Arc<OAuthServer>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        server: &Arc<OAuthServer>,
    ) -> Result<Self, ApiError> {
        let token = bearer(parts).ok_or_else(ApiError::unauthenticated)?;
        let caller = Caller(server.users().validate(token).await?);
        caller.require_admin(server.users())?;
        Ok(caller)
    }
}

async fn create_client(
    State(server): Oauth,
    _admin: Caller,
    JsonBody(new): JsonBody<NewClient>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let (client, secret) = server.add_client(new).await?;
    let mut body = json!(client);
    if let Some(s) = secret {
        body["client_secret"] = json!(s);
    }
    Ok((StatusCode::CREATED, Json(body)))
}

async fn list_clients(
    State(server): Oauth,
    _admin: Caller,
) -> Result<Json<Vec<ClientRecord>>, ApiError> {
    Ok(Json(server.list_clients().await?))
}

async fn get_client(
    State(server): Oauth,
    _admin: Caller,
    Path(id): Path<String>,
) -> Result<Json<ClientRecord>, ApiError> {
    Ok(Json(server.get_client(&id).await?))
}

async fn remove_client(
    State(server): Oauth,
    _admin: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    server.remove_client(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
