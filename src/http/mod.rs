//! The admin HTTP API (axum): login and tokens, JWKS, introspection, users and API
//! keys, and the OAuth 2.0 endpoints (discovery, token, revocation, clients).
//! [`serve`] runs it on a bound listener until `shutdown` resolves.

mod auth_routes;
pub mod error;
pub mod extract;
mod oauth_routes;
mod pages;
pub mod presence;
pub mod registrations;
mod users_routes;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::users::UsersService;

/// How often the server re-reads signing keys (rotations made by the CLI).
const KEY_RELOAD_EVERY: Duration = Duration::from_secs(60);
/// Request bodies larger than this are refused.
const MAX_BODY: usize = 64 * 1024;

/// The API's routes over `svc`.
pub fn router(svc: Arc<UsersService>) -> Router {
    use auth_routes as a;
    let oauth = crate::oauth::OAuthServer::new(svc.clone());
    use users_routes as u;
    Router::new()
        .route("/health", get(a::health))
        .route("/auth/login", post(a::login))
        .route("/auth/refresh", post(a::refresh))
        .route("/auth/logout", post(a::logout))
        .route("/auth/token", post(a::token))
        .route("/.well-known/jwks.json", get(a::jwks))
        .route("/oauth/introspect", post(a::introspect))
        .route("/users", post(u::create).get(u::list))
        .route(
            "/users/{id}",
            get(u::get).patch(u::update).delete(u::remove),
        )
        .route("/users/{id}/disable", post(u::disable))
        .route(
            "/users/{id}/password",
            post(u::set_password).put(u::set_password),
        )
        .route(
            "/users/{id}/api-keys",
            post(u::create_key).get(u::list_keys),
        )
        .route("/api-keys/{id}", get(u::get_key).delete(u::revoke_key))
        .route("/api-keys/{id}/rotate", post(u::rotate_key))
        .with_state(svc.clone())
        .merge(oauth_routes::router(oauth.clone()))
        .merge(pages::router(oauth))
        .layer(DefaultBodyLimit::max(MAX_BODY))
}

/// Serves the API on `listener` until `shutdown` completes, then drains requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    svc: Arc<UsersService>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, svc, Router::new(), shutdown).await
}

/// [`serve`] with more routes (the registrar's, the presence service's) merged in.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    svc: Arc<UsersService>,
    extra: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let reloader = {
        let svc = svc.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(KEY_RELOAD_EVERY);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = svc.reload_keys().await {
                    tracing::warn!("signing key reload failed: {e}");
                }
            }
        })
    };
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "admin HTTP API listening");
    }
    let app = router(svc)
        .merge(extra)
        .into_make_service_with_connect_info::<SocketAddr>();
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    reloader.abort();
    result
}
