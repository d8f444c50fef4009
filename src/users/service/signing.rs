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

    /// An RS256 JWT of `claims` with the current key's `kid` and header `typ` (an ID
    /// token, for one: `JWT`).
    pub fn sign_jwt<T: serde::Serialize>(
        &self,
        typ: &str,
        claims: &T,
    ) -> Result<String, UsersError> {
        let ring = self.keys.ring();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.typ = Some(typ.to_string());
        header.kid = Some(ring.current.kid.clone());
        jsonwebtoken::encode(&header, claims, &ring.current.encoding)
            .map_err(|e| UsersError::Internal(format!("signing failed: {e}")))
    }
}
