//! The whole of sipreg through its real interfaces, against an in-process server on
//! loopback: configuration, the users store, token login over HTTP, REGISTER with a
//! Bearer token, SUBSCRIBE and NOTIFY, PUBLISH, the composed document on the admin API,
//! and the error cases (wrong password, missing Authorization, insufficient scope).
//!
//! Run: `cargo run --example full_integration` (exits non-zero on any surprise).

mod support;

use std::process::ExitCode;
use std::time::Duration;

use sipreg::config::Config;
use sipreg::server::app::App;
use sipreg::sip::headers::HeaderName;
use sipreg::users::NewUser;
use support::*;

const PASSWORD: &str = "Example-Passw0rd-42";
const AOR: &str = "sip:alice@example.com";
const WAIT: Duration = Duration::from_secs(5);

async fn login(
    client: &reqwest::Client,
    http: std::net::SocketAddr,
    user: &str,
    password: &str,
) -> Res<(u16, serde_json::Value)> {
    let r = client
        .post(format!("http://{http}/auth/login"))
        .json(&serde_json::json!({"username": user, "password": password}))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = r.status().as_u16();
    let v = r.json().await.unwrap_or(serde_json::Value::Null);
    Ok((status, v))
}

fn token_of(v: &serde_json::Value) -> Res<String> {
    v["access_token"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("login gave no access_token: {v}"))
}

async fn run() -> Result<(), String> {
    // Configuration: a TOML document as an operator would write it.
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let toml = format!(
        "[sip]\nlisten = \"127.0.0.1:0\"\ndomains = [\"example.com\"]\n\
         [http]\nlisten = \"127.0.0.1:0\"\n\
         [database]\nurl = \"sqlite://{}/sipreg.db?mode=rwc\"\n\
         [tokens]\nkey_dir = \"{}\"\n\
         [users]\nargon2_memory_kib = 64\nargon2_iterations = 1\n\
         [presence]\nnotify_interval_ms = 100\npolicy = \"same-domain\"\n",
        dir.path().display(),
        dir.path().join("keys").display()
    );
    let config = Config::from_toml(&toml).map_err(|e| e.to_string())?;
    println!("ok: configuration parsed (domain example.com, same-domain presence policy)");
    let app = App::build(config).await?;
    let (sip, http) = (app.sip_addr(), app.http_addr().ok_or("no HTTP address")?);
    println!("sipreg: SIP on {sip}, admin API on http://{http}");

    // The users store.
    for (name, roles) in [
        ("alice", vec![]),
        ("bob", vec![]),
        ("root", vec!["admin".to_string()]),
    ] {
        app.users
            .create_user(NewUser {
                username: name.into(),
                password: Some(PASSWORD.into()),
                roles,
                ..Default::default()
            })
            .await
            .map_err(|e| e.to_string())?;
    }
    println!("ok: users alice, bob and root (admin) created");
    let users = app.users.clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(app.run(async {
        let _ = stop_rx.await;
    }));

    // Token login over HTTP, and a wrong password.
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())?;
    let (st, _) = login(&client, http, "alice", "not-the-password").await?;
    if st != 401 {
        return Err(format!("a wrong password got HTTP {st}, expected 401"));
    }
    println!("ok: wrong password refused (HTTP 401)");
    let (_, v) = login(&client, http, "alice", PASSWORD).await?;
    let alice_token = token_of(&v)?;
    let (_, v) = login(&client, http, "bob", PASSWORD).await?;
    let bob_token = token_of(&v)?;
    let (_, v) = login(&client, http, "root", PASSWORD).await?;
    let root_token = token_of(&v)?;
    println!("ok: alice, bob and root logged in over HTTP");

    // REGISTER: without Authorization, then with the Bearer token.
    let mut phone = Ua::udp("alice", "", sip).await?;
    let contact = phone.contact();
    let reg = phone.request(
        "REGISTER",
        "sip:example.com",
        "reg-1",
        &format!("<{AOR}>"),
        &format!("Contact: {contact}\r\nExpires: 600\r\n"),
        "",
    );
    let m = phone.send(&reg).await?;
    check(
        status(&m) == 401 && header(&m, HeaderName::WwwAuthenticate).starts_with("Bearer "),
        "REGISTER without Authorization is challenged",
        &m,
    )?;
    phone.token = alice_token.clone();
    let reg = phone.request(
        "REGISTER",
        "sip:example.com",
        "reg-1",
        &format!("<{AOR}>"),
        &format!("Contact: {contact}\r\nExpires: 600\r\n"),
        "",
    );
    let m = phone.send(&reg).await?;
    check(status(&m) == 200, "REGISTER with the Bearer token", &m)?;

    // SUBSCRIBE: insufficient scope, then bob's subscription and the first NOTIFY.
    let bob_user = users
        .get_user_by_name("bob")
        .await
        .map_err(|e| e.to_string())?;
    let narrow = users
        .issue_token(&bob_user, Some(&["sip.register".to_string()]), None)
        .map_err(|e| e.to_string())?
        .access_token;
    let mut watcher = Ua::udp("bob", &narrow, sip).await?;
    let sub_headers = format!(
        "Event: presence\r\nAccept: application/pidf+xml\r\nExpires: 600\r\nContact: {}\r\n",
        watcher.contact()
    );
    let sub = watcher.request(
        "SUBSCRIBE",
        AOR,
        "sub-1",
        &format!("<{AOR}>"),
        &sub_headers,
        "",
    );
    let m = watcher.send(&sub).await?;
    check(
        status(&m) == 403 && header(&m, HeaderName::WwwAuthenticate).contains("insufficient_scope"),
        "SUBSCRIBE with a token lacking presence.read",
        &m,
    )?;
    watcher.token = bob_token.clone();
    let sub = watcher.request(
        "SUBSCRIBE",
        AOR,
        "sub-2",
        &format!("<{AOR}>"),
        &sub_headers,
        "",
    );
    let ok = watcher.send(&sub).await?;
    check(status(&ok) == 200, "bob subscribes to alice", &ok)?;
    let n = watcher
        .notify_until(WAIT, false, |n| body(n).contains("<basic>open</basic>"))
        .await?;
    check(
        header(&n, HeaderName::SubscriptionState).starts_with("active"),
        "the first NOTIFY shows alice's registered phone online",
        &n,
    )?;

    // PUBLISH: the phone says on-the-phone; bob is told.
    let doc = pidf(
        AOR,
        "phone",
        "urn:uuid:00000000-0000-1000-8000-000000000001",
        "on-the-phone",
        "in a call",
    );
    let publ = phone.request(
        "PUBLISH",
        AOR,
        "pub-1",
        &format!("<{AOR}>"),
        "Event: presence\r\nContent-Type: application/pidf+xml\r\nExpires: 600\r\n",
        &doc,
    );
    let m = phone.send(&publ).await?;
    check(
        status(&m) == 200 && !header(&m, HeaderName::SipETag).is_empty(),
        "PUBLISH on-the-phone, answered with a SIP-ETag",
        &m,
    )?;
    let n = watcher
        .notify_until(WAIT, false, |n| body(n).contains("rpid:on-the-phone"))
        .await?;
    check(
        body(&n).contains("in a call"),
        "bob's NOTIFY carries on-the-phone and the note",
        &n,
    )?;

    // PUBLISH without Authorization: challenged.
    let mut stranger = Ua::udp("alice", "", sip).await?;
    let publ = stranger.request(
        "PUBLISH",
        AOR,
        "pub-2",
        &format!("<{AOR}>"),
        "Event: presence\r\nContent-Type: application/pidf+xml\r\n",
        &doc,
    );
    let m = stranger.send(&publ).await?;
    check(
        status(&m) == 401,
        "PUBLISH without Authorization is challenged",
        &m,
    )?;

    // The admin API's view of the same document.
    let v: serde_json::Value = client
        .get(format!("http://{http}/presence/{AOR}"))
        .bearer_auth(&root_token)
        .header("Accept", "application/json")
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    if v["activities"] != serde_json::json!(["on-the-phone"]) || v["note"] != "in a call" {
        return Err(format!("GET /presence/{AOR} gave {v}"));
    }
    println!("ok: GET /presence/{AOR} (admin) shows on-the-phone, \"in a call\"");

    // Unsubscribe: 200 and a final NOTIFY.
    let unsub = watcher.request(
        "SUBSCRIBE",
        AOR,
        "sub-2",
        &format!("<{AOR}>;tag={}", to_tag(&ok)),
        &sub_headers.replace("Expires: 600", "Expires: 0"),
        "",
    );
    let m = watcher.send(&unsub).await?;
    check(status(&m) == 200, "bob unsubscribes", &m)?;
    // A NOTIFY of the active subscription may still be on its way before the final one.
    let n = watcher
        .notify_until(WAIT, false, |n| {
            header(n, HeaderName::SubscriptionState).starts_with("terminated")
        })
        .await?;
    check(
        header(&n, HeaderName::SubscriptionState) == "terminated;reason=timeout",
        "the final NOTIFY says terminated;reason=timeout",
        &n,
    )?;

    let _ = stop_tx.send(());
    running
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => {
            println!("full integration behaved as expected");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
