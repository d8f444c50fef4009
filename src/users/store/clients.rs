//! The `oauth_clients` table: the OAuth 2.0 clients registry (RFC 6749 §2). A
//! confidential client's secret is stored as a SHA-256 hash (secrets are 256-bit random,
//! as refresh tokens); a public client has none.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::revocation_log::{Change, ChangeKind, FamilyOwner, append, append_open_families};
use super::{Store, list_to_text, text_to_list};
use crate::users::UsersError;
use crate::users::error::conflict_or;

/// A registered client as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ClientRecord {
    pub id: String,
    pub name: String,
    /// SHA-256 hex of the secret; `None` for a public client.
    #[serde(skip)]
    pub secret_hash: Option<String>,
    /// Grant type names it may use (`password`, `refresh_token`, ...).
    pub grants: Vec<String>,
    /// Exact redirect URIs for the authorization-code grant.
    pub redirect_uris: Vec<String>,
    /// Scopes it may ask for.
    pub scopes: Vec<String>,
    pub created_at: i64,
}

impl ClientRecord {
    pub fn is_public(&self) -> bool {
        self.secret_hash.is_none()
    }
}

fn to_record(row: &AnyRow) -> Result<ClientRecord, sqlx::Error> {
    Ok(ClientRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        secret_hash: row.try_get("secret_hash")?,
        grants: text_to_list(&row.try_get::<String, _>("grants")?),
        redirect_uris: text_to_list(&row.try_get::<String, _>("redirect_uris")?),
        scopes: text_to_list(&row.try_get::<String, _>("scopes")?),
        created_at: row.try_get("created_at")?,
    })
}

impl Store {
    pub async fn insert_client(&self, c: &ClientRecord) -> Result<(), UsersError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO oauth_clients (id, name, secret_hash, grants, redirect_uris, scopes, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&c.id)
        .bind(&c.name)
        .bind(c.secret_hash.as_deref())
        .bind(list_to_text(&c.grants))
        .bind(list_to_text(&c.redirect_uris))
        .bind(list_to_text(&c.scopes))
        .bind(c.created_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| conflict_or(e, || format!("client '{}' already exists", c.id)))?;
        let created = Change::new(ChangeKind::ClientCreated, &c.id, 0, c.created_at);
        append(&mut tx, &created).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn client_by_id(&self, id: &str) -> Result<Option<ClientRecord>, UsersError> {
        let row = sqlx::query(
            "SELECT id, name, secret_hash, grants, redirect_uris, scopes, created_at \
             FROM oauth_clients WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(to_record).transpose()?)
    }

    pub async fn list_clients(&self) -> Result<Vec<ClientRecord>, UsersError> {
        let rows = sqlx::query(
            "SELECT id, name, secret_hash, grants, redirect_uris, scopes, created_at \
             FROM oauth_clients ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(to_record).collect::<Result<_, _>>()?)
    }

    /// Removes the client and revokes every refresh token issued to it.
    pub async fn delete_client(&self, id: &str) -> Result<bool, UsersError> {
        let mut tx = self.pool.begin().await?;
        let gone = sqlx::query("DELETE FROM oauth_clients WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
        // Its own tokens (sub = the client) and those of its families go with it.
        let now = crate::auth::now();
        append_open_families(&mut tx, FamilyOwner::Client, id, now).await?;
        if gone {
            append(&mut tx, &Change::new(ChangeKind::ClientDeleted, id, 0, now)).await?;
        }
        sqlx::query("UPDATE refresh_tokens SET revoked = 1 WHERE client_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(gone)
    }
}
