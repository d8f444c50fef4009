//! `sipreg bench --transport tls|ws|wss` (the real binary, `--json`) against a tiny
//! in-test responder: tokio-rustls with an rcgen certificate, tokio-tungstenite for the
//! WebSocket upgrade, a 200 to every REGISTER. Checks the JSON the bench prints and what
//! the responder saw (messages, sub-protocol, Origin, handshakes), never timings. Then the
//! generator in process against sipreg's own TLS and WSS listeners.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;
use sipreg::loadgen::plan::{Connect, Load, Plan, Proto, Scenario};
use sipreg::loadgen::users::generated;
use sipreg::sip::{Frame, Limits, frame_stream};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// What the responder saw.
#[derive(Default)]
struct Seen {
    connections: AtomicU64,
    registers: AtomicU64,
    /// Via transports of the REGISTERs (`TLS`, `WS`, ...).
    via: Mutex<Vec<String>>,
    /// The WebSocket upgrades' `Sec-WebSocket-Protocol` and `Origin`.
    upgrades: Mutex<Vec<(String, String)>>,
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Tls,
    Ws,
    Wss,
}

struct Responder {
    addr: SocketAddr,
    seen: Arc<Seen>,
    /// The certificate (PEM), for `--ca-file`.
    ca: PathBuf,
    _dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The 200 to a request: its Via, From, To, Call-ID and CSeq copied.
fn answer(req: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(req);
    let mut out = String::from("SIP/2.0 200 OK\r\n");
    for line in text.split("\r\n").skip(1).take_while(|l| !l.is_empty()) {
        let name = line
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if ["via", "from", "to", "call-id", "cseq", "contact"].contains(&name.as_str()) {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    out.into_bytes()
}

fn record(seen: &Seen, req: &[u8]) {
    if req.starts_with(b"REGISTER ") {
        seen.registers.fetch_add(1, Ordering::Relaxed);
    }
    let text = String::from_utf8_lossy(req);
    if let Some(v) = text
        .split("\r\n")
        .find_map(|l| l.strip_prefix("Via: SIP/2.0/"))
    {
        let t = v.split(' ').next().unwrap_or("").to_string();
        seen.via.lock().expect("lock").push(t);
    }
}

/// Content-Length framed SIP over a TLS stream (sipreg's own framing function).
async fn serve_framed<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, seen: Arc<Seen>) {
    let mut pending = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        pending.extend_from_slice(&buf[..n]);
        let mut used = 0;
        loop {
            match frame_stream(&pending[used..], &Limits::default()) {
                Frame::Message(len) => {
                    let req = &pending[used..used + len];
                    record(&seen, req);
                    if s.write_all(&answer(req)).await.is_err() {
                        return;
                    }
                    used += len;
                }
                Frame::Ping(len) | Frame::Skip(len) => used += len,
                Frame::Incomplete => break,
                Frame::Invalid(_) => return,
            }
        }
        pending.drain(..used);
        let _ = s.flush().await;
    }
}

/// One SIP message per WebSocket frame; the upgrade picks `sip` when offered.
// The upgrade callback's Result type is tungstenite's (an HTTP response as the error).
#[allow(clippy::result_large_err)]
async fn serve_ws<S: AsyncRead + AsyncWrite + Unpin>(s: S, seen: Arc<Seen>) {
    let saw = Arc::clone(&seen);
    let callback = move |req: &Request, mut resp: Response| {
        let h = |n: &str| {
            req.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        let protocol = h("sec-websocket-protocol");
        if protocol.split(',').any(|p| p.trim() == "sip") {
            resp.headers_mut()
                .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("sip"));
        }
        saw.upgrades
            .lock()
            .expect("lock")
            .push((protocol, h("origin")));
        Ok(resp)
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(s, callback).await else {
        return;
    };
    while let Some(Ok(msg)) = ws.next().await {
        let data = match msg {
            Message::Text(t) => t.as_bytes().to_vec(),
            Message::Binary(b) => b.to_vec(),
            Message::Close(_) => return,
            _ => continue,
        };
        record(&seen, &data);
        let reply = String::from_utf8_lossy(&answer(&data)).to_string();
        if ws.send(Message::text(reply)).await.is_err() {
            return;
        }
    }
}

impl Responder {
    async fn start(kind: Kind) -> Responder {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).expect("cert");
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = dir.path().join("cert.pem");
        std::fs::write(&ca, cert.cert.pem()).expect("write cert");
        let chain = vec![CertificateDer::from_pem_slice(cert.cert.pem().as_bytes()).expect("pem")];
        let key = PrivateKeyDer::from_pem_slice(cert.signing_key.serialize_pem().as_bytes())
            .expect("key");
        let config = ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server config");
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(Seen::default());
        let s = Arc::clone(&seen);
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                s.connections.fetch_add(1, Ordering::Relaxed);
                let (acceptor, seen) = (acceptor.clone(), Arc::clone(&s));
                tokio::spawn(async move {
                    match kind {
                        Kind::Ws => serve_ws(tcp, seen).await,
                        Kind::Tls | Kind::Wss => {
                            let Ok(tls) = acceptor.accept(tcp).await else {
                                return;
                            };
                            if kind == Kind::Tls {
                                serve_framed(tls, seen).await
                            } else {
                                serve_ws(tls, seen).await
                            }
                        }
                    }
                });
            }
        });
        Responder {
            addr,
            seen,
            ca,
            _dir: dir,
            task,
        }
    }
}

/// Runs `sipreg bench TARGET --json ARGS` to its end; returns the JSON line (and the
/// whole output when the run failed).
async fn bench(target: SocketAddr, args: &[&str]) -> Value {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sipreg"));
    cmd.arg("bench")
        .arg(target.to_string())
        .args(["--json", "--no-auth", "--warmup", "0", "--duration", "30"])
        .args(args);
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("run sipreg bench"))
        .await
        .expect("joins");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed: {stdout}\n{stderr}");
    let last = stdout.lines().last().unwrap_or("");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

fn upgrades(r: &Responder) -> Vec<(String, String)> {
    r.seen.upgrades.lock().expect("lock").clone()
}

fn vias(r: &Responder) -> Vec<String> {
    let mut v = r.seen.via.lock().expect("lock").clone();
    v.dedup();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_over_persistent_tls_connections_checked_against_the_ca() {
    let r = Responder::start(Kind::Tls).await;
    let ca = r.ca.to_string_lossy().to_string();
    let json = bench(
        r.addr,
        &[
            "--transport",
            "tls",
            "--ca-file",
            &ca,
            "--users",
            "20",
            "--requests",
            "60",
            "--sockets",
            "3",
            "--concurrency",
            "6",
        ],
    )
    .await;
    assert_eq!(json["transport"], "tls");
    assert_eq!(json["statuses"]["200"], 60);
    assert_eq!(json["sent"], 60);
    assert_eq!(json["timeouts"], 0);
    assert_eq!(json["sustained"], true);
    // Persistent: three connections, opened before the clock, none during the run.
    assert_eq!(json["connects"], 0);
    assert_eq!(r.seen.connections.load(Ordering::Relaxed), 3);
    assert_eq!(r.seen.registers.load(Ordering::Relaxed), 60);
    assert_eq!(vias(&r), ["TLS"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_connection_per_call_with_and_without_resumption() {
    let r = Responder::start(Kind::Tls).await;
    let args = [
        "--transport",
        "tls",
        "--tls-insecure",
        "--users",
        "10",
        "--requests",
        "20",
        "--concurrency",
        "2",
        "--connect-per-call",
    ];
    let full = bench(r.addr, &args).await;
    assert_eq!(full["statuses"]["200"], 20);
    assert_eq!(full["connects"], 20, "one connection per REGISTER");
    assert_eq!(full["tls_resumed"], 0, "no resumption without --tls-resume");
    assert_eq!(full["connect_errors"], 0);
    assert!(full["connects_per_s"].as_f64().is_some_and(|x| x > 0.0));
    assert_eq!(r.seen.connections.load(Ordering::Relaxed), 20);

    let resumed = bench(r.addr, &[&args[..], &["--tls-resume"]].concat()).await;
    assert_eq!(resumed["statuses"]["200"], 20);
    assert_eq!(resumed["connects"], 20);
    // The first handshake has no session to resume; later ones use the tickets
    // the responder (rustls) hands out.
    let n = resumed["tls_resumed"].as_u64().expect("a count");
    assert!((10..20).contains(&n), "resumed {n} of 20");
    assert_eq!(r.seen.connections.load(Ordering::Relaxed), 40);
    assert_eq!(r.seen.registers.load(Ordering::Relaxed), 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_over_websocket_offers_sip_and_the_origin() {
    let r = Responder::start(Kind::Ws).await;
    let json = bench(
        r.addr,
        &[
            "--transport",
            "ws",
            "--origin",
            "https://lab.example.com",
            "--users",
            "10",
            "--requests",
            "40",
            "--sockets",
            "2",
            "--concurrency",
            "4",
        ],
    )
    .await;
    assert_eq!(json["transport"], "ws");
    assert_eq!(json["statuses"]["200"], 40);
    assert_eq!(
        (json["timeouts"].as_u64(), json["unmatched"].as_u64()),
        (Some(0), Some(0))
    );
    let want = ("sip".to_string(), "https://lab.example.com".to_string());
    assert_eq!(upgrades(&r), [want.clone(), want]);
    assert_eq!(r.seen.registers.load(Ordering::Relaxed), 40);
    assert_eq!(vias(&r), ["WS"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wss_connection_per_call() {
    let r = Responder::start(Kind::Wss).await;
    let json = bench(
        r.addr,
        &[
            "--transport",
            "wss",
            "--tls-insecure",
            "--users",
            "6",
            "--requests",
            "12",
            "--concurrency",
            "3",
            "--connect-per-call",
        ],
    )
    .await;
    assert_eq!(json["transport"], "wss");
    assert_eq!(json["statuses"]["200"], 12);
    assert_eq!(json["connects"], 12);
    // No --origin: the upgrade carries none.
    assert_eq!(upgrades(&r), vec![("sip".to_string(), String::new()); 12]);
    assert_eq!(vias(&r), ["WSS"]);
}

#[test]
fn tls_without_a_way_to_check_the_certificate_is_a_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_sipreg"))
        .args(["bench", "127.0.0.1:5061", "--transport", "tls", "--no-auth"])
        .output()
        .expect("run sipreg bench");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--ca-file") && err.contains("--tls-insecure"),
        "{err}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_sipreg"))
        .args(["bench", "127.0.0.1:5060", "--connect-per-call", "--no-auth"])
        .output()
        .expect("run sipreg bench");
    assert_eq!(out.status.code(), Some(2), "UDP has no connections");
}

/// A run of `calls` REGISTERs for `users` over `proto` to `target`, the certificate
/// checked against `ca`.
fn plan(proto: Proto, target: SocketAddr, prefix: &str, ca: PathBuf, calls: u64) -> Plan {
    Plan {
        target,
        scenario: Scenario::Register,
        proto,
        users: Arc::from(generated(prefix, 5)),
        auth: false,
        load: Load::Concurrency(4),
        duration: Duration::from_secs(30),
        warmup: Duration::ZERO,
        max_calls: Some(calls),
        lanes: 2,
        t1: Duration::from_millis(500),
        t2: Duration::from_secs(4),
        timeout: Duration::from_secs(10),
        sla: Duration::from_secs(10),
        expires: 600,
        domain: "example.com".into(),
        progress: false,
        connect: Connect {
            ca_file: Some(ca),
            ..Connect::default()
        },
        workload: Default::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_against_sipregs_own_tls_and_wss_listeners() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let files = tempfile::tempdir().expect("tempdir");
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).expect("cert");
    let (cert_file, key_file) = (files.path().join("cert.pem"), files.path().join("key.pem"));
    std::fs::write(&cert_file, cert.cert.pem()).expect("write cert");
    std::fs::write(&key_file, cert.signing_key.serialize_pem()).expect("write key");
    let (c, k) = (cert_file.clone(), key_file.clone());
    let app = common::AppServer::start(move |config| {
        config.auth.required = false;
        config.tls.listen = "127.0.0.1:0".parse().expect("addr");
        config.tls.cert_file = c;
        config.tls.key_file = k;
        config.tls.reload_poll_secs = 0;
        config.websocket.wss_listen = Some("127.0.0.1:0".parse().expect("addr"));
    })
    .await;
    let sips = app.sips.expect("sipreg serves TLS with a certificate");
    let wss = app
        .wss
        .expect("sipreg serves WSS with the [tls] certificate");

    let r = sipreg::loadgen::run(plan(Proto::Tls, sips, "tls", cert_file.clone(), 20))
        .await
        .expect("the TLS run");
    assert_eq!(r.statuses.get(&200), Some(&20), "{:?}", r.statuses);
    let r = sipreg::loadgen::run(plan(Proto::Wss, wss, "wss", cert_file.clone(), 20))
        .await
        .expect("the WSS run");
    assert_eq!(r.statuses.get(&200), Some(&20), "{:?}", r.statuses);
    // A connection per REGISTER, offering earlier sessions: sipreg resumes them.
    let mut p = plan(Proto::Tls, sips, "tls", cert_file, 12);
    p.connect.per_call = true;
    p.connect.tls_resume = true;
    let r = sipreg::loadgen::run(p).await.expect("the per-call run");
    assert_eq!(r.statuses.get(&200), Some(&12), "{:?}", r.statuses);
    assert_eq!((r.connects, r.connect_errors), (12, 0));
    assert!(r.tls_resumed > 0, "no session resumed");
    // Five AORs over TLS, five over WSS. The WSS ones may already be gone: bindings
    // registered over a WebSocket end with their connection, which the run closed.
    let aors = app.registrar.table.aors();
    assert!((5..=10).contains(&aors), "{aors} AORs");
}
