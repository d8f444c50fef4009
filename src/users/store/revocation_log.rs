//! The `revocation_log` table: every revocation (and every change a cached validation
//! depends on) as a row with an increasing id, written in the transaction of the change.
//! Validators load the state once and then poll for rows after the last id they applied
//! (one indexed range query a second, off the hot path), so a revocation made by another
//! process sharing the store (the CLI, another node) takes effect within a poll.

use sqlx::{AnyConnection, Row};

use super::Store;
use crate::users::UsersError;

/// What a row records (the `kind` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// An access token's jti; `expires_at` is the token's `exp`.
    Jti,
    /// A refresh token family, and every access token it issued (`sid`).
    Family,
    /// A user (or client) the validator has not seen: its tokens are accepted.
    UserCreated,
    ClientCreated,
    UserDisabled,
    UserEnabled,
    /// Roles or scopes changed: cached claims are stale, nothing is revoked.
    UserChanged,
    UserDeleted,
    ClientDeleted,
    /// An API key revoked.
    ApiKey,
    /// An API key rotated (it now expires sooner): cached results are stale.
    ApiKeyChanged,
    /// A signing key added or scheduled to retire: reload the key ring.
    SigningKeys,
}

impl ChangeKind {
    const ALL: [(ChangeKind, &'static str); 12] = [
        (ChangeKind::Jti, "jti"),
        (ChangeKind::Family, "family"),
        (ChangeKind::UserCreated, "user_created"),
        (ChangeKind::ClientCreated, "client_created"),
        (ChangeKind::UserDisabled, "user_disabled"),
        (ChangeKind::UserEnabled, "user_enabled"),
        (ChangeKind::UserChanged, "user_changed"),
        (ChangeKind::UserDeleted, "user_deleted"),
        (ChangeKind::ClientDeleted, "client_deleted"),
        (ChangeKind::ApiKey, "api_key"),
        (ChangeKind::ApiKeyChanged, "api_key_changed"),
        (ChangeKind::SigningKeys, "signing_keys"),
    ];

    pub fn as_str(self) -> &'static str {
        ChangeKind::ALL
            .iter()
            .find(|(k, _)| *k == self)
            .map_or("", |(_, n)| n)
    }

    /// `None` for a kind this version does not know (written by a newer one).
    pub fn parse(name: &str) -> Option<ChangeKind> {
        ChangeKind::ALL
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(k, _)| *k)
    }
}

/// One change, as written and as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: ChangeKind,
    pub subject: String,
    /// Unix second after which it no longer matters; 0: the reader decides (its access
    /// token lifetime after `created_at`).
    pub expires_at: i64,
    pub created_at: i64,
}

impl Change {
    pub fn new(kind: ChangeKind, subject: &str, expires_at: i64, created_at: i64) -> Change {
        Change {
            kind,
            subject: subject.to_string(),
            expires_at,
            created_at,
        }
    }
}

/// Appends `change` inside the caller's transaction. The id is `MAX(id) + 1` read in
/// that transaction: SQLite serialises writers; on PostgreSQL two concurrent writers
/// collide on the primary key and one fails (the change is refused, never lost silently).
pub(crate) async fn append(conn: &mut AnyConnection, change: &Change) -> Result<(), UsersError> {
    sqlx::query(
        "INSERT INTO revocation_log (id, kind, subject, expires_at, created_at) \
         SELECT COALESCE(MAX(id), 0) + 1, $1, $2, $3, $4 FROM revocation_log",
    )
    .bind(change.kind.as_str())
    .bind(&change.subject)
    .bind(change.expires_at)
    .bind(change.created_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Whose refresh token families [`append_open_families`] revokes.
pub(crate) enum FamilyOwner {
    User,
    Client,
}

/// Appends a `Family` change for every refresh token family of `owner` `id` not yet
/// revoked, inside the caller's transaction: the access tokens issued from them go too.
pub(crate) async fn append_open_families(
    conn: &mut AnyConnection,
    owner: FamilyOwner,
    id: &str,
    now: i64,
) -> Result<(), UsersError> {
    let sql = match owner {
        FamilyOwner::User => {
            "SELECT DISTINCT family_id FROM refresh_tokens WHERE user_id = $1 AND revoked = 0"
        }
        FamilyOwner::Client => {
            "SELECT DISTINCT family_id FROM refresh_tokens WHERE client_id = $1 AND revoked = 0"
        }
    };
    let families = sqlx::query(sql).bind(id).fetch_all(&mut *conn).await?;
    for f in families {
        let family: String = f.try_get("family_id")?;
        append(conn, &Change::new(ChangeKind::Family, &family, 0, now)).await?;
    }
    Ok(())
}

/// The state a validator starts from.
#[derive(Debug, Default)]
pub struct RevocationSnapshot {
    /// Revoked access tokens not yet expired: (jti, exp).
    pub jtis: Vec<(String, i64)>,
    pub disabled_users: Vec<String>,
    /// Active users and registered clients: the subjects whose tokens stand.
    pub active: Vec<String>,
    pub revoked_api_keys: Vec<String>,
}

impl Store {
    /// Appends one change on its own (for changes made outside a transaction of ours).
    pub async fn log_change(&self, change: &Change) -> Result<(), UsersError> {
        let mut tx = self.pool.begin().await?;
        append(&mut tx, change).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Rows after `after`, oldest first, with their ids (at most `limit`). Kinds this
    /// version does not know are skipped.
    pub async fn changes_after(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<(i64, Change)>, UsersError> {
        let rows = sqlx::query(
            "SELECT id, kind, subject, expires_at, created_at FROM revocation_log \
             WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let id: i64 = r.try_get("id")?;
            let kind: String = r.try_get("kind")?;
            let Some(kind) = ChangeKind::parse(&kind) else {
                continue;
            };
            out.push((
                id,
                Change {
                    kind,
                    subject: r.try_get("subject")?,
                    expires_at: r.try_get("expires_at")?,
                    created_at: r.try_get("created_at")?,
                },
            ));
        }
        Ok(out)
    }

    /// Drops rows written before `before`, keeping the newest (its id is where the next
    /// one counts from, and pollers compare against it).
    pub async fn prune_changes(&self, before: i64) -> Result<u64, UsersError> {
        let done = sqlx::query(
            "DELETE FROM revocation_log WHERE created_at < $1 \
             AND id < (SELECT MAX(id) FROM revocation_log)",
        )
        .bind(before)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// What the tables say is revoked or disabled now.
    pub async fn revocation_snapshot(&self, now: i64) -> Result<RevocationSnapshot, UsersError> {
        let jtis = sqlx::query("SELECT jti, expires_at FROM revoked_jtis WHERE expires_at >= $1")
            .bind(now)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| Ok((r.try_get("jti")?, r.try_get("expires_at")?)))
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let ids = |sql: &'static str| async move {
            sqlx::query(sql)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|r| r.try_get::<String, _>("id"))
                .collect::<Result<Vec<_>, sqlx::Error>>()
        };
        Ok(RevocationSnapshot {
            jtis,
            disabled_users: ids("SELECT id FROM users WHERE active = 0").await?,
            active: ids("SELECT id FROM users WHERE active = 1 UNION SELECT id FROM oauth_clients")
                .await?,
            revoked_api_keys: ids("SELECT id FROM api_keys WHERE revoked_at IS NOT NULL").await?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_by_name() {
        for (k, n) in ChangeKind::ALL {
            assert_eq!(k.as_str(), n);
            assert_eq!(ChangeKind::parse(n), Some(k));
        }
        assert_eq!(ChangeKind::parse("from_a_newer_version"), None);
    }
}
