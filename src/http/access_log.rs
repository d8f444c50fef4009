//! The HTTP access log: one line per request on target `sipreg::access` (method, path,
//! status, latency, peer), on both listeners. The query string is left out: an
//! authorization code, a state or a token can ride in it.

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::Response;

/// The `tracing` target of access lines.
pub const TARGET: &str = "sipreg::access";

/// Wraps `router` so every request it serves is logged.
pub fn layer(router: axum::Router) -> axum::Router {
    router.layer(axum::middleware::from_fn(log_request))
}

async fn log_request(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let resp = next.run(req).await;
    let latency_us = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
    tracing::info!(
        target: TARGET,
        method = %method,
        path = %path,
        status = resp.status().as_u16(),
        latency_us,
        peer = %peer.map_or_else(|| "-".to_string(), |p| p.to_string()),
        "http"
    );
    resp
}
