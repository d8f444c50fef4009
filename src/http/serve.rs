//! The HTTP/1.1 connection loop both listeners run, with the limits `axum::serve` cannot
//! set: a deadline on each request's header section (hyper's `header_read_timeout`, so a
//! client trickling its headers, slowloris, is cut off), a deadline on the whole request
//! (503 beyond), and a body limit (413 beyond). Graceful shutdown as `axum::serve`:
//! connections finish the request in hand, then close.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::config::LimitsConfig;

/// The limits of one listener.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    pub header_timeout: Duration,
    pub request_timeout: Duration,
    pub max_body: usize,
}

impl HttpLimits {
    pub fn from_config(c: &LimitsConfig) -> HttpLimits {
        HttpLimits {
            header_timeout: Duration::from_secs(c.http_header_timeout_secs.max(1)),
            request_timeout: Duration::from_secs(c.http_request_timeout_secs.max(1)),
            max_body: c.http_max_body,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets open connections
/// finish their request (each is told to close) before returning.
pub async fn serve<L>(
    mut listener: L,
    app: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()>
where
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    let app = app
        .layer(axum::middleware::from_fn_with_state(limits, guard))
        .layer(DefaultBodyLimit::max(limits.max_body));
    let tracker = TaskTracker::new();
    let stop = CancellationToken::new();
    tokio::pin!(shutdown);
    loop {
        let (io, peer) = tokio::select! {
            _ = &mut shutdown => break,
            c = listener.accept() => c,
        };
        let svc = app.clone().map_request(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            req.map(Body::new)
        });
        let stop = stop.clone();
        tracker.spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout);
            let conn = builder
                .serve_connection(TokioIo::new(io), TowerToHyperService::new(svc))
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(%peer, error = %e, "HTTP connection ended");
                    }
                    return;
                }
                _ = stop.cancelled() => conn.as_mut().graceful_shutdown(),
            }
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "HTTP connection ended");
            }
        });
    }
    stop.cancel();
    tracker.close();
    tracker.wait().await;
    Ok(())
}

/// Answers 413 at once to a request whose Content-Length is over the limit (a chunked
/// body is cut at the limit when read), and 503 when the handler, body reading included,
/// takes longer than the request timeout.
async fn guard(State(limits): State<HttpLimits>, req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_body as u64) {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n").into_response();
    }
    match tokio::time::timeout(limits.request_timeout, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [("retry-after", "5")],
            "request took too long\n",
        )
            .into_response(),
    }
}
