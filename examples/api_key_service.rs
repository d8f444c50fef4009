//! API keys for service accounts: keys with different scopes and expiries, a key
//! exchanged for an access token, a rotation with a grace period, and a revoked key
//! refused. Exits non-zero on any surprise.

use std::process::ExitCode;
use std::time::Duration;

use sipreg::auth::AuthError;
use sipreg::config::Config;
use sipreg::users::{NewUser, UsersService};

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
    // A short grace period so the example can show its end.
    config.tokens.api_key_grace_secs = 1;
    let svc = UsersService::open(&config)
        .await
        .map_err(|e| e.to_string())?;

    // Service accounts have no password; they authenticate with API keys only.
    let presence = svc
        .create_user(NewUser {
            username: "presence-gateway".into(),
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?;
    let (reader, reader_key) = svc
        .create_api_key(
            &presence.id,
            "read-only",
            Some(vec!["presence.read".into()]),
            Some(30),
        )
        .await
        .map_err(|e| e.to_string())?;
    let (writer, writer_key) = svc
        .create_api_key(
            &presence.id,
            "publisher",
            Some(vec!["presence.read".into(), "presence.write".into()]),
            None,
        )
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "keys: {} ({}; expires {:?}), {} ({}; no expiry)",
        reader.name,
        reader.scopes.join(" "),
        reader.expires_at,
        writer.name,
        writer.scopes.join(" ")
    );
    println!(
        "a key looks like sipreg_{}_<64 hex chars>, shown once, stored hashed",
        reader.prefix
    );

    let c = svc.validate(&reader_key).await.map_err(|e| e.to_string())?;
    check(
        c.has_scope("presence.read") && !c.has_scope("presence.write"),
        "reader scopes",
    )?;
    let c = svc.validate(&writer_key).await.map_err(|e| e.to_string())?;
    check(c.has_scope("presence.write"), "writer scopes")?;
    println!("both keys accepted directly as Bearer credentials");
    let over = svc
        .create_api_key(&presence.id, "too-much", Some(vec!["admin".into()]), None)
        .await;
    println!(
        "asking for a scope the account lacks: {}",
        over.as_ref()
            .err()
            .map_or("ALLOWED".into(), |e| e.to_string())
    );
    check(over.is_err(), "no scope granted implicitly")?;

    let token = svc
        .exchange_api_key(&reader_key)
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "exchanged the reader key for a {} s access token (scope {:?})",
        token.expires_in, token.scope
    );
    let c = svc
        .validate(&token.access_token)
        .await
        .map_err(|e| e.to_string())?;
    check(
        c.scope == "presence.read" && c.username() == "presence-gateway",
        "exchanged token claims",
    )?;

    let (rotated, rotated_key) = svc
        .rotate_api_key(&writer.id)
        .await
        .map_err(|e| e.to_string())?;
    println!("rotated {} -> {}", writer.id, rotated.id);
    check(
        svc.validate(&writer_key).await.is_ok(),
        "old key valid during the grace period",
    )?;
    check(svc.validate(&rotated_key).await.is_ok(), "new key valid")?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let old = svc.validate(&writer_key).await;
    println!(
        "old key after the grace period: {}",
        old.as_ref()
            .err()
            .map_or("ACCEPTED".into(), |e| e.to_string())
    );
    check(
        old.as_ref().err() == Some(&AuthError::Expired),
        "old key expired after grace",
    )?;

    svc.revoke_api_key(&reader.id)
        .await
        .map_err(|e| e.to_string())?;
    let revoked = svc.validate(&reader_key).await;
    println!(
        "revoked key: {}",
        revoked
            .as_ref()
            .err()
            .map_or("ACCEPTED".into(), |e| e.to_string())
    );
    check(
        revoked.as_ref().err() == Some(&AuthError::Revoked),
        "revoked key refused",
    )?;
    check(
        svc.exchange_api_key(&reader_key).await.is_err(),
        "revoked key cannot be exchanged",
    )?;

    for k in svc
        .list_api_keys(Some(&presence.id))
        .await
        .map_err(|e| e.to_string())?
    {
        println!(
            "  {} {:<10} revoked={} expires={:?}",
            k.id,
            k.name,
            k.revoked_at.is_some(),
            k.expires_at
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => {
            println!("api_key_service: all as expected");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("api_key_service: {e}");
            ExitCode::FAILURE
        }
    }
}
