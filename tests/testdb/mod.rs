//! The database a test's server uses: SQLite in the test's folder, or, with
//! `SIPREG_TEST_POSTGRES_URL=postgres://user@host:port/db` set (CI's second pass), a fresh
//! PostgreSQL database per folder, so the same tests check both engines. The PostgreSQL
//! URL is remembered in the folder: a server restarted on the same folder finds its data.
#![allow(dead_code)]

use std::path::Path;

/// File in a test folder that holds the folder's PostgreSQL URL.
const REMEMBERED: &str = "postgres-url";

/// The database URL for a test whose store lives in `dir`.
pub fn url(dir: &Path) -> String {
    match std::env::var("SIPREG_TEST_POSTGRES_URL") {
        Ok(admin) => postgres_url(dir, &admin),
        Err(_) => sqlite_url(dir),
    }
}

/// The folder's SQLite file, whatever the environment says (tests that handle the file).
pub fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}/sipreg.db?mode=rwc", dir.display())
}

/// Whether this run puts test stores on PostgreSQL.
pub fn on_postgres() -> bool {
    std::env::var_os("SIPREG_TEST_POSTGRES_URL").is_some()
}

fn postgres_url(dir: &Path, admin: &str) -> String {
    let file = dir.join(REMEMBERED);
    if let Ok(url) = std::fs::read_to_string(&file) {
        return url;
    }
    // A thread of its own: callers may be inside a runtime (async tests) or not.
    let admin = admin.to_string();
    let url = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(create_database(&admin))
    })
    .join()
    .expect("create a PostgreSQL database");
    std::fs::write(&file, &url).expect("remember the PostgreSQL URL");
    url
}

/// Creates an empty database next to the one `admin_url` names; returns its URL.
async fn create_database(admin_url: &str) -> String {
    use sqlx::Connection;
    let name = format!("sipreg_t_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::postgres::PgConnection::connect(admin_url)
        .await
        .expect("connect to SIPREG_TEST_POSTGRES_URL");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create database");
    let (base, _) = admin_url
        .rsplit_once('/')
        .expect("SIPREG_TEST_POSTGRES_URL with a database path");
    format!("{base}/{name}")
}
