//! Signing keys as the service exposes them: JWKS, rotation, reload.

use super::UsersService;
use crate::users::UsersError;

impl UsersService {
    pub fn jwks(&self) -> jsonwebtoken::jwk::JwkSet {
        self.keys.ring().jwks()
    }

    pub async fn rotate_signing_key(&self) -> Result<String, UsersError> {
        self.keys.rotate().await
    }

    /// Re-reads the key ring (periodically by the server, after CLI rotations).
    pub async fn reload_keys(&self) -> Result<(), UsersError> {
        self.keys.reload().await
    }

    pub fn current_kid(&self) -> String {
        self.keys.ring().current.kid.clone()
    }
}
