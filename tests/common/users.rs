//! Shared test setup: a users service over SQLite in a temporary folder, with cheap
//! Argon2 parameters (one test elsewhere exercises the defaults). With
//! `SIPREG_TEST_POSTGRES_URL=postgres://user@host:port/db` set, each environment gets
//! a fresh PostgreSQL database instead, so the same tests check portability.
#![allow(dead_code)]

use std::sync::Arc;

use sipreg::config::Config;
use sipreg::users::{NewUser, User, UsersService};

pub const PASSWORD: &str = "Correct-Horse-42-battery";

pub struct Env {
    pub dir: tempfile::TempDir,
    pub config: Config,
    pub svc: Arc<UsersService>,
}

pub fn config_in(dir: &std::path::Path) -> Config {
    let mut config = Config::default();
    config.database.url = format!("sqlite://{}/sipreg.db?mode=rwc", dir.display());
    config.tokens.key_dir = dir.join("keys");
    config.users.argon2_memory_kib = 64;
    config.users.argon2_iterations = 1;
    config
}

pub async fn env() -> Env {
    env_with(|_| {}).await
}

pub async fn env_with(tweak: impl FnOnce(&mut Config)) -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = config_in(dir.path());
    if let Ok(admin_url) = std::env::var("SIPREG_TEST_POSTGRES_URL") {
        config.database.url = fresh_postgres_db(&admin_url).await;
    }
    tweak(&mut config);
    let svc = UsersService::open(&config).await.expect("open service");
    Env { dir, config, svc }
}

pub async fn add_user(svc: &UsersService, name: &str, roles: &[&str]) -> User {
    svc.create_user(NewUser {
        username: name.to_string(),
        password: Some(PASSWORD.to_string()),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        ..Default::default()
    })
    .await
    .expect("create user")
}

/// Creates an empty database next to the one `admin_url` names; returns its URL.
async fn fresh_postgres_db(admin_url: &str) -> String {
    use sqlx::Connection;
    let name = format!("sipreg_t_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::postgres::PgConnection::connect(admin_url)
        .await
        .expect("postgres");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create database");
    let (base, _) = admin_url
        .rsplit_once('/')
        .expect("database URL with a path");
    format!("{base}/{name}")
}
