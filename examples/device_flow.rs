//! A desk phone without a keyboard gets its token with the device grant (RFC 8628) and
//! registers with it, against an in-process sipreg over real sockets (store in a
//! temporary folder):
//! 1. REGISTER without credentials → 401 whose Bearer challenge names the authorization
//!    server (`authz_server`, RFC 8898);
//! 2. the phone reads the server's metadata (RFC 8414) and asks the device endpoint for
//!    a code, which it would show on its display;
//! 3. it polls the token endpoint: `authorization_pending`;
//! 4. meanwhile a person opens the verification page, types the code and approves with
//!    their password (the HTML forms, with their CSRF cookie, posted as a browser would);
//! 5. the phone's next poll gets its tokens, and its REGISTER with the token → 200.
//!
//! Run: `cargo run --example device_flow` (exits non-zero on any surprise).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::Value;
use sipreg::config::Config;
use sipreg::server::app::App;
use sipreg::users::NewUser;
use tokio::net::UdpSocket;

const PASSWORD: &str = "Example-Passw0rd-42";

type Res<T> = Result<T, String>;

fn register(cseq: u32, auth: &str) -> String {
    format!(
        "REGISTER sip:example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5997;branch=z9hG4bKdev{cseq};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@example.com>;tag=dev\r\n\
         To: <sip:alice@example.com>\r\n\
         Call-ID: device-flow\r\n\
         CSeq: {cseq} REGISTER\r\n\
         Contact: <sip:alice@127.0.0.1:5997>\r\n\
         User-Agent: ExampleDeskPhone/1.0\r\n\
         {auth}Content-Length: 0\r\n\r\n"
    )
}

async fn exchange(server: SocketAddr, msg: &str) -> Res<String> {
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

/// The quoted value of `name=` in a challenge line.
fn param<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    line.split(&format!("{name}=\"")).nth(1)?.split('"').next()
}

async fn json(req: reqwest::RequestBuilder) -> Res<(u16, Value)> {
    let r = req.send().await.map_err(|e| e.to_string())?;
    let status = r.status().as_u16();
    let v = r.json().await.map_err(|e| e.to_string())?;
    Ok((status, v))
}

/// What a person does in a browser: open the page (which sets the CSRF cookie), submit
/// the code, then the approval form with their password.
async fn person_approves(http: &reqwest::Client, page: &str, code: &str) -> Res<()> {
    let r = http.get(page).send().await.map_err(|e| e.to_string())?;
    let cookie = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|c| c.split(';').next())
        .ok_or("the page set no CSRF cookie")?
        .to_string();
    let csrf = cookie
        .split_once('=')
        .map(|(_, v)| v.to_string())
        .unwrap_or_default();
    let r = http
        .post(page)
        .header("cookie", &cookie)
        .form(&[("user_code", code), ("csrf", &csrf)])
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let html = r.text().await.map_err(|e| e.to_string())?;
    if !html.contains("Approve this device?") {
        return Err(format!("the page did not show the request:\n{html}"));
    }
    println!("ok: the page shows the request for code {code}");
    let r = http
        .post(format!("{page}/decide"))
        .header("cookie", &cookie)
        .form(&[
            ("user_code", code),
            ("csrf", &csrf),
            ("username", "alice"),
            ("password", PASSWORD),
            ("action", "approve"),
        ])
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let html = r.text().await.map_err(|e| e.to_string())?;
    if !html.contains("Device approved") {
        return Err(format!("approval failed:\n{html}"));
    }
    println!("ok: the person approved");
    Ok(())
}

async fn run() -> Res<()> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut config = Config::default();
    config.sip.listen = "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?;
    config.http.listen = "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?;
    config.database.url = format!("sqlite://{}/sipreg.db?mode=rwc", dir.path().display());
    config.tokens.key_dir = dir.path().join("keys");
    config.oauth.device_poll_interval_secs = 1;
    let app = App::build(config).await?;
    let (sip, http_addr) = (app.sip_addr(), app.http_addr().ok_or("no HTTP address")?);
    let base = format!("http://{http_addr}");
    println!("sipreg: SIP on {sip} (UDP), HTTP on {base}");
    app.users
        .create_user(NewUser {
            username: "alice".into(),
            password: Some(PASSWORD.into()),
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(app.run(async {
        let _ = stop_rx.await;
    }));
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())?;

    // 1. The 401 names the authorization server.
    let r = exchange(sip, &register(1, "")).await?;
    let bearer = r
        .lines()
        .find(|l| l.starts_with("WWW-Authenticate: Bearer"))
        .ok_or_else(|| format!("no Bearer challenge:\n{r}"))?;
    let issuer = param(bearer, "authz_server").ok_or("no authz_server")?;
    println!("ok: 401, authz_server={issuer}");

    // 2. Discovery. The issuer (https://sipreg.local by default) is only a name here:
    // the phone reaches it at the HTTP address, and uses the paths the metadata gives.
    let (_, meta) =
        json(http.get(format!("{base}/.well-known/oauth-authorization-server"))).await?;
    let path_of = |key: &str| -> Res<String> {
        let url = meta[key]
            .as_str()
            .ok_or(format!("metadata without {key}"))?;
        Ok(url
            .trim_start_matches(issuer.trim_end_matches('/'))
            .to_string())
    };
    let (device_ep, token_ep) = (
        path_of("device_authorization_endpoint")?,
        path_of("token_endpoint")?,
    );
    let (s, d) = json(
        http.post(format!("{base}{device_ep}"))
            .form(&[("scope", "sip.register")]),
    )
    .await?;
    if s != 200 {
        return Err(format!("device endpoint: {s} {d}"));
    }
    let code = d["user_code"].as_str().ok_or("no user_code")?.to_string();
    let device_code = d["device_code"]
        .as_str()
        .ok_or("no device_code")?
        .to_string();
    println!(
        "ok: the phone shows \"Go to {} and enter {code}\"",
        d["verification_uri"]
    );

    // 3. Polling before the person acts.
    let poll = || {
        http.post(format!("{base}{token_ep}")).form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", device_code.as_str()),
        ])
    };
    let (s, v) = json(poll()).await?;
    if s != 400 || v["error"] != "authorization_pending" {
        return Err(format!("expected authorization_pending, got {s} {v}"));
    }
    println!("ok: authorization_pending");

    // 4. The person.
    person_approves(&http, &format!("{base}/device"), &code).await?;

    // 5. The phone's next poll, after the interval, then its REGISTER.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (s, tok) = json(poll()).await?;
    let access = tok["access_token"]
        .as_str()
        .ok_or_else(|| format!("no token: {s} {tok}"))?;
    println!("ok: tokens issued (scope {})", tok["scope"]);
    let r = exchange(
        sip,
        &register(2, &format!("Authorization: Bearer {access}\r\n")),
    )
    .await?;
    if !r.starts_with("SIP/2.0 200") {
        return Err(format!("REGISTER with the token:\n{r}"));
    }
    println!("ok: REGISTER with the token → 200");

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
            println!("device flow behaved as expected");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
