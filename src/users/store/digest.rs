//! The `digest_credentials` table: HA1 values for Digest authentication.

use sqlx::Row;

use super::Store;
use crate::users::UsersError;

impl Store {
    /// The HA1 of `username` for `realm` and `algorithm` ("MD5" or "SHA-256"), if the
    /// user is active and has one.
    pub async fn digest_ha1(
        &self,
        username: &str,
        realm: &str,
        algorithm: &str,
    ) -> Result<Option<String>, UsersError> {
        let row = sqlx::query(
            "SELECT d.ha1 FROM digest_credentials d JOIN users u ON u.id = d.user_id \
             WHERE u.username = $1 AND d.realm = $2 AND d.algorithm = $3 AND u.active = 1",
        )
        .bind(username)
        .bind(realm)
        .bind(algorithm)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.try_get("ha1")).transpose()?)
    }
}
