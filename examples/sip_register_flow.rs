//! A phone's registration, over real UDP against an in-process sipreg (store in a
//! temporary folder):
//! 1. REGISTER without a token → 401 with the Bearer challenge (and Digest ones);
//! 2. log in over the admin HTTP API, REGISTER with the token → 200;
//! 3. a second device of the same user → 200 listing two contacts;
//! 4. an expired token → 401 with error="invalid_token";
//! 5. deregistration (Expires: 0) → 200 with no contacts.
//!
//! Run: `cargo run --example sip_register_flow` (exits non-zero on any surprise).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use sipreg::config::Config;
use sipreg::server::app::App;
use sipreg::users::NewUser;
use tokio::net::UdpSocket;

const PASSWORD: &str = "Example-Passw0rd-42";

fn register(call_id: &str, cseq: u32, contact: &str, auth: Option<&str>, expires: u32) -> String {
    let auth = auth
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    format!(
        "REGISTER sip:example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK{call_id}{cseq};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@example.com>;tag=ex{call_id}\r\n\
         To: <sip:alice@example.com>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} REGISTER\r\n\
         Contact: {contact}\r\n\
         Expires: {expires}\r\n\
         {auth}Content-Length: 0\r\n\r\n"
    )
}

async fn exchange(server: SocketAddr, msg: &str) -> Result<String, String> {
    let sock = UdpSocket::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    sock.send_to(msg.as_bytes(), server)
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 65_535];
    match tokio::time::timeout(Duration::from_secs(3), sock.recv_from(&mut buf)).await {
        Ok(Ok((n, _))) => Ok(String::from_utf8_lossy(&buf[..n]).into_owned()),
        _ => Err("no answer within 3 s".into()),
    }
}

fn status(resp: &str) -> &str {
    resp.lines().next().unwrap_or("")
}

fn contacts(resp: &str) -> usize {
    resp.lines().filter(|l| l.starts_with("Contact: ")).count()
}

fn check(ok: bool, what: &str, resp: &str) -> Result<(), String> {
    if ok {
        println!("ok: {what} ({})", status(resp));
        Ok(())
    } else {
        Err(format!("unexpected answer for '{what}':\n{resp}"))
    }
}

async fn run() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut config = Config::default();
    config.sip.listen = "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?;
    config.http.listen = "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?;
    config.database.url = format!("sqlite://{}/sipreg.db?mode=rwc", dir.path().display());
    config.tokens.key_dir = dir.path().join("keys");
    config.tokens.leeway_secs = 0;
    let app = App::build(config).await?;
    let (sip, http) = (app.sip_addr(), app.http_addr().ok_or("no HTTP address")?);
    println!("sipreg: SIP on {sip} (UDP), admin API on http://{http}");
    app.users
        .create_user(NewUser {
            username: "alice".into(),
            password: Some(PASSWORD.into()),
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?;
    let users = app.users.clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(app.run(async {
        let _ = stop_rx.await;
    }));

    let desk = "<sip:alice@127.0.0.1:5999>;+sip.instance=\"<urn:uuid:00000000-0000-0000-0000-0000000de5c0>\";reg-id=1";
    let mobile = "<sip:alice@127.0.0.1:6001>;+sip.instance=\"<urn:uuid:00000000-0000-0000-0000-000000000b11>\";reg-id=1";

    let r = exchange(sip, &register("flow1", 1, desk, None, 3600)).await?;
    check(
        r.starts_with("SIP/2.0 401")
            && r.contains("WWW-Authenticate: Bearer realm=")
            && r.contains("scope=\"sip.register\""),
        "REGISTER without a token is challenged",
        &r,
    )?;

    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())?;
    let login: serde_json::Value = client
        .post(format!("http://{http}/auth/login"))
        .json(&serde_json::json!({"username": "alice", "password": PASSWORD}))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let token = login["access_token"]
        .as_str()
        .ok_or("login gave no access_token")?
        .to_string();
    println!(
        "ok: logged in over HTTP, access token of {} octets",
        token.len()
    );

    let r = exchange(sip, &register("flow1", 2, desk, Some(&token), 3600)).await?;
    check(
        r.starts_with("SIP/2.0 200") && contacts(&r) == 1,
        "REGISTER with the token",
        &r,
    )?;

    let r = exchange(sip, &register("flow2", 1, mobile, Some(&token), 3600)).await?;
    check(
        r.starts_with("SIP/2.0 200") && contacts(&r) == 2,
        "a second device: two contacts listed",
        &r,
    )?;

    let user = users
        .get_user_by_name("alice")
        .await
        .map_err(|e| e.to_string())?;
    let short = users
        .issue_token(&user, None, Some(1))
        .map_err(|e| e.to_string())?;
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let r = exchange(
        sip,
        &register("flow1", 3, desk, Some(&short.access_token), 3600),
    )
    .await?;
    check(
        r.starts_with("SIP/2.0 401") && r.contains("error=\"invalid_token\""),
        "an expired token is refused",
        &r,
    )?;

    let r = exchange(sip, &register("flow1", 4, desk, Some(&token), 0)).await?;
    check(
        r.starts_with("SIP/2.0 200") && contacts(&r) == 1,
        "the desk phone deregisters",
        &r,
    )?;
    let r = exchange(sip, &register("flow2", 2, mobile, Some(&token), 0)).await?;
    check(
        r.starts_with("SIP/2.0 200") && contacts(&r) == 0,
        "the mobile deregisters: none left",
        &r,
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
            println!("registration flow behaved as expected");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
