//! Users store walkthrough against a temporary SQLite store: a policy rejection, a
//! user, login, refresh rotation (the old refresh token is refused), a password
//! change (refresh tokens revoked), and the user list. Exits non-zero on any surprise.

use std::process::ExitCode;

use sipreg::config::Config;
use sipreg::users::{NewUser, UserQuery, UsersError, UsersService};

fn check(ok: bool, what: &str) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(format!("unexpected: {what}"))
    }
}

async fn run() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut config = Config::default();
    config.database.url = format!("sqlite://{}/sipreg.db?mode=rwc", dir.path().display());
    config.tokens.key_dir = dir.path().join("keys");
    let svc = UsersService::open(&config)
        .await
        .map_err(|e| e.to_string())?;
    println!("store opened in {}", dir.path().display());

    let weak = NewUser {
        username: "alice".into(),
        password: Some("alice2024".into()),
        ..Default::default()
    };
    match svc.create_user(weak).await {
        Err(UsersError::WeakPassword(rules)) => {
            println!("weak password rejected:");
            for r in &rules {
                println!("  - {r}");
            }
            check(rules.len() >= 2, "several rules broken")?;
        }
        other => return Err(format!("weak password was not rejected: {other:?}")),
    }

    let password = "Tangerine-Kite-81";
    let alice = svc
        .create_user(NewUser {
            username: "alice".into(),
            password: Some(password.into()),
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "created alice ({}), scopes: {}",
        alice.id,
        alice.scopes.join(" ")
    );
    svc.create_user(NewUser {
        username: "bob".into(),
        password: Some("Harbour-Lights-62".into()),
        ..Default::default()
    })
    .await
    .map_err(|e| e.to_string())?;

    let pair = svc
        .login("alice", password, None)
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "login: access token ({} s), refresh token issued",
        pair.access.expires_in
    );
    let claims = svc
        .validate(&pair.access.access_token)
        .await
        .map_err(|e| e.to_string())?;
    check(
        claims.username() == "alice" && claims.has_scope("sip.register"),
        "claims of alice",
    )?;

    let rotated = svc
        .refresh(&pair.refresh_token)
        .await
        .map_err(|e| e.to_string())?;
    println!("refresh: got a new refresh token");
    let reuse = svc.refresh(&pair.refresh_token).await;
    println!(
        "old refresh token again: {}",
        reuse
            .as_ref()
            .err()
            .map_or("accepted!".into(), |e| e.to_string())
    );
    check(
        matches!(reuse, Err(UsersError::BadRefreshToken)),
        "rotated refresh token refused",
    )?;

    let fresh = svc
        .login("alice", password, None)
        .await
        .map_err(|e| e.to_string())?;
    svc.set_password(&alice.id, "Second-Orchard-37")
        .await
        .map_err(|e| e.to_string())?;
    println!("password changed");
    let after = svc.refresh(&fresh.refresh_token).await;
    println!(
        "refresh token from before the change: {}",
        after
            .as_ref()
            .err()
            .map_or("accepted!".into(), |e| e.to_string())
    );
    check(
        after.is_err(),
        "refresh tokens revoked by the password change",
    )?;
    check(
        svc.login("alice", password, None).await.is_err(),
        "old password refused",
    )?;
    drop(rotated);

    let users = svc
        .list_users(&UserQuery::default())
        .await
        .map_err(|e| e.to_string())?;
    println!("users:");
    for u in &users {
        println!("  {}  {}  active={}", u.id, u.username, u.active);
    }
    check(users.len() == 2, "two users listed")
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => {
            println!("basic_usage: all as expected");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("basic_usage: {e}");
            ExitCode::FAILURE
        }
    }
}
