//! Operations endpoints on the admin listener: `GET /ready` (the store answers and the
//! SIP listeners serve: 200, else 503 with a JSON reason) and `GET /metrics` (Prometheus
//! text; 404 with `[metrics] enabled = false`). `GET /health` (alive) is with the other
//! admin routes. None of them needs a credential: the admin listener is on loopback by
//! default, where a Prometheus scraper or an orchestrator's probe runs.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;

use crate::metrics::Snapshot;
use crate::users::UsersService;

/// How long `/ready` waits for the store.
const STORE_TIMEOUT: Duration = Duration::from_secs(2);

/// What the operations endpoints read.
pub struct Ops {
    pub users: Arc<UsersService>,
    /// The recorder's handle; `None`: metrics are off.
    pub metrics: Option<PrometheusHandle>,
    /// Counters and sizes read from the services at scrape time.
    pub snapshot: Box<dyn Fn() -> Snapshot + Send + Sync>,
    /// Whether the SIP listeners are serving.
    pub serving: Box<dyn Fn() -> bool + Send + Sync>,
}

/// `/ready` and `/metrics`.
pub fn routes(ops: Ops) -> Router {
    Router::new()
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(Arc::new(ops))
}

async fn ready(State(ops): State<Arc<Ops>>) -> (StatusCode, Json<serde_json::Value>) {
    let unavailable = |reason: &str| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "reason": reason })),
        )
    };
    if !(ops.serving)() {
        return unavailable("SIP listeners are not serving");
    }
    match tokio::time::timeout(STORE_TIMEOUT, ops.users.store().ping()).await {
        Ok(true) => (StatusCode::OK, Json(json!({ "status": "ready" }))),
        Ok(false) => unavailable("database unavailable"),
        Err(_) => unavailable("database did not answer within 2 s"),
    }
}

async fn metrics(State(ops): State<Arc<Ops>>) -> Response {
    let Some(handle) = &ops.metrics else {
        return (
            StatusCode::NOT_FOUND,
            "metrics are off ([metrics] enabled = false)\n",
        )
            .into_response();
    };
    let body = crate::metrics::render(handle, &(ops.snapshot)());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}
