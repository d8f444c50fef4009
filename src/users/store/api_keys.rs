//! The `api_keys` table. Keys are found by their public prefix; the secret's hash is
//! compared by the caller in constant time.

// Dynamic SQL here is only ever assembled from constants, never from input.
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use super::revocation_log::{Change, ChangeKind, append};
use super::{Store, list_to_text, text_to_list};
use crate::users::error::conflict_or;
use crate::users::{ApiKeyInfo, UsersError};

const COLUMNS: &str =
    "id, user_id, name, prefix, key_hash, scopes, created_at, expires_at, last_used_at, revoked_at";

fn to_info(row: &AnyRow) -> Result<(ApiKeyInfo, String), sqlx::Error> {
    let info = ApiKeyInfo {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        name: row.try_get("name")?,
        prefix: row.try_get("prefix")?,
        scopes: text_to_list(&row.try_get::<String, _>("scopes")?),
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        last_used_at: row.try_get("last_used_at")?,
        revoked_at: row.try_get("revoked_at")?,
    };
    Ok((info, row.try_get("key_hash")?))
}

impl Store {
    pub async fn insert_api_key(&self, k: &ApiKeyInfo, hash: &str) -> Result<(), UsersError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO api_keys (id, user_id, name, prefix, key_hash, scopes, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&k.id)
        .bind(&k.user_id)
        .bind(&k.name)
        .bind(&k.prefix)
        .bind(hash)
        .bind(list_to_text(&k.scopes))
        .bind(k.created_at)
        .bind(k.expires_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| conflict_or(e, || "API key prefix collision, try again".to_string()))?;
        tx.commit().await?;
        Ok(())
    }

    /// The key with `prefix` and its secret hash.
    pub async fn api_key_by_prefix(
        &self,
        prefix: &str,
    ) -> Result<Option<(ApiKeyInfo, String)>, UsersError> {
        let sql = format!("SELECT {COLUMNS} FROM api_keys WHERE prefix = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(prefix)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(to_info).transpose()?)
    }

    pub async fn api_key_by_id(&self, id: &str) -> Result<Option<ApiKeyInfo>, UsersError> {
        let sql = format!("SELECT {COLUMNS} FROM api_keys WHERE id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(to_info).transpose()?.map(|(k, _)| k))
    }

    /// Keys of one user, or of everybody when `user_id` is None.
    pub async fn list_api_keys(
        &self,
        user_id: Option<&str>,
    ) -> Result<Vec<ApiKeyInfo>, UsersError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM api_keys WHERE ($1 IS NULL OR user_id = $1) ORDER BY created_at, id"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| to_info(r).map(|(k, _)| k).map_err(UsersError::from))
            .collect()
    }

    pub async fn revoke_api_key(&self, id: &str, now: i64) -> Result<(), UsersError> {
        let mut tx = self.pool.begin().await?;
        let done =
            sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() == 0 && self.api_key_by_id(id).await?.is_none() {
            return Err(UsersError::NotFound(format!("API key {id}")));
        }
        append(&mut tx, &Change::new(ChangeKind::ApiKey, id, 0, now)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Shortens the key's life to `expires_at` (rotation grace period).
    pub async fn expire_api_key(&self, id: &str, expires_at: i64) -> Result<(), UsersError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE api_keys SET expires_at = $2 WHERE id = $1 AND (expires_at IS NULL OR expires_at > $2)",
        )
        .bind(id)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        let changed = Change::new(ChangeKind::ApiKeyChanged, id, 0, crate::auth::now());
        append(&mut tx, &changed).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn touch_api_key(&self, id: &str, now: i64) -> Result<(), UsersError> {
        sqlx::query("UPDATE api_keys SET last_used_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
