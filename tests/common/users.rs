//! Shared test setup: a users service over SQLite in a temporary folder, with cheap
//! Argon2 parameters (one test elsewhere exercises the defaults). With
//! `SIPREG_TEST_POSTGRES_URL` set, the store is a fresh PostgreSQL database instead
//! (`tests/testdb`).
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
    config.database.url = super::testdb::url(dir);
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
