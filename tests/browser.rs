//! A real browser client: JsSIP (tests/browser/, bundled with esbuild) in headless
//! Chromium registers over WSS with a Bearer token (`authorization_jwt`), subscribes to
//! presence and gets the NOTIFY; closing the browser removes the binding and ends the
//! subscription. The page is served by the test itself on loopback (so its Origin is the
//! one sipreg allows), and Chromium trusts the lab certificate by its SPKI hash only.
//!
//! Skipped (SKIPPED printed) without chromium or the bundle (`npm ci && npm run build`
//! in tests/browser), unless SIPREG_REQUIRE_TOOLS=1.

mod common;

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use common::ws::*;
use common::*;
use sha2::Digest;
use sipreg::clock::unix_now;
use sipreg::registrar::Aor;
use sipreg::transport::Transport;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// How long the browser may take for a step (a cold Chromium start is slow).
const STEP: Duration = Duration::from_secs(45);

fn browser_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// The bundle, or `None` (SKIPPED) when it was not built.
fn bundle() -> Option<PathBuf> {
    let b = browser_dir().join("dist/bundle.js");
    if b.is_file() {
        return Some(b);
    }
    assert!(
        std::env::var("SIPREG_REQUIRE_TOOLS").as_deref() != Ok("1"),
        "tests/browser/dist/bundle.js is required (SIPREG_REQUIRE_TOOLS=1): run npm ci && npm run build in tests/browser"
    );
    eprintln!(
        "SKIPPED: tests/browser/dist/bundle.js not built (npm ci && npm run build in tests/browser)"
    );
    None
}

/// What the page reported: (event, detail).
type Report = (String, String);

/// Serves the page and its bundle, and takes the page's reports, until dropped.
struct PageServer {
    origin: String,
    reports: mpsc::UnboundedReceiver<Report>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for PageServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn page_server(bundle: PathBuf) -> PageServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, reports) = mpsc::unbounded_channel();
    let html = std::fs::read(browser_dir().join("index.html")).unwrap();
    let js = std::fs::read(bundle).unwrap();
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let (tx, html, js) = (tx.clone(), html.clone(), js.clone());
            tokio::spawn(async move {
                let Some((target, body)) = read_request(&mut s).await else {
                    return;
                };
                let (status, kind, content) = if target == "/bundle.js" {
                    ("200 OK", "text/javascript", js)
                } else if let Some(q) = target.strip_prefix("/report?event=") {
                    let _ = tx.send((q.to_string(), body));
                    ("204 No Content", "text/plain", Vec::new())
                } else if target == "/" || target.starts_with("/?") {
                    ("200 OK", "text/html; charset=utf-8", html)
                } else {
                    ("404 Not Found", "text/plain", Vec::new())
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
                    content.len()
                );
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(&content).await;
                let _ = s.shutdown().await;
            });
        }
    });
    PageServer {
        origin: format!("http://{addr}"),
        reports,
        task,
    }
}

/// One HTTP/1.1 request: its target and body (enough for a browser's GET and POST).
async fn read_request(s: &mut tokio::net::TcpStream) -> Option<(String, String)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        if buf.len() > 65_536 {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let target = head.split(' ').nth(1)?.to_string();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < end + len {
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[end..(end + len).min(buf.len())]).to_string();
    Some((target, body))
}

/// Headless Chromium in its own process group, killed (all of it) when dropped.
struct Chromium {
    child: std::process::Child,
    _profile: tempfile::TempDir,
}

impl Chromium {
    fn open(url: &str, spki_sha256_b64: &str) -> Chromium {
        let profile = tempfile::tempdir().unwrap();
        let child = std::process::Command::new("chromium")
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(format!(
                "--ignore-certificate-errors-spki-list={spki_sha256_b64}"
            ))
            .arg(url)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start chromium");
        Chromium {
            child,
            _profile: profile,
        }
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        // The renderers and helpers exit with the browser process (they watch it); no
        // signal to a process group, which once took the test harness down with it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for the page's `event`; fails on a registration failure or after [`STEP`].
async fn expect(page: &mut PageServer, event: &str, seen: &mut Vec<Report>) -> String {
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let r = tokio::time::timeout_at(deadline, page.reports.recv())
            .await
            .unwrap_or_else(|_| panic!("no '{event}' from the page within {STEP:?}; saw {seen:?}"))
            .expect("page server running");
        seen.push(r.clone());
        if r.0 == event {
            return r.1;
        }
        assert!(
            r.0 != "registrationFailed" && r.0 != "error",
            "page reported {r:?}; saw {seen:?}"
        );
    }
}

/// sipreg with WSS for the test's page only, and the page server; `query` is what the
/// page is given besides the WSS address.
async fn browser_setup() -> Option<(PageServer, AppServer, LabCert)> {
    let bundle = bundle()?;
    if !tool("chromium") {
        return None;
    }
    let page = page_server(bundle).await;
    let cert = lab_cert();
    let dir = tempfile::tempdir().unwrap();
    let mut config = app_config(dir.path());
    config.websocket.wss_listen = Some("127.0.0.1:0".parse().unwrap());
    // Only the test's page may connect.
    config.websocket.origins = vec![page.origin.clone()];
    config.presence.notify_interval_ms = 20;
    let app = AppServer::start_with_tls(dir, config, Some(tls_accept(&cert))).await;
    Some((page, app, cert))
}

fn open_page(page: &PageServer, app: &AppServer, cert: &LabCert, query: &str) -> Chromium {
    let wss: SocketAddr = app.wss.unwrap();
    let spki =
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&cert.spki_der));
    let url = format!("{}/?wss=wss://{wss}&{query}", page.origin);
    Chromium::open(&url, &spki)
}

#[tokio::test]
async fn jssip_in_chromium_registers_over_wss_and_gets_presence() {
    let Some((mut page, app, cert)) = browser_setup().await else {
        return;
    };
    let alice = add_user(&app.users, "alice", &[]).await;
    let token = app
        .users
        .issue_token(&alice, None, None)
        .unwrap()
        .access_token;
    let browser = open_page(
        &page,
        &app,
        &cert,
        &format!(
            "uri=sip:alice@example.com&watch=sip:alice@example.com&ua=sipreg-browser-test%20JsSIP&token={token}"
        ),
    );
    let mut seen = Vec::new();

    let status = expect(&mut page, "registered", &mut seen).await;
    assert_eq!(status, "200");
    let aor = Aor::parse("sip:alice@example.com").unwrap();
    let bindings = app.registrar.table.get(&aor, unix_now());
    assert_eq!(bindings.len(), 1, "{bindings:?}");
    let b = &bindings[0];
    assert_eq!(b.source.transport, Transport::Wss);
    assert!(b.source.connection.is_some());
    assert!(
        b.uri.contains(".invalid") && b.uri.contains("transport=ws"),
        "{}",
        b.uri
    );
    assert_eq!(b.user_agent.as_deref(), Some("sipreg-browser-test JsSIP"));

    // Subscribed to her own presence: the NOTIFY shows her browser online.
    expect(&mut page, "subscribed", &mut seen).await;
    let body = expect(&mut page, "notify", &mut seen).await;
    assert!(body.contains("<basic>open</basic>"), "{body}");
    assert_eq!(app.presence.subscriptions.len(), 1);

    // Closing the browser closes the socket: the binding and the subscription go.
    drop(browser);
    let mut gone = false;
    for _ in 0..200 {
        if app.registrar.table.get(&aor, unix_now()).is_empty()
            && app.presence.subscriptions.is_empty()
        {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        gone,
        "binding and subscription removed when the browser closed"
    );
}

#[tokio::test]
async fn jssip_in_chromium_registers_with_digest_over_wss() {
    let Some((mut page, app, cert)) = browser_setup().await else {
        return;
    };
    add_user(&app.users, "bob", &[]).await;
    // JsSIP's own User-Agent ("JsSIP 3.13.8"): the shipped rule gives it the one MD5
    // challenge it can answer, first.
    let _browser = open_page(
        &page,
        &app,
        &cert,
        &format!("uri=sip:bob@example.com&password={PASSWORD}"),
    );
    let mut seen = Vec::new();
    let status = expect(&mut page, "registered", &mut seen).await;
    assert_eq!(status, "200");
    let aor = Aor::parse("sip:bob@example.com").unwrap();
    let bindings = app.registrar.table.get(&aor, unix_now());
    assert_eq!(bindings.len(), 1, "{bindings:?}");
    assert_eq!(bindings[0].source.transport, Transport::Wss);
    assert!(
        bindings[0]
            .user_agent
            .as_deref()
            .is_some_and(|u| u.starts_with("JsSIP ")),
        "{:?}",
        bindings[0].user_agent
    );
}
