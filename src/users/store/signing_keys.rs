//! The `signing_keys` table: which key files sign and verify, and when each retires.

use sqlx::Row;

use super::Store;
use super::revocation_log::{Change, ChangeKind, append};
use crate::users::UsersError;

#[derive(Debug, Clone)]
pub struct SigningKeyRow {
    pub kid: String,
    pub key_path: String,
    pub created_at: i64,
    /// Set when a newer key took over: the key stays in JWKS until then.
    pub retire_after: Option<i64>,
}

impl Store {
    /// Keys not yet retired, oldest first. Keys whose grace has passed are marked
    /// retired on the way.
    pub async fn live_signing_keys(&self, now: i64) -> Result<Vec<SigningKeyRow>, UsersError> {
        sqlx::query(
            "UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL AND retire_after IS NOT NULL \
             AND retire_after <= $1",
        )
        .bind(now)
        .execute(&self.pool)
        .await?;
        let rows = sqlx::query(
            "SELECT kid, key_path, created_at, retire_after FROM signing_keys WHERE retired_at IS NULL \
             ORDER BY created_at, kid",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SigningKeyRow {
                    kid: r.try_get("kid")?,
                    key_path: r.try_get("key_path")?,
                    created_at: r.try_get("created_at")?,
                    retire_after: r.try_get("retire_after")?,
                })
            })
            .collect()
    }

    /// Every key ever used, retired ones included (for `keys list`).
    pub async fn all_signing_keys(&self) -> Result<Vec<(SigningKeyRow, Option<i64>)>, UsersError> {
        let rows = sqlx::query(
            "SELECT kid, key_path, created_at, retire_after, retired_at FROM signing_keys ORDER BY created_at, kid",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    SigningKeyRow {
                        kid: r.try_get("kid")?,
                        key_path: r.try_get("key_path")?,
                        created_at: r.try_get("created_at")?,
                        retire_after: r.try_get("retire_after")?,
                    },
                    r.try_get("retired_at")?,
                ))
            })
            .collect()
    }

    /// Makes `kid` the newest key; every other live key retires after `retire_after`.
    pub async fn add_signing_key(
        &self,
        kid: &str,
        path: &str,
        now: i64,
        retire_after: i64,
    ) -> Result<(), UsersError> {
        let mut tx = self.pool.begin().await?;
        // Write first so the transaction holds the write lock before it reads.
        sqlx::query(
            "UPDATE signing_keys SET retire_after = $2 WHERE kid <> $1 AND retired_at IS NULL \
             AND retire_after IS NULL",
        )
        .bind(kid)
        .bind(retire_after)
        .execute(&mut *tx)
        .await?;
        let exists = sqlx::query("SELECT kid FROM signing_keys WHERE kid = $1")
            .bind(kid)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            sqlx::query("INSERT INTO signing_keys (kid, key_path, created_at) VALUES ($1, $2, $3)")
                .bind(kid)
                .bind(path)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        append(&mut tx, &Change::new(ChangeKind::SigningKeys, kid, 0, now)).await?;
        tx.commit().await?;
        Ok(())
    }
}
