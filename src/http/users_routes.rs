//! `/users`, `/users/{id}/password`, `/users/{id}/api-keys`, `/api-keys/{id}`.
//! Everything is admin-only, except that a user may read their own record and change
//! their own password (with the current one).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::extract::{Caller, JsonBody};
use crate::users::{ApiKeyInfo, NewUser, User, UserQuery, UserUpdate, UsersError, UsersService};

type Svc = State<Arc<UsersService>>;

pub async fn create(
    State(svc): Svc,
    caller: Caller,
    JsonBody(new): JsonBody<NewUser>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    caller.require_admin(&svc)?;
    Ok((StatusCode::CREATED, Json(svc.create_user(new).await?)))
}

#[derive(Serialize)]
pub struct UserPage {
    users: Vec<User>,
    limit: i64,
    offset: i64,
}

pub async fn list(
    State(svc): Svc,
    caller: Caller,
    Query(q): Query<UserQuery>,
) -> Result<Json<UserPage>, ApiError> {
    caller.require_admin(&svc)?;
    let users = svc.list_users(&q).await?;
    Ok(Json(UserPage {
        users,
        limit: q.limit.unwrap_or(100).clamp(1, 1000),
        offset: q.offset.unwrap_or(0).max(0),
    }))
}

pub async fn get(
    State(svc): Svc,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<User>, ApiError> {
    caller.require_self_or_admin(&svc, &id)?;
    Ok(Json(svc.get_user(&id).await?))
}

pub async fn update(
    State(svc): Svc,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(up): JsonBody<UserUpdate>,
) -> Result<Json<User>, ApiError> {
    caller.require_admin(&svc)?;
    Ok(Json(svc.update_user(&id, up).await?))
}

pub async fn disable(
    State(svc): Svc,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<User>, ApiError> {
    caller.require_admin(&svc)?;
    Ok(Json(svc.disable_user(&id).await?))
}

pub async fn remove(
    State(svc): Svc,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin(&svc)?;
    svc.delete_user(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordBody {
    password: String,
    /// Required when users change their own password.
    #[serde(default)]
    current_password: Option<String>,
}

pub async fn set_password(
    State(svc): Svc,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<PasswordBody>,
) -> Result<StatusCode, ApiError> {
    caller.require_self_or_admin(&svc, &id)?;
    if !caller.is_admin(&svc) {
        let current = body
            .current_password
            .as_deref()
            .ok_or_else(|| ApiError::bad_request("current_password is required"))?;
        let user = svc.get_user(&id).await?;
        // Re-authenticate (throttled like a login) before changing the password.
        match svc.check_password(&user.username, current, None).await {
            Ok(_) => {}
            Err(UsersError::BadCredentials) => {
                return Err(ApiError::forbidden("current password is wrong"));
            }
            Err(e) => return Err(e.into()),
        }
    }
    svc.set_password(&id, &body.password).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKeyBody {
    name: String,
    #[serde(default)]
    scopes: Option<Vec<String>>,
    #[serde(default)]
    expires_in_days: Option<u64>,
}

#[derive(Serialize)]
pub struct CreatedKey {
    #[serde(flatten)]
    info: ApiKeyInfo,
    /// Shown once; only its hash is stored.
    key: String,
}

pub async fn create_key(
    State(svc): Svc,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<NewKeyBody>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    caller.require_admin(&svc)?;
    let (info, key) = svc
        .create_api_key(&id, &body.name, body.scopes, body.expires_in_days)
        .await?;
    Ok((StatusCode::CREATED, Json(CreatedKey { info, key })))
}

pub async fn list_keys(
    State(svc): Svc,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<ApiKeyInfo>>, ApiError> {
    caller.require_admin(&svc)?;
    svc.get_user(&id).await?;
    Ok(Json(svc.list_api_keys(Some(&id)).await?))
}

pub async fn get_key(
    State(svc): Svc,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ApiKeyInfo>, ApiError> {
    caller.require_admin(&svc)?;
    Ok(Json(svc.get_api_key(&id).await?))
}

pub async fn revoke_key(
    State(svc): Svc,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin(&svc)?;
    svc.revoke_api_key(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn rotate_key(
    State(svc): Svc,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    caller.require_admin(&svc)?;
    let (info, key) = svc.rotate_api_key(&id).await?;
    Ok((StatusCode::CREATED, Json(CreatedKey { info, key })))
}
