//! Shared test helpers: an in-process server on loopback and small SIP clients.
#![allow(dead_code)]

pub mod clients;
pub mod presence;
#[path = "../testdb/mod.rs"]
pub mod testdb;
mod users;
pub mod ws;
#[allow(unused_imports)]
pub use users::*;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sipreg::config::Config;
use sipreg::server::{Core, Handler, NoServices, Server};
use sipreg::sip::{Frame, Limits, Message, frame_stream, parse_datagram};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::oneshot;

/// A running server; dropping it stops it.
pub struct TestServer {
    pub addr: SocketAddr,
    pub core: Arc<Core>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::with(Config::default(), Arc::new(NoServices)).await
    }

    pub async fn with(mut config: Config, handler: Arc<dyn Handler>) -> TestServer {
        config.sip.listen = "127.0.0.1:0".parse().unwrap();
        Self::at(config, handler).await
    }

    /// Starts on `config.sip.listen` as given.
    pub async fn at(config: Config, handler: Arc<dyn Handler>) -> TestServer {
        let server = Server::bind(config, handler).await.expect("bind");
        let addr = server.local_addr();
        let core = server.core();
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(server.run(async {
            let _ = rx.await;
        }));
        TestServer {
            addr,
            core,
            stop: Some(tx),
            task: Some(task),
        }
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.expect("join").expect("run");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// Sends one datagram from a fresh loopback socket; returns the replies seen within `wait`.
pub async fn udp_exchange(addr: SocketAddr, data: &[u8], wait: Duration) -> Vec<Bytes> {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.send_to(data, addr).await.unwrap();
    udp_collect(&sock, wait).await
}

/// How long to keep listening after an answer for anything more.
pub const QUIET: Duration = Duration::from_millis(150);

/// Waits up to `wait` for a first datagram, then collects more until [`QUIET`] passes.
pub async fn udp_collect(sock: &UdpSocket, wait: Duration) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65_535];
    let mut limit = wait;
    while let Ok(Ok((n, _))) = tokio::time::timeout(limit, sock.recv_from(&mut buf)).await {
        out.push(Bytes::copy_from_slice(&buf[..n]));
        limit = QUIET;
    }
    out
}

/// What a TCP exchange saw.
#[derive(Debug)]
pub struct TcpResult {
    pub messages: Vec<Bytes>,
    /// The server closed the connection.
    pub closed: bool,
}

/// Writes `data` on a new connection; waits up to `wait` for data, then reads framed
/// messages until [`QUIET`] passes idle or the server closes.
pub async fn tcp_exchange(addr: SocketAddr, data: &[u8], wait: Duration) -> TcpResult {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(data).await.unwrap();
    tcp_read(&mut s, wait).await
}

pub async fn tcp_read(s: &mut TcpStream, wait: Duration) -> TcpResult {
    let mut buf = Vec::new();
    let mut messages = Vec::new();
    let mut closed = false;
    let mut chunk = vec![0u8; 65_536];
    let mut limit = wait;
    loop {
        match tokio::time::timeout(limit, s.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(n)) => {
                buf.extend_from_slice(&chunk[..n]);
                limit = QUIET;
            }
            Err(_) => break,
        }
        loop {
            match frame_stream(&buf, &Limits::default()) {
                Frame::Message(n) => {
                    messages.push(Bytes::copy_from_slice(&buf[..n]));
                    buf.drain(..n);
                }
                Frame::Ping(n) | Frame::Skip(n) => {
                    messages.push(Bytes::copy_from_slice(&buf[..n]));
                    buf.drain(..n);
                }
                _ => break,
            }
        }
    }
    if !buf.is_empty() {
        // Left-over octets (such as a CRLF keep-alive pong) are reported as they are.
        messages.push(Bytes::from(buf));
    }
    TcpResult { messages, closed }
}

pub fn parse(b: &Bytes) -> Message {
    parse_datagram(b.clone(), &Limits::default()).expect("server sent an unparseable message")
}

pub fn status(m: &Message) -> u16 {
    m.first_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line")
}

/// The RFC 4475 folder from SIPREG_RFC4475_DIR: `None` (test skipped) when unset; a
/// panic when set to a folder that does not exist.
pub fn rfc4475_dir() -> Option<PathBuf> {
    let Some(dir) = std::env::var_os("SIPREG_RFC4475_DIR") else {
        eprintln!("SKIPPED: SIPREG_RFC4475_DIR is not set; RFC 4475 torture tests not run");
        return None;
    };
    let dir = PathBuf::from(dir);
    assert!(
        dir.join("wsinv.dat").is_file(),
        "SIPREG_RFC4475_DIR={} does not hold the RFC 4475 messages",
        dir.display()
    );
    Some(dir)
}

/// A minimal well-formed request.
pub fn request(method: &str, branch: &str, extra: &str) -> String {
    format!(
        "{method} sip:alice@example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK{branch}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@example.com>;tag=f{branch}\r\n\
         To: <sip:alice@example.com>\r\n\
         Call-ID: {branch}@test\r\n\
         CSeq: 1 {method}\r\n\
         {extra}Content-Length: 0\r\n\r\n"
    )
}

/// The whole sipreg (users store, registrar, SIP, HTTP) on loopback with a store in a
/// temporary folder.
pub struct AppServer {
    pub sip: SocketAddr,
    /// SIP over TLS, when the configuration has a certificate.
    pub sips: Option<SocketAddr>,
    pub http: SocketAddr,
    /// The public HTTPS listener, when `[http] public_listen` is set.
    pub public: Option<SocketAddr>,
    pub registrar: Arc<sipreg::registrar::Registrar>,
    pub users: Arc<sipreg::users::UsersService>,
    pub presence: Arc<sipreg::presence::PresenceService>,
    /// SIP over WebSocket listeners, when configured.
    pub ws: Option<SocketAddr>,
    pub wss: Option<SocketAddr>,
    pub dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// A configuration for tests: loopback ports chosen by the kernel, store and keys in `dir`,
/// cheap Argon2.
pub fn app_config(dir: &std::path::Path) -> Config {
    let mut c = users::config_in(dir);
    c.sip.listen = "127.0.0.1:0".parse().unwrap();
    c.http.listen = "127.0.0.1:0".parse().unwrap();
    c
}

impl AppServer {
    pub async fn start(tweak: impl FnOnce(&mut Config)) -> AppServer {
        let dir = tempfile::tempdir().unwrap();
        let mut config = app_config(dir.path());
        tweak(&mut config);
        Self::start_in(dir, config).await
    }

    /// Starts on an existing folder (a restart keeps the store).
    pub async fn start_in(dir: tempfile::TempDir, config: Config) -> AppServer {
        Self::start_with_tls(dir, config, None).await
    }

    /// Starts with the TLS side of WSS (`[websocket] wss_listen` set in `config`).
    pub async fn start_with_tls(
        dir: tempfile::TempDir,
        config: Config,
        tls: Option<sipreg::transport::ws::TlsAccept>,
    ) -> AppServer {
        let mut app = sipreg::server::app::App::build(config)
            .await
            .expect("build app");
        if let Some(tls) = tls {
            app.sip.set_wss_tls(tls);
        }
        let (ws, wss) = (app.ws_addr(), app.wss_addr());
        let sip = app.sip_addr();
        let sips = app.sips_addr();
        let http = app.http_addr().unwrap();
        let public = app.public_addr();
        let registrar = app.registrar.clone();
        let users = app.users.clone();
        let presence = app.presence.clone();
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(app.run(async {
            let _ = rx.await;
        }));
        AppServer {
            sip,
            sips,
            http,
            public,
            registrar,
            users,
            presence,
            ws,
            wss,
            dir,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// Stops cleanly (pending bindings are written) and hands back the folder.
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.expect("join").expect("run");
        }
        let dir = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.dir, dir)
    }
}

impl Drop for AppServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// Whether an external tool is installed. Without it a test says SKIPPED, unless
/// SIPREG_REQUIRE_TOOLS=1 (CI), where a missing tool is a failure.
pub fn tool(name: &str) -> bool {
    let found = std::process::Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("SIPREG_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "{name} is required (SIPREG_REQUIRE_TOOLS=1) but not installed"
        );
        eprintln!("SKIPPED: {name} is not installed");
    }
    found
}

/// Runs the real `sipreg sipp-users` on the app's store (as an operator would while the
/// server runs) and returns the CSV it wrote for sipp.
pub async fn sipp_users_csv(app: &AppServer, count: u32, prefix: &str) -> PathBuf {
    let dir = app.dir.path().to_path_buf();
    let cfg = dir.join("cli.toml");
    std::fs::write(
        &cfg,
        format!(
            "[database]\nurl = \"{}\"\n[tokens]\nkey_dir = \"{}\"\n[users]\nargon2_memory_kib = 64\nargon2_iterations = 1\n",
            testdb::url(&dir),
            dir.join("keys").display()
        ),
    )
    .unwrap();
    let csv = dir.join("users.csv");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_sipreg"))
        .arg("--config")
        .arg(&cfg)
        .args([
            "sipp-users",
            "--count",
            &count.to_string(),
            "--prefix",
            prefix,
            "--out",
        ])
        .arg(&csv)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    csv
}
