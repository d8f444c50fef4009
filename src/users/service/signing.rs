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

    /// A JWT of `claims` signed with the current key, with its `kid` and header `typ`
    /// (an ID token, for one: `JWT`), on the background CPU pool.
    pub async fn sign_jwt<T: serde::Serialize + ?Sized>(
        &self,
        typ: &'static str,
        claims: &T,
    ) -> Result<String, UsersError> {
        let payload = serde_json::to_vec(claims)
            .map_err(|e| UsersError::Internal(format!("signing failed: {e}")))?;
        let ring = self.keys.ring();
        self.cpu
            .run(move || crate::auth::issuer::sign_payload(&ring.current, typ, &payload))
            .await?
    }
}
