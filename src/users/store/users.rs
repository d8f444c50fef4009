//! The `users` table.

// Dynamic SQL here is only ever assembled from constants, never from input.
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use super::revocation_log::{Change, ChangeKind, FamilyOwner, append, append_open_families};
use super::{Store, list_to_text, text_to_list};
use crate::users::error::conflict_or;
use crate::users::{User, UserQuery, UsersError};

const COLUMNS: &str = "id, username, email, display_name, password_hash, roles, scopes, \
                       active, created_at, updated_at, last_login_at";

/// Fields of a new row; the password is already hashed.
pub struct UserRow<'a> {
    pub id: &'a str,
    pub username: &'a str,
    pub email: Option<&'a str>,
    pub display_name: Option<&'a str>,
    pub password_hash: Option<&'a str>,
    pub roles: &'a [String],
    pub scopes: &'a [String],
    pub now: i64,
}

fn to_user(row: &AnyRow) -> Result<(User, Option<String>), sqlx::Error> {
    let user = User {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        email: row.try_get("email")?,
        display_name: row.try_get("display_name")?,
        roles: text_to_list(&row.try_get::<String, _>("roles")?),
        scopes: text_to_list(&row.try_get::<String, _>("scopes")?),
        active: row.try_get::<i64, _>("active")? != 0,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        last_login_at: row.try_get("last_login_at")?,
    };
    Ok((user, row.try_get("password_hash")?))
}

impl Store {
    pub async fn insert_user(&self, u: &UserRow<'_>) -> Result<(), UsersError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO users (id, username, email, display_name, password_hash, roles, scopes, \
             active, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $8)",
        )
        .bind(u.id)
        .bind(u.username)
        .bind(u.email)
        .bind(u.display_name)
        .bind(u.password_hash)
        .bind(list_to_text(u.roles))
        .bind(list_to_text(u.scopes))
        .bind(u.now)
        .execute(&mut *tx)
        .await
        .map_err(|e| conflict_or(e, || format!("username '{}' already exists", u.username)))?;
        append(
            &mut tx,
            &Change::new(ChangeKind::UserCreated, u.id, 0, u.now),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The user and their password hash.
    pub async fn user_by_name(
        &self,
        username: &str,
    ) -> Result<Option<(User, Option<String>)>, UsersError> {
        let sql = format!("SELECT {COLUMNS} FROM users WHERE username = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(username)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(to_user).transpose()?)
    }

    pub async fn user_by_id(&self, id: &str) -> Result<Option<(User, Option<String>)>, UsersError> {
        let sql = format!("SELECT {COLUMNS} FROM users WHERE id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(to_user).transpose()?)
    }

    pub async fn list_users(&self, q: &UserQuery) -> Result<Vec<User>, UsersError> {
        let limit = q.limit.unwrap_or(100).clamp(1, 1000);
        let offset = q.offset.unwrap_or(0).max(0);
        // LIKE wildcards in the filter are escaped so they match literally.
        let pattern = q.filter.as_deref().map(|f| {
            let escaped = f
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            format!("%{}%", escaped.to_lowercase())
        });
        let sql = format!(
            "SELECT {COLUMNS} FROM users WHERE ($1 IS NULL OR LOWER(username) LIKE $1 ESCAPE '\\') \
             ORDER BY username LIMIT $2 OFFSET $3"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(pattern)
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| to_user(r).map(|(u, _)| u).map_err(UsersError::from))
            .collect()
    }

    /// Writes every profile field of `user` (not the password), and logs what
    /// validators must learn: disabled, enabled, or claims changed.
    pub async fn update_user(&self, user: &User, kind: ChangeKind) -> Result<(), UsersError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE users SET email = $2, display_name = $3, roles = $4, scopes = $5, active = $6, \
             updated_at = $7 WHERE id = $1",
        )
        .bind(&user.id)
        .bind(user.email.as_deref())
        .bind(user.display_name.as_deref())
        .bind(list_to_text(&user.roles))
        .bind(list_to_text(&user.scopes))
        .bind(i64::from(user.active))
        .bind(user.updated_at)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(UsersError::NotFound(format!("user {}", user.id)));
        }
        append(&mut tx, &Change::new(kind, &user.id, 0, user.updated_at)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Replaces the password hash and Digest HA1s, and revokes every refresh token of
    /// the user, all in one transaction.
    pub async fn set_password(
        &self,
        user_id: &str,
        hash: &str,
        ha1s: &[(String, String, String)],
        now: i64,
    ) -> Result<(), UsersError> {
        let mut tx = self.pool.begin().await?;
        let done =
            sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
                .bind(user_id)
                .bind(hash)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() == 0 {
            return Err(UsersError::NotFound(format!("user {user_id}")));
        }
        sqlx::query("DELETE FROM digest_credentials WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        for (realm, algorithm, ha1) in ha1s {
            sqlx::query(
                "INSERT INTO digest_credentials (user_id, realm, algorithm, ha1) VALUES ($1, $2, $3, $4)",
            )
            .bind(user_id)
            .bind(realm)
            .bind(algorithm)
            .bind(ha1)
            .execute(&mut *tx)
            .await?;
        }
        // The access tokens of those families go with them.
        append_open_families(&mut tx, FamilyOwner::User, user_id, now).await?;
        sqlx::query("UPDATE refresh_tokens SET revoked = 1 WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn touch_login(&self, user_id: &str, now: i64) -> Result<(), UsersError> {
        sqlx::query("UPDATE users SET last_login_at = $2 WHERE id = $1")
            .bind(user_id)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Deletes the user; their tokens, keys and credentials go with them (cascade).
    pub async fn delete_user(&self, user_id: &str) -> Result<(), UsersError> {
        let mut tx = self.pool.begin().await?;
        // Explicit deletes as well as ON DELETE CASCADE, in case foreign keys are off.
        for table in ["refresh_tokens", "api_keys", "digest_credentials"] {
            sqlx::query(AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE user_id = $1"
            )))
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        }
        let done = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(UsersError::NotFound(format!("user {user_id}")));
        }
        let deleted = Change::new(ChangeKind::UserDeleted, user_id, 0, crate::auth::now());
        append(&mut tx, &deleted).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Whether the user exists and is active (the validator's revocation check).
    pub async fn user_active(&self, user_id: &str) -> Result<bool, UsersError> {
        let row = sqlx::query("SELECT active FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => r.try_get::<i64, _>("active")? != 0,
            None => false,
        })
    }
}
