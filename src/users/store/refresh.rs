//! The `refresh_tokens` and `revoked_jtis` tables: rotation with reuse detection,
//! and the list of revoked access tokens.

use sqlx::Row;

use super::Store;
use super::revocation_log::{Change, ChangeKind, append};
use crate::users::UsersError;

/// A stored refresh token (the secret itself is never stored, only its hash).
#[derive(Debug, Clone)]
pub struct RefreshRecord {
    pub id: String,
    pub user_id: String,
    pub family_id: String,
    pub expires_at: i64,
    /// The OAuth client it was issued to ('' when none): only that client may use it
    /// (RFC 6749 §6).
    pub client_id: String,
    /// The scope granted to the family, space-separated ('' = the user's scopes).
    pub scope: String,
}

/// What presenting a refresh token led to.
#[derive(Debug)]
pub enum RotateOutcome {
    /// Valid: it is now revoked and replaced by the new record.
    Rotated(RefreshRecord),
    /// Already rotated or revoked: the whole family has been revoked.
    Reused,
    /// Unknown or expired.
    Invalid,
}

impl Store {
    pub async fn insert_refresh(
        &self,
        r: &RefreshRecord,
        hash: &str,
        now: i64,
    ) -> Result<(), UsersError> {
        let mut tx = self.pool.begin().await?;
        // Expired tokens of this user are useless (even for reuse detection): drop them.
        sqlx::query("DELETE FROM refresh_tokens WHERE user_id = $1 AND expires_at < $2")
            .bind(&r.user_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO refresh_tokens (id, token_hash, user_id, family_id, created_at, expires_at, revoked, client_id, scope) \
             VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8)",
        )
        .bind(&r.id)
        .bind(hash)
        .bind(&r.user_id)
        .bind(&r.family_id)
        .bind(now)
        .bind(r.expires_at)
        .bind(&r.client_id)
        .bind(&r.scope)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Revokes the token with `old_hash` and stores `new` (same family) in its place.
    /// A token that was already revoked revokes its family instead. A token issued to
    /// another client than `client_id` is `Invalid` and left as it is.
    pub async fn rotate_refresh(
        &self,
        old_hash: &str,
        client_id: &str,
        new_id: &str,
        new_hash: &str,
        new_expires_at: i64,
        now: i64,
    ) -> Result<RotateOutcome, UsersError> {
        let mut tx = self.pool.begin().await?;
        // Claim the token with a write first: the transaction takes the write lock
        // up front (SQLite then queues on busy_timeout instead of failing a lock
        // upgrade), and of concurrent uses exactly one sees `revoked = 0`.
        let claimed = sqlx::query(
            "UPDATE refresh_tokens SET revoked = 1, replaced_by = $2 \
             WHERE token_hash = $1 AND revoked = 0 AND expires_at > $3 AND client_id = $4",
        )
        .bind(old_hash)
        .bind(new_id)
        .bind(now)
        .bind(client_id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        let row = sqlx::query(
            "SELECT user_id, family_id, revoked, client_id, scope FROM refresh_tokens WHERE token_hash = $1",
        )
        .bind(old_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(RotateOutcome::Invalid);
        };
        if row.try_get::<String, _>("client_id")? != client_id {
            return Ok(RotateOutcome::Invalid);
        }
        let user_id: String = row.try_get("user_id")?;
        let family_id: String = row.try_get("family_id")?;
        let scope: String = row.try_get("scope")?;
        if !claimed {
            let revoked: i64 = row.try_get("revoked")?;
            if revoked == 0 {
                // Not revoked and the client matched, so it failed the expiry test.
                return Ok(RotateOutcome::Invalid);
            }
            sqlx::query("UPDATE refresh_tokens SET revoked = 1 WHERE family_id = $1")
                .bind(&family_id)
                .execute(&mut *tx)
                .await?;
            append(
                &mut tx,
                &Change::new(ChangeKind::Family, &family_id, 0, now),
            )
            .await?;
            tx.commit().await?;
            return Ok(RotateOutcome::Reused);
        }
        sqlx::query(
            "INSERT INTO refresh_tokens (id, token_hash, user_id, family_id, created_at, expires_at, revoked, client_id, scope) \
             VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8)",
        )
        .bind(new_id)
        .bind(new_hash)
        .bind(&user_id)
        .bind(&family_id)
        .bind(now)
        .bind(new_expires_at)
        .bind(client_id)
        .bind(&scope)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(RotateOutcome::Rotated(RefreshRecord {
            id: new_id.to_string(),
            user_id,
            family_id,
            expires_at: new_expires_at,
            client_id: client_id.to_string(),
            scope,
        }))
    }

    /// Revokes the family of the token with `hash` issued to `client_id` ('' for none);
    /// returns its user if it existed.
    pub async fn revoke_refresh_family(
        &self,
        hash: &str,
        client_id: &str,
    ) -> Result<Option<String>, UsersError> {
        let mut tx = self.pool.begin().await?;
        // Write first (see `rotate_refresh`), then read what was hit.
        sqlx::query(
            "UPDATE refresh_tokens SET revoked = 1 WHERE family_id = \
             (SELECT family_id FROM refresh_tokens WHERE token_hash = $1 AND client_id = $2)",
        )
        .bind(hash)
        .bind(client_id)
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(
            "SELECT user_id, family_id FROM refresh_tokens WHERE token_hash = $1 AND client_id = $2",
        )
        .bind(hash)
        .bind(client_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.commit().await?;
            return Ok(None);
        };
        let family: String = row.try_get("family_id")?;
        let revoked = Change::new(ChangeKind::Family, &family, 0, crate::auth::now());
        append(&mut tx, &revoked).await?;
        tx.commit().await?;
        Ok(Some(row.try_get("user_id")?))
    }

    /// Adds an access token id to the revocation list until its expiry.
    pub async fn revoke_jti(&self, jti: &str, expires_at: i64, now: i64) -> Result<(), UsersError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM revoked_jtis WHERE expires_at < $1")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM revoked_jtis WHERE jti = $1")
            .bind(jti)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO revoked_jtis (jti, expires_at) VALUES ($1, $2)")
            .bind(jti)
            .bind(expires_at)
            .execute(&mut *tx)
            .await?;
        append(&mut tx, &Change::new(ChangeKind::Jti, jti, expires_at, now)).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn jti_revoked(&self, jti: &str) -> Result<bool, UsersError> {
        let row = sqlx::query("SELECT jti FROM revoked_jtis WHERE jti = $1")
            .bind(jti)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }
}
