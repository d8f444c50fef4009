//! sipreg's own OAuth 2.0 authorization server (RFC 6749), so a phone that knows only
//! the 401's `authz_server` (RFC 8898 §2) can discover the endpoints (RFC 8414) and
//! obtain a token.
//!
//! - [`clients`]: the clients registry and client authentication.
//! - [`token`]: the token endpoint's grants and revocation (RFC 7009).
//! - [`metadata`]: the discovery document.
//! - [`error`]: RFC 6749 §5.2 errors.
//!
//! Transport-free: `http` decodes requests and encodes answers.

pub mod cli;
pub mod clients;
pub mod config;
pub mod error;
pub mod grant;
pub mod metadata;
pub mod token;

use std::sync::Arc;

use crate::users::UsersService;

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
}

impl OAuthServer {
    pub fn new(users: Arc<UsersService>) -> Arc<OAuthServer> {
        let config = users.config().oauth.clone();
        Arc::new(OAuthServer { users, config })
    }

    pub fn users(&self) -> &Arc<UsersService> {
        &self.users
    }

    /// The discovery document for the configured issuer.
    pub fn metadata(&self) -> Metadata {
        Metadata::new(&self.users.config().tokens.issuer)
    }
}
