//! sipreg's own OAuth 2.0 authorization server (RFC 6749), so a phone that knows only
//! the 401's `authz_server` (RFC 8898 §2) can discover the endpoints (RFC 8414) and
//! obtain a token.
//!
//! - [`clients`]: the clients registry and client authentication.
//! - [`token`]: the token endpoint's grants and revocation (RFC 7009).
//! - [`device`]: the device authorization grant (RFC 8628).
//! - [`authorize`], [`code`], [`code_grant`], [`pkce`]: the authorization-code grant
//!   with PKCE (RFC 6749 §4.1, RFC 7636); [`oidc`]: its ID token and discovery.
//! - [`metadata`]: the discovery document.
//! - [`error`]: RFC 6749 §5.2 errors.
//!
//! Transport-free: `http` decodes requests and encodes answers.

pub mod authorize;
pub mod cli;
pub mod clients;
pub mod code;
mod code_grant;
pub mod config;
pub mod device;
pub mod error;
pub mod grant;
pub mod metadata;
pub mod oidc;
pub mod pkce;
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
    /// Authorization codes, and logged-in requests awaiting consent.
    codes: code::AuthCodes,
    consents: code::Expiring<authorize::Consent>,
}

/// How long a person may take between logging in and deciding.
const CONSENT_TTL: Duration = Duration::from_secs(600);

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
            crate::users::throttle::DEFAULT_MAX_KEYS,
        );
        let codes = code::AuthCodes::new(
            Duration::from_secs(config.auth_code_ttl_secs),
            config.max_auth_codes,
        );
        let consents = code::Expiring::new(CONSENT_TTL, config.max_auth_codes);
        Arc::new(OAuthServer {
            users,
            config,
            device,
            device_throttle,
            codes,
            consents,
        })
    }

    pub fn users(&self) -> &Arc<UsersService> {
        &self.users
    }

    /// The discovery document for the configured issuer.
    pub fn metadata(&self) -> Metadata {
        Metadata::new(&self.users.config().tokens.issuer)
    }

    /// The OpenID Connect discovery document.
    pub fn openid_configuration(&self) -> oidc::Configuration {
        let tokens = &self.users.config().tokens;
        let mut c = oidc::Configuration::new(&tokens.issuer);
        // RS256 is always listed (Core §15.1); ID tokens are signed with the current key.
        let alg = tokens.algorithm.as_str();
        if !c.id_token_signing_alg_values_supported.contains(&alg) {
            c.id_token_signing_alg_values_supported.push(alg);
        }
        c
    }
}
