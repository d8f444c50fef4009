//! `GET /presence/{aor}`: the composed PIDF document a watcher of the AOR would get now
//! (`application/pidf+xml`), or a JSON summary with `Accept: application/json`. Admin
//! only, like `/registrations`.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;

use super::error::ApiError;
use super::registrations::admin_only;
use crate::presence::{Basic, PresenceService};
use crate::registrar::Aor;
use crate::users::UsersService;

#[derive(Clone)]
struct PresenceState {
    users: Arc<UsersService>,
    presence: Arc<PresenceService>,
}

/// One tuple as the JSON view shows it.
#[derive(Debug, Serialize)]
pub struct TupleView {
    pub id: String,
    /// `open`, `closed` or null.
    pub basic: Option<&'static str>,
    pub contact: Option<String>,
    pub device_id: Option<String>,
    pub notes: Vec<String>,
    pub timestamp: Option<String>,
}

/// The composed document as JSON.
#[derive(Debug, Serialize)]
pub struct PresenceView {
    pub entity: String,
    pub tuples: Vec<TupleView>,
    /// The merged person's activities (RPID element names; `other` as its text).
    pub activities: Vec<String>,
    pub note: Option<String>,
    pub user_input: Option<&'static str>,
    /// The PIDF document itself.
    pub pidf: String,
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"))
}

async fn one(
    State(st): State<PresenceState>,
    headers: HeaderMap,
    Path(aor): Path<String>,
) -> Result<Response, ApiError> {
    admin_only(&st.users, &headers).await?;
    let aor = Aor::parse(&aor).ok_or_else(|| ApiError::bad_request("not a SIP or SIPS URI"))?;
    let doc = st.presence.document(&aor);
    let pidf = doc.to_xml();
    if !wants_json(&headers) {
        return Ok((
            StatusCode::OK,
            [(header::CONTENT_TYPE, crate::presence::CONTENT_TYPE)],
            pidf,
        )
            .into_response());
    }
    let person = doc.persons.first();
    let view = PresenceView {
        entity: doc.entity.clone(),
        tuples: doc
            .tuples
            .iter()
            .map(|t| TupleView {
                id: t.id.clone(),
                basic: t.status.basic.map(Basic::as_str),
                contact: t.contact.as_ref().map(|c| c.uri.clone()),
                device_id: t.device_id.clone(),
                notes: t.notes.iter().map(|n| n.text.clone()).collect(),
                timestamp: t.timestamp.clone(),
            })
            .collect(),
        activities: person
            .and_then(|p| p.activities.as_ref())
            .map(|a| {
                a.list
                    .iter()
                    .map(|x| match x {
                        crate::presence::Activity::Known(n) => n.to_string(),
                        crate::presence::Activity::Other(n) => n.text.clone(),
                        crate::presence::Activity::Extension(f) => f.local_name.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        note: person.and_then(|p| p.notes.first()).map(|n| n.text.clone()),
        user_input: person
            .and_then(|p| p.user_input.as_ref())
            .map(|u| u.state.as_str()),
        pidf,
    };
    Ok(Json(view).into_response())
}

/// The route, with its state applied.
pub fn routes(users: Arc<UsersService>, presence: Arc<PresenceService>) -> Router {
    Router::new()
        .route("/presence/{aor}", get(one))
        .with_state(PresenceState { users, presence })
}
