//! Pages a person uses, server-rendered (no front-end framework): the device
//! verification page for now. Forms are CSRF-protected ([`csrf`]), credentials are
//! checked and throttled as logins are, and passwords are never logged.

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
        .with_state(server)
}
