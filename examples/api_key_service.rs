//! API keys for service accounts, through the admin HTTP API over real sockets (an
//! in-process sipreg, store in a temporary folder): a passwordless service account,
//! keys with different scopes and expiries, a key used directly as a Bearer credential
//! and exchanged for an access token, a rotation with a grace period, and a revoked key
//! refused.
//!
//! Run: `cargo run --example api_key_service` (exits non-zero on any surprise).

use std::process::ExitCode;
use std::time::Duration;

use serde_json::{Value, json};
use sipreg::config::Config;
use sipreg::server::app::App;
use sipreg::users::NewUser;

type Res<T> = Result<T, String>;

fn check(ok: bool, what: &str) -> Res<()> {
    if ok {
        Ok(())
    } else {
        Err(format!("unexpected: {what}"))
    }
}

fn e(x: impl std::fmt::Display) -> String {
    x.to_string()
}

/// The admin API as an administrator.
struct Api {
    http: reqwest::Client,
    base: String,
    admin: String,
}

impl Api {
    async fn call(&self, req: reqwest::RequestBuilder) -> Res<(u16, Value)> {
        let r = req.send().await.map_err(e)?;
        let status = r.status().as_u16();
        let text = r.text().await.map_err(e)?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    async fn post(&self, path: &str, body: Value) -> Res<(u16, Value)> {
        self.call(
            self.http
                .post(format!("{}{path}", self.base))
                .bearer_auth(&self.admin)
                .json(&body),
        )
        .await
    }

    /// What introspection (RFC 7662) says of a credential.
    async fn introspect(&self, credential: &str) -> Res<Value> {
        let (_, v) = self
            .call(
                self.http
                    .post(format!("{}/oauth/introspect", self.base))
                    .bearer_auth(&self.admin)
                    .form(&[("token", credential)]),
            )
            .await?;
        Ok(v)
    }
}

async fn run() -> Res<()> {
    let dir = tempfile::tempdir().map_err(e)?;
    let mut config = Config::default();
    config.sip.listen = "127.0.0.1:0".parse().map_err(e)?;
    config.http.listen = "127.0.0.1:0".parse().map_err(e)?;
    config.database.url = format!("sqlite://{}/sipreg.db?mode=rwc", dir.path().display());
    config.tokens.key_dir = dir.path().join("keys");
    // A short grace period so the example can show its end.
    config.tokens.api_key_grace_secs = 1;
    let app = App::build(config).await?;
    let base = format!("http://{}", app.http_addr().ok_or("no HTTP address")?);
    // The first administrator comes from the CLI (`sipreg user add root --role admin`).
    let root = app
        .users
        .create_user(NewUser {
            username: "root".into(),
            password: Some("Example-Passw0rd-42".into()),
            roles: vec!["admin".into()],
            ..Default::default()
        })
        .await
        .map_err(e)?;
    let admin = app
        .users
        .issue_token(&root, None, None)
        .map_err(e)?
        .access_token;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(app.run(async {
        let _ = stop_rx.await;
    }));
    let api = Api {
        http: reqwest::Client::builder().no_proxy().build().map_err(e)?,
        base: base.clone(),
        admin,
    };

    // A service account has no password: it authenticates with API keys only.
    let (s, account) = api
        .post(
            "/users",
            json!({"username": "presence-gateway",
                   "scopes": ["presence.read", "presence.write"]}),
        )
        .await?;
    check(s == 201, &format!("account created: {s} {account}"))?;
    let id = account["id"].as_str().ok_or("no account id")?.to_string();
    let (s, reader) = api
        .post(
            &format!("/users/{id}/api-keys"),
            json!({"name": "read-only", "scopes": ["presence.read"], "expires_in_days": 30}),
        )
        .await?;
    check(s == 201, "reader key created")?;
    let (_, writer) = api
        .post(
            &format!("/users/{id}/api-keys"),
            json!({"name": "publisher", "scopes": ["presence.read", "presence.write"]}),
        )
        .await?;
    let reader_key = reader["key"].as_str().ok_or("no reader key")?.to_string();
    let writer_key = writer["key"].as_str().ok_or("no writer key")?.to_string();
    println!(
        "POST /users/{{id}}/api-keys: {} ({}, expires {}), {} (no expiry); shown once, stored hashed",
        reader["name"], reader["scopes"], reader["expires_at"], writer["name"]
    );

    let r = api.introspect(&reader_key).await?;
    check(
        r["active"] == true && r["scope"] == "presence.read",
        "reader key active with its one scope",
    )?;
    let w = api.introspect(&writer_key).await?;
    check(
        w["scope"] == "presence.read presence.write",
        "writer scopes",
    )?;
    println!(
        "both keys accepted as Bearer credentials (introspection: {})",
        r["token_type"]
    );
    let (s, over) = api
        .post(
            &format!("/users/{id}/api-keys"),
            json!({"name": "too-much", "scopes": ["admin"]}),
        )
        .await?;
    println!("asking for a scope the account lacks: {s} {over}");
    check(s == 403, "no scope granted implicitly")?;

    // A key exchanged for a short-lived access token.
    let (s, token) = api
        .call(
            api.http
                .post(format!("{base}/auth/token"))
                .json(&json!({"api_key": reader_key})),
        )
        .await?;
    check(s == 200, &format!("exchange: {s} {token}"))?;
    let t = api
        .introspect(token["access_token"].as_str().ok_or("no token")?)
        .await?;
    println!(
        "POST /auth/token: a {} s access token, scope {}",
        token["expires_in"], t["scope"]
    );
    check(
        t["scope"] == "presence.read" && t["username"] == "presence-gateway",
        "exchanged token claims",
    )?;

    // Rotation: the old key keeps working for the grace period only.
    let writer_id = writer["id"].as_str().ok_or("no key id")?;
    let (s, rotated) = api
        .post(&format!("/api-keys/{writer_id}/rotate"), json!({}))
        .await?;
    check(s == 201, "rotated")?;
    let rotated_key = rotated["key"].as_str().ok_or("no rotated key")?;
    println!("POST /api-keys/{writer_id}/rotate -> {}", rotated["id"]);
    check(
        api.introspect(&writer_key).await?["active"] == true,
        "old key valid during the grace period",
    )?;
    check(
        api.introspect(rotated_key).await?["active"] == true,
        "new key valid",
    )?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    check(
        api.introspect(&writer_key).await?["active"] == false,
        "old key expired after the grace period",
    )?;
    println!("after the grace period the old key is refused");

    // Revocation.
    let reader_id = reader["id"].as_str().ok_or("no key id")?;
    let (s, _) = api
        .call(
            api.http
                .delete(format!("{base}/api-keys/{reader_id}"))
                .bearer_auth(&api.admin),
        )
        .await?;
    check(s == 204, "revoked")?;
    check(
        api.introspect(&reader_key).await?["active"] == false,
        "revoked key refused",
    )?;
    let (s, _) = api
        .call(
            api.http
                .post(format!("{base}/auth/token"))
                .json(&json!({"api_key": reader_key})),
        )
        .await?;
    check(s == 401, "a revoked key cannot be exchanged")?;
    println!("DELETE /api-keys/{reader_id}: refused from then on");

    let (_, keys) = api
        .call(
            api.http
                .get(format!("{base}/users/{id}/api-keys"))
                .bearer_auth(&api.admin),
        )
        .await?;
    for k in keys.as_array().into_iter().flatten() {
        println!(
            "  {} {:<10} revoked={} expires={}",
            k["id"],
            k["name"],
            !k["revoked_at"].is_null(),
            k["expires_at"]
        );
    }
    let _ = stop_tx.send(());
    running.await.map_err(e)?.map_err(e)?;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => {
            println!("api_key_service: all as expected");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("api_key_service: {err}");
            ExitCode::FAILURE
        }
    }
}
