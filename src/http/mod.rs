//! HTTP (axum), on two listeners:
//!
//! - the admin API, on loopback by default: users, API keys, signing keys, the OAuth
//!   clients registry, registrations, presence, introspection;
//! - the public side a phone or a person uses: OAuth 2.0 discovery, token, revocation and
//!   device endpoints, the pages, JWKS. Over HTTPS on its own listener
//!   (`[http] public_listen`, [`https`]), or on the admin listener when none is set.
//!
//! [`serve`] runs them until `shutdown` resolves.

pub mod access_log;
mod auth_routes;
pub mod error;
pub mod extract;
pub mod https;
mod oauth_routes;
pub mod ops;
mod pages;
pub mod presence;
pub mod registrations;
pub mod serve;
mod users_routes;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::users::UsersService;

/// How often the server re-reads signing keys (rotations made by the CLI).
const KEY_RELOAD_EVERY: Duration = Duration::from_secs(60);
/// Request bodies larger than this are refused by [`router`]; the listeners take
/// `[limits] http_max_body` ([`serve`]).
const MAX_BODY: usize = 64 * 1024;

/// Every route over `svc`, admin and public alike (one listener).
pub fn router(svc: Arc<UsersService>) -> Router {
    let oauth = crate::oauth::OAuthServer::new(svc.clone());
    admin_router(svc.clone(), oauth.clone())
        .merge(public_router(svc, oauth))
        .layer(DefaultBodyLimit::max(MAX_BODY))
}

/// The admin API: users, API keys, the clients registry, introspection, legacy login.
pub fn admin_router(svc: Arc<UsersService>, oauth: Arc<crate::oauth::OAuthServer>) -> Router {
    use auth_routes as a;
    use users_routes as u;
    Router::new()
        .route("/health", get(a::health))
        .route("/auth/login", post(a::login))
        .route("/auth/refresh", post(a::refresh))
        .route("/auth/logout", post(a::logout))
        .route("/auth/token", post(a::token))
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
        .with_state(svc)
        .merge(oauth_routes::admin(oauth))
}

/// What phones, softclients and people reach: JWKS, OAuth endpoints, pages.
pub fn public_router(svc: Arc<UsersService>, oauth: Arc<crate::oauth::OAuthServer>) -> Router {
    Router::new()
        .route("/.well-known/jwks.json", get(auth_routes::jwks))
        .with_state(svc)
        .merge(oauth_routes::public(oauth.clone()))
        .merge(pages::router(oauth))
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
    serve_split(listener, None, svc, extra, shutdown).await
}

/// The admin API on `admin` and, when given, the public side on `public` (HTTPS);
/// without it the public routes are on `admin` too. One OAuth server backs both, so a
/// device code asked for on one is approved on the other.
pub async fn serve_split(
    admin: tokio::net::TcpListener,
    public: Option<https::HttpsListener>,
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
    let limits = serve::HttpLimits::from_config(&svc.config().limits);
    let oauth = crate::oauth::OAuthServer::new(svc.clone());
    let mut admin_routes = admin_router(svc.clone(), oauth.clone()).merge(extra);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let public_task = match public {
        Some(listener) => {
            if let Ok(addr) = axum::serve::Listener::local_addr(&listener) {
                tracing::info!(%addr, "public HTTPS listening (OAuth, pages, JWKS)");
            }
            let app = access_log::layer(public_router(svc, oauth));
            let mut rx = stop_rx.clone();
            Some(tokio::spawn(serve::serve(
                listener,
                app,
                limits,
                async move {
                    let _ = rx.wait_for(|s| *s).await;
                },
            )))
        }
        None => {
            admin_routes = admin_routes.merge(public_router(svc, oauth));
            None
        }
    };
    if let Ok(addr) = admin.local_addr() {
        tracing::info!(%addr, "admin HTTP API listening");
    }
    let app = access_log::layer(admin_routes);
    let result = serve::serve(admin, app, limits, shutdown).await;
    let _ = stop_tx.send(true);
    if let Some(t) = public_task
        && let Ok(Err(e)) = t.await
    {
        tracing::warn!(error = %e, "public HTTPS listener stopped with an error");
    }
    reloader.abort();
    result
}
