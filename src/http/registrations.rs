//! `GET /registrations` (paged) and `GET /registrations/{aor}`: the registrar's bindings
//! for operators, admin only.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::http::header;
use axum::routing::get;
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use crate::clock::unix_now;
use crate::registrar::{Aor, Binding, Registrar};
use crate::users::UsersService;

#[derive(Clone)]
struct RegState {
    users: Arc<UsersService>,
    registrar: Arc<Registrar>,
}

/// A binding as the API shows it.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct BindingView {
    pub contact: String,
    pub expires_in: u64,
    pub instance: Option<String>,
    pub reg_id: Option<u32>,
    pub q: Option<f32>,
    pub call_id: String,
    pub cseq: u32,
    pub path: Vec<String>,
    pub transport: String,
    pub source: String,
    pub user_agent: Option<String>,
    pub registered_at: u64,
}

/// One AOR and its bindings.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct AorView {
    pub aor: String,
    pub bindings: Vec<BindingView>,
}

fn view(b: &Binding, now: u64) -> BindingView {
    BindingView {
        contact: b.uri.to_string(),
        expires_in: b.remaining(now),
        instance: b.instance.as_deref().map(str::to_string),
        reg_id: b.reg_id,
        q: b.q.map(|q| f32::from(q) / 1000.0),
        call_id: b.call_id.to_string(),
        cseq: b.cseq,
        path: b.path.iter().map(|p| p.to_string()).collect(),
        transport: b.source.transport.as_str().into(),
        source: b.source.addr.to_string(),
        user_agent: b.user_agent.as_deref().map(str::to_string),
        registered_at: b.registered_at,
    }
}

async fn require_admin(st: &RegState, headers: &HeaderMap) -> Result<(), ApiError> {
    admin_only(&st.users, headers).await
}

/// Admin routes' check: a Bearer credential sipreg issued, with the `admin` scope.
pub(crate) async fn admin_only(users: &UsersService, headers: &HeaderMap) -> Result<(), ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(s, _)| s.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .ok_or_else(ApiError::unauthenticated)?;
    let claims = users.validate(token).await?;
    if claims.has_scope("admin") && claims.iss == users.config().tokens.issuer {
        Ok(())
    } else {
        Err(ApiError::forbidden("the admin scope is required"))
    }
}

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    offset: usize,
    #[serde(default = "default_limit")]
    limit: usize,
}

fn default_limit() -> usize {
    100
}

async fn list(
    State(st): State<RegState>,
    headers: HeaderMap,
    Query(page): Query<Page>,
) -> Result<Json<Vec<AorView>>, ApiError> {
    require_admin(&st, &headers).await?;
    let now = unix_now();
    let out = st
        .registrar
        .table
        .list(page.offset, page.limit.min(1000), now)
        .into_iter()
        .map(|(aor, bs)| AorView {
            aor: aor.to_string(),
            bindings: bs.iter().map(|b| view(b, now)).collect(),
        })
        .collect();
    Ok(Json(out))
}

async fn one(
    State(st): State<RegState>,
    headers: HeaderMap,
    Path(aor): Path<String>,
) -> Result<Json<AorView>, ApiError> {
    require_admin(&st, &headers).await?;
    let aor = Aor::parse(&aor).ok_or_else(|| ApiError::bad_request("not a SIP or SIPS URI"))?;
    let now = unix_now();
    let bindings = st.registrar.table.get(&aor, now);
    if bindings.is_empty() {
        return Err(ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "not_found",
            format!("no bindings for {aor}"),
        ));
    }
    Ok(Json(AorView {
        aor: aor.to_string(),
        bindings: bindings.iter().map(|b| view(b, now)).collect(),
    }))
}

/// The routes, with their state applied.
pub fn routes(users: Arc<UsersService>, registrar: Arc<Registrar>) -> Router {
    Router::new()
        .route("/registrations", get(list))
        .route("/registrations/{aor}", get(one))
        .with_state(RegState { users, registrar })
}
