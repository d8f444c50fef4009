//! sipreg's own OAuth 2.0 authorization server (RFC 6749), so a phone that knows only
//! the 401's `authz_server` (RFC 8898 §2) can discover the endpoints (RFC 8414) and
//! obtain a token.
//!
//! - [`clients`]: the clients registry and client authentication.
//! - [`token`]: the token endpoint's grants and revocation (RFC 7009).
//! - [`device`]: the device authorization grant (RFC 8628).
//! - [`metadata`]: the discovery document.
//! - [`error`]: RFC 6749 §5.2 errors.
//!
//! Transport-free: `http` decodes requests and encodes answers.

pub mod cli;
pub mod clients;
pub mod config;
pub mod device;
pub mod error;
pub mod grant;
pub mod metadata;
pub mod token;

use std::sync::Arc;
use std::time::Duration;

use crate::users::UsersService;
use crate::users::throttle::LoginThrottle;

pub use clients::{ClientAuth, NewClient};
pub use config::OAuthConfig;
pub use error::{ErrorCode, OAuthError};
pub use grant::GrantType;
pub use metadata::Metadata;
pub use token::{Params, TokenResponse};

/// The authorization server over the users service.
pub struct OAuthServer {
    users: Arc<UsersService>,
    config: OAuthConfig,
    device: device::DeviceGrants,
    /// Wrong user codes per address (the verification page).
    device_throttle: LoginThrottle,
}

impl OAuthServer {
    pub fn new(users: Arc<UsersService>) -> Arc<OAuthServer> {
        let config = users.config().oauth.clone();
        let device = device::DeviceGrants::new(
            Duration::from_secs(config.device_code_ttl_secs),
            Duration::from_secs(config.device_poll_interval_secs),
            config.max_device_codes,
        );
        let device_throttle = LoginThrottle::new(
            config.device_max_attempts,
            config.device_attempt_window_secs,
        );
        Arc::new(OAuthServer {
            users,
            config,
            device,
            device_throttle,
        })
    }

    pub fn users(&self) -> &Arc<UsersService> {
        &self.users
    }

    /// The discovery document for the configured issuer.
    pub fn metadata(&self) -> Metadata {
        Metadata::new(&self.users.config().tokens.issuer)
    }
}
