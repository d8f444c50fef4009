//! Bench-only bulk insert of users (`sipreg bench-users`): one transaction per chunk,
//! every user with the same, already computed password hash.

use sqlx::Row;

use super::{Store, list_to_text};
use crate::users::UsersError;

/// What the users of one bulk insert share.
pub struct BulkUsers<'a> {
    pub password_hash: &'a str,
    /// Marks the rows as bench users.
    pub display_name: &'a str,
    pub roles: &'a [String],
    pub scopes: &'a [String],
    pub now: i64,
}

impl Store {
    /// Inserts (or, for a name already taken, gives the shared hash to) the users
    /// `names`, each with its `(realm, algorithm, HA1)` Digest credentials from `ha1s`,
    /// in one transaction. Returns the ids, in the order of `names`.
    pub async fn insert_users_bulk(
        &self,
        names: &[String],
        ha1s: impl Fn(&str) -> Vec<(String, String, String)>,
        shared: &BulkUsers<'_>,
    ) -> Result<Vec<String>, UsersError> {
        let roles = list_to_text(shared.roles);
        let scopes = list_to_text(shared.scopes);
        let mut ids = Vec::with_capacity(names.len());
        let mut tx = self.pool.begin().await?;
        for name in names {
            let id = uuid::Uuid::new_v4().to_string();
            // Existing users keep their id: tokens already issued for them stay theirs.
            let row = sqlx::query(
                "INSERT INTO users (id, username, display_name, password_hash, roles, scopes, \
                 active, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $7) \
                 ON CONFLICT (username) DO UPDATE SET password_hash = excluded.password_hash, \
                 active = 1, updated_at = excluded.updated_at RETURNING id",
            )
            .bind(&id)
            .bind(name)
            .bind(shared.display_name)
            .bind(shared.password_hash)
            .bind(&roles)
            .bind(&scopes)
            .bind(shared.now)
            .fetch_one(&mut *tx)
            .await?;
            let id: String = row.try_get("id")?;
            for (realm, algorithm, ha1) in ha1s(name) {
                sqlx::query(
                    "INSERT INTO digest_credentials (user_id, realm, algorithm, ha1) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, realm, algorithm) \
                     DO UPDATE SET ha1 = excluded.ha1",
                )
                .bind(&id)
                .bind(realm)
                .bind(algorithm)
                .bind(ha1)
                .execute(&mut *tx)
                .await?;
            }
            ids.push(id);
        }
        tx.commit().await?;
        Ok(ids)
    }
}
