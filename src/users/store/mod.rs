//! The store: one `sqlx::Any` pool over SQLite or PostgreSQL, the embedded migrations,
//! and the queries, split by table. Only portable SQL is used (`$n` parameters,
//! TEXT/BIGINT columns), so both back ends run the same statements.

mod api_keys;
mod bulk;
mod clients;
mod digest;
mod refresh;
mod revocation_log;
mod signing_keys;
mod users;

use std::path::Path;
use std::sync::Once;

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Executor};

use super::UsersError;

pub use bulk::BulkUsers;
pub use clients::ClientRecord;
pub use refresh::{RefreshRecord, RotateOutcome};
pub use revocation_log::{Change, ChangeKind, RevocationSnapshot};
pub use signing_keys::SigningKeyRow;
pub use users::UserRow;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// Handle to the users database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
}

impl Store {
    /// Connects to `url`, creating the SQLite file and its folder when needed, and
    /// runs the pending migrations.
    pub async fn open(url: &str) -> Result<Store, UsersError> {
        static DRIVERS: Once = Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let sqlite = url.starts_with("sqlite:");
        if sqlite {
            create_sqlite_folder(url)?;
        }
        let pool = AnyPoolOptions::new()
            .max_connections(if sqlite { 4 } else { 10 })
            .connect(url)
            .await?;
        if sqlite {
            // WAL lets the CLI write while the server reads; it persists in the file.
            pool.execute("PRAGMA journal_mode=WAL").await?;
        }
        MIGRATOR.run(&pool).await?;
        Ok(Store { pool })
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> bool {
        self.pool.execute("SELECT 1").await.is_ok()
    }
}

/// `sqlite://data/x.db?mode=rwc` → creates `data/`.
fn create_sqlite_folder(url: &str) -> Result<(), UsersError> {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let path = rest.split('?').next().unwrap_or("");
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    if let Some(parent) = Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(|e| {
            UsersError::Internal(format!("cannot create {}: {e}", parent.display()))
        })?;
    }
    Ok(())
}

/// JSON text for a list column.
pub(crate) fn list_to_text(list: &[String]) -> String {
    serde_json::to_string(list).unwrap_or_else(|_| "[]".to_string())
}

/// A list column back; a damaged value reads as empty rather than failing the row.
pub(crate) fn text_to_list(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}
