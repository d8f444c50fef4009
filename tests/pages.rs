//! The device grant (RFC 8628) end to end: a "phone" asks for a device code over HTTP,
//! a person approves it on sipreg's verification page in a real browser (Debian's
//! chromium driven by playwright-core, `tests/pages/`), the phone's poll gets a token,
//! and the phone registers with it over SIP. Plus the page's CSRF and throttling rules
//! over plain HTTP.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::presence::{Peer, bearer, register};
use common::{AppServer, PASSWORD, add_user, status, tool};
use reqwest::StatusCode;
use serde_json::Value;

async fn start() -> AppServer {
    AppServer::start(|c| {
        c.oauth.device_poll_interval_secs = 1;
        c.oauth.device_max_attempts = 3;
    })
    .await
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// What the phone does first: POST /oauth/device_authorization as the default client.
async fn device_code(app: &AppServer) -> Value {
    let r = http()
        .post(format!("http://{}/oauth/device_authorization", app.http))
        .form(&[("scope", "sip.register presence.read")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

/// The phone's poll, once.
async fn poll(app: &AppServer, device_code: &str) -> (StatusCode, Value) {
    let r = http()
        .post(format!("http://{}/oauth/token", app.http))
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", device_code),
        ])
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap())
}

/// The browser driver, when chromium, node and the npm package are there.
fn browser_driver() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/pages");
    if !tool("chromium") || !tool("node") {
        return None;
    }
    if !dir.join("node_modules/playwright-core").is_dir() {
        assert!(
            std::env::var("SIPREG_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "tests/pages/node_modules is missing: run npm ci in tests/pages"
        );
        eprintln!("SKIPPED: tests/pages/node_modules is missing (npm ci in tests/pages)");
        return None;
    }
    Some(dir)
}

/// Runs the browser through the verification page; returns what it saw.
async fn person(dir: &std::path::Path, url: &str, code: &str, user: &str, action: &str) -> Value {
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(dir.join("device_flow.mjs"))
        .args([url, code, user, PASSWORD, action])
        .kill_on_drop(true);
    if let Ok(shots) = std::env::var("SIPREG_SCREENSHOTS_DIR") {
        cmd.env("SHOTS", shots);
    }
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("the browser finished in time")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|_| {
        panic!(
            "browser output: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[tokio::test]
async fn a_phone_without_a_keyboard_registers_after_its_user_approves_in_a_browser() {
    let Some(dir) = browser_driver() else { return };
    let app = start().await;
    add_user(&app.users, "alice", &[]).await;
    let d = device_code(&app).await;
    let code = d["user_code"].as_str().unwrap().to_string();
    let device_code = d["device_code"].as_str().unwrap().to_string();
    assert_eq!(d["interval"], 1);
    assert!(
        d["verification_uri_complete"]
            .as_str()
            .unwrap()
            .ends_with(&code)
    );
    // Before the person acts, the phone is told to wait.
    let (s, v) = poll(&app, &device_code).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("authorization_pending"))
    );
    // The person opens the page on the server they can reach (the issuer is only a
    // name in this test) and approves.
    let url = format!("http://{}/device", app.http);
    let seen = person(&dir, &url, &code, "alice", "approve").await;
    assert!(seen.get("error").is_none(), "{seen}");
    assert_eq!(seen["client"], "SIP phone");
    assert_eq!(seen["scopes"].as_array().unwrap().len(), 2, "{seen}");
    assert_eq!(seen["wrong_password"], "Wrong username or password.");
    assert_eq!(seen["steps"][2], "Device approved · sipreg");
    // The phone's next poll gets its tokens.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (s, tok) = poll(&app, &device_code).await;
    assert_eq!(s, StatusCode::OK, "{tok}");
    assert_eq!(tok["scope"], "sip.register presence.read");
    assert!(tok["refresh_token"].as_str().is_some());
    // The code is single-use.
    let (s, _) = poll(&app, &device_code).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // And the phone registers.
    let peer = Peer::new().await;
    let access = tok["access_token"].as_str().unwrap();
    peer.send(
        app.sip,
        &register(
            "alice",
            "dev1",
            1,
            &format!("<sip:alice@{}>", peer.addr),
            &bearer(access),
        ),
    )
    .await;
    let mut seen_msgs = Vec::new();
    assert_eq!(
        status(&peer.response(Duration::from_secs(5), &mut seen_msgs).await),
        200
    );
    let aor = sipreg::registrar::aor::Aor::parse("sip:alice@example.com").unwrap();
    assert_eq!(
        app.registrar
            .table
            .get(&aor, sipreg::clock::unix_now())
            .len(),
        1
    );
}

#[tokio::test]
async fn a_denied_device_gets_access_denied() {
    let Some(dir) = browser_driver() else { return };
    let app = start().await;
    add_user(&app.users, "bob", &[]).await;
    let d = device_code(&app).await;
    let url = format!("http://{}/device", app.http);
    let seen = person(&dir, &url, d["user_code"].as_str().unwrap(), "bob", "deny").await;
    assert_eq!(seen["steps"][2], "Request denied · sipreg", "{seen}");
    let (s, v) = poll(&app, d["device_code"].as_str().unwrap()).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("access_denied"))
    );
}

#[tokio::test]
async fn the_page_refuses_forged_forms_and_code_guessing() {
    let app = start().await;
    let d = device_code(&app).await;
    let code = d["user_code"].as_str().unwrap();
    let base = format!("http://{}", app.http);
    let c = http();
    // The page sets its CSRF cookie and security headers.
    let r = c.get(format!("{base}/device")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    assert_eq!(r.headers()["cache-control"], "no-store");
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let token = cookie
        .split(';')
        .next()
        .and_then(|kv| kv.split_once('='))
        .map(|(_, v)| v.to_string())
        .unwrap();
    // A form posted from elsewhere (no cookie, or a token that does not match) is refused.
    let r = c
        .post(format!("{base}/device"))
        .form(&[("user_code", code), ("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = c
        .post(format!("{base}/device/decide"))
        .header("cookie", format!("sipreg_csrf={token}"))
        .form(&[
            ("user_code", code),
            ("csrf", "0123456789abcdef0123456789abcdef"),
            ("action", "deny"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // With the cookie, the right code shows the decision page.
    let with_cookie = |path: &str, form: Vec<(&'static str, String)>| {
        c.post(format!("{base}{path}"))
            .header("cookie", format!("sipreg_csrf={token}"))
            .form(&form)
    };
    let r = with_cookie(
        "/device",
        vec![("user_code", code.to_string()), ("csrf", token.clone())],
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("Approve this device?"));
    // Guessing: three wrong codes, then even the right one waits.
    for guess in ["BCDF-GHJK", "BCDF-GHJL", "BCDF-GHJM"] {
        let r = with_cookie(
            "/device",
            vec![("user_code", guess.to_string()), ("csrf", token.clone())],
        )
        .send()
        .await
        .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{guess}");
    }
    let r = with_cookie(
        "/device",
        vec![("user_code", code.to_string()), ("csrf", token.clone())],
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    // The device's request is untouched by all this.
    let (s, v) = poll(&app, d["device_code"].as_str().unwrap()).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("authorization_pending"))
    );
}
