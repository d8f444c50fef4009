//! Pages a person uses, server-rendered (no front-end framework): the device
//! verification page and the authorization endpoint's sign-in and consent. Forms are CSRF-protected ([`csrf`]), credentials are
//! checked and throttled as logins are, and passwords are never logged.

mod authorize;
mod csrf;
mod device;
mod view;

use std::sync::Arc;

use axum::routing::{get, post};

use crate::oauth::OAuthServer;
use crate::oauth::metadata::DEVICE_PAGE_PATH;

pub fn router(server: Arc<OAuthServer>) -> axum::Router {
    axum::Router::new()
        .route(DEVICE_PAGE_PATH, get(device::form).post(device::enter))
        .route("/device/decide", post(device::decide))
        .route(
            crate::oauth::metadata::AUTHORIZE_PATH,
            get(authorize::start).post(authorize::sign_in),
        )
        .route(authorize::DECIDE_PATH, post(authorize::decide))
        .with_state(server)
}
