//! SIP over TLS end to end (RFC 3261 §26, RFC 5630, issue 13): REGISTER with SIPS URIs
//! stored with transport `tls`, OPTIONS, a NOTIFY back over the subscriber's TLS
//! connection, plaintext and silent clients cut off, the per-address cap, mutual TLS,
//! certificate reloads that keep open connections, and the binary's `--sips-listen`,
//! start-up errors, SIGHUP and `sipreg tls self-signed`. Clients are tokio-rustls
//! trusting the generated certificate.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::presence::{bearer, eventually, header};
use common::*;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use sipreg::config::Config;
use sipreg::sip::headers::HeaderName;
use sipreg::sip::{Frame, Limits, Message, Response, frame_stream};
use sipreg::transport::tls::ReloadableAcceptor;
use sipreg::transport::tls::self_signed::self_signed;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_rustls::client::TlsStream;

const WAIT: Duration = Duration::from_secs(5);

/// Writes a fresh self-signed pair for `localhost` into `dir` (as `cert.pem`, `key.pem`).
fn write_pair(dir: &Path) -> (PathBuf, PathBuf) {
    let pair = self_signed("localhost").unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, pair.cert_pem).unwrap();
    std::fs::write(&key, pair.key_pem).unwrap();
    (cert, key)
}

fn certs(path: &Path) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_file_iter(path)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

/// A client configuration trusting only the certificates in `ca` (PEM), optionally with
/// a client certificate.
fn client_config(
    ca: &Path,
    client: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in certs(ca) {
        roots.add(c).unwrap();
    }
    let b = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    Arc::new(match client {
        Some((chain, key)) => b.with_client_auth_cert(chain, key).unwrap(),
        None => b.with_no_client_auth(),
    })
}

/// Opens a TLS connection to `addr`, checking the server's certificate for `name`.
async fn connect_as(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    name: &str,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(name.to_string()).unwrap();
    tokio::time::timeout(
        WAIT,
        tokio_rustls::TlsConnector::from(config).connect(name, tcp),
    )
    .await
    .unwrap_or_else(|_| Err(std::io::Error::other("handshake timed out")))
}

async fn connect(addr: SocketAddr, ca: &Path) -> TlsStream<TcpStream> {
    connect_as(addr, client_config(ca, None), "localhost")
        .await
        .expect("TLS handshake")
}

/// What a read on a stream saw: complete SIP messages (keep-alive CRLFs left out) and
/// whether the server closed it.
struct Read {
    messages: Vec<Message>,
    closed: bool,
}

/// Waits up to `wait` for data, then reads until [`QUIET`] passes idle or the stream
/// closes.
async fn read_msgs<S: AsyncRead + Unpin>(s: &mut S, wait: Duration) -> Read {
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
                    messages.push(parse(&bytes::Bytes::copy_from_slice(&buf[..n])));
                    buf.drain(..n);
                }
                Frame::Ping(n) | Frame::Skip(n) => {
                    buf.drain(..n);
                }
                _ => break,
            }
        }
    }
    Read { messages, closed }
}

/// Sends `text` and returns the first response.
async fn ask<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, text: &str) -> Message {
    s.write_all(text.as_bytes()).await.unwrap();
    let r = read_msgs(s, WAIT).await;
    r.messages
        .into_iter()
        .find(Message::is_response)
        .expect("a response on the connection")
}

/// An OPTIONS as a TLS client sends it.
fn options(branch: &str, local: SocketAddr) -> String {
    format!(
        "OPTIONS sips:example.com SIP/2.0\r\n\
         Via: SIP/2.0/TLS {local};branch=z9hG4bK{branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sips:alice@example.com>;tag=o{branch}\r\n\
         To: <sips:example.com>\r\n\
         Call-ID: {branch}@tls\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

async fn options_ok<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, branch: &str) {
    let local: SocketAddr = "127.0.0.1:5061".parse().unwrap();
    let m = ask(s, &options(branch, local)).await;
    assert_eq!(status(&m), 200, "{}", m.first_line);
}

/// The whole sipreg with TLS on loopback; dropping it stops it.
struct TlsApp {
    sip: SocketAddr,
    sips: SocketAddr,
    http: SocketAddr,
    tls: Arc<ReloadableAcceptor>,
    users: Arc<sipreg::users::UsersService>,
    presence: Arc<sipreg::presence::PresenceService>,
    cert: PathBuf,
    key: PathBuf,
    dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TlsApp {
    async fn start(tweak: impl FnOnce(&mut Config)) -> TlsApp {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = write_pair(dir.path());
        let mut config = app_config(dir.path());
        config.tls.listen = "127.0.0.1:0".parse().unwrap();
        config.tls.cert_file = cert.clone();
        config.tls.key_file = key.clone();
        config.tls.reload_poll_secs = 0;
        config.presence.notify_interval_ms = 20;
        tweak(&mut config);
        let app = sipreg::server::app::App::build(config).await.unwrap();
        let sip = app.sip_addr();
        let sips = app.sips_addr().expect("TLS is on");
        let http = app.http_addr().unwrap();
        let tls = app.tls().expect("acceptor");
        let users = app.users.clone();
        let presence = app.presence.clone();
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(app.run(async {
            let _ = rx.await;
        }));
        TlsApp {
            sip,
            sips,
            http,
            tls,
            users,
            presence,
            cert,
            key,
            dir,
            stop: Some(tx),
            task: Some(task),
        }
    }

    async fn token(&self, name: &str, roles: &[&str]) -> String {
        let u = add_user(&self.users, name, roles).await;
        self.users.issue_token(&u, None, None).unwrap().access_token
    }

    async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap().unwrap();
        }
    }
}

impl Drop for TlsApp {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

#[tokio::test]
async fn register_with_sips_uris_over_tls_is_stored_with_transport_tls() {
    let app = TlsApp::start(|_| {}).await;
    let ta = app.token("alice", &[]).await;
    let admin = app.token("root", &["admin"]).await;
    let mut s = connect(app.sips, &app.cert).await;
    let local = s.get_ref().0.local_addr().unwrap();
    let register = format!(
        "REGISTER sips:example.com SIP/2.0\r\n\
         Via: SIP/2.0/TLS {local};branch=z9hG4bKtlsreg1;rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sips:alice@example.com>;tag=r1\r\n\
         To: <sips:alice@example.com>\r\n\
         Call-ID: tlsreg@test\r\n\
         CSeq: 1 REGISTER\r\n\
         Contact: <sips:alice@192.0.2.20:5061>;expires=600\r\n\
         {}Content-Length: 0\r\n\r\n",
        bearer(&ta)
    );
    let m = ask(&mut s, &register).await;
    assert_eq!(status(&m), 200, "{}", m.first_line);
    let via = header(&m, HeaderName::Via).unwrap();
    assert!(via.starts_with("SIP/2.0/TLS "), "{via}");
    let contact = header(&m, HeaderName::Contact).unwrap();
    assert!(
        contact.contains("<sips:alice@192.0.2.20:5061>"),
        "{contact}"
    );

    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let r = client
        .get(format!(
            "http://{}/registrations/sips:alice@example.com",
            app.http
        ))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["aor"], "sips:alice@example.com");
    assert_eq!(v["bindings"][0]["contact"], "sips:alice@192.0.2.20:5061");
    assert_eq!(v["bindings"][0]["transport"], "tls");
    assert_eq!(v["bindings"][0]["source"], local.to_string());
    drop(s);
    app.stop().await;
}

#[tokio::test]
async fn options_over_tls_and_the_via_is_stamped() {
    let app = TlsApp::start(|_| {}).await;
    let mut s = connect(app.sips, &app.cert).await;
    let local = s.get_ref().0.local_addr().unwrap();
    let m = ask(&mut s, &options("opt1", "192.0.2.9:5061".parse().unwrap())).await;
    assert_eq!(status(&m), 200);
    let via = header(&m, HeaderName::Via).unwrap();
    assert!(via.starts_with("SIP/2.0/TLS 192.0.2.9:5061"), "{via}");
    assert!(via.contains(&format!("received={}", local.ip())), "{via}");
    assert!(via.contains(&format!("rport={}", local.port())), "{via}");
    // The same connection keeps serving.
    options_ok(&mut s, "opt2").await;
    assert_eq!(
        s.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    // A client that only speaks TLS 1.2 is served too.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(certs(&app.cert).remove(0)).unwrap();
    let tls12 = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS12])
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut old = connect_as(app.sips, Arc::new(tls12), "localhost")
        .await
        .expect("TLS 1.2 handshake");
    assert_eq!(
        old.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    options_ok(&mut old, "opt12").await;
    app.stop().await;
}

#[tokio::test]
async fn subscribe_over_tls_gets_its_notify_over_the_same_connection() {
    let app = TlsApp::start(|c| c.sip.t1_ms = 50).await;
    let _alice = app.token("alice", &[]).await;
    let tb = app.token("bob", &[]).await;
    let mut s = connect(app.sips, &app.cert).await;
    let local = s.get_ref().0.local_addr().unwrap();
    let subscribe = format!(
        "SUBSCRIBE sips:alice@example.com SIP/2.0\r\n\
         Via: SIP/2.0/TLS {local};branch=z9hG4bKtlssub1;rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sips:bob@example.com>;tag=wb1\r\n\
         To: <sips:alice@example.com>\r\n\
         Call-ID: tlssub@test\r\n\
         CSeq: 1 SUBSCRIBE\r\n\
         Contact: <sips:bob@{local}>\r\n\
         Event: presence\r\n\
         Expires: 600\r\n\
         {}Content-Length: 0\r\n\r\n",
        bearer(&tb)
    );
    s.write_all(subscribe.as_bytes()).await.unwrap();
    let mut got = read_msgs(&mut s, WAIT).await.messages;
    if !got.iter().any(|m| !m.is_response()) {
        got.extend(read_msgs(&mut s, WAIT).await.messages);
    }
    let ok = got
        .iter()
        .find(|m| m.is_response())
        .expect("200 on the stream");
    assert_eq!(status(ok), 200, "{}", ok.first_line);
    let n = got
        .iter()
        .find(|m| !m.is_response())
        .expect("NOTIFY on the TLS connection");
    assert!(
        n.first_line
            .starts_with(&format!("NOTIFY sips:bob@{local} ")),
        "{}",
        n.first_line
    );
    let via = header(n, HeaderName::Via).unwrap();
    assert!(via.starts_with("SIP/2.0/TLS "), "{via}");
    let answer = Response::new(200).encode(n, app.sips, "");
    s.write_all(&answer).await.unwrap();
    eventually(
        "the subscription kept after its NOTIFY was answered",
        WAIT,
        || app.presence.subscriptions.len() == 1,
    )
    .await;
    // The connection closes: the subscription, reachable only over it, goes eventually.
    drop(s);
    app.stop().await;
}

#[tokio::test]
async fn plaintext_sip_on_the_tls_port_is_cut_off_and_tls_still_works() {
    let app = TlsApp::start(|_| {}).await;
    let mut plain = TcpStream::connect(app.sips).await.unwrap();
    let text = options("plain", plain.local_addr().unwrap());
    plain.write_all(text.as_bytes()).await.unwrap();
    let r = read_msgs(&mut plain, WAIT).await;
    assert!(r.closed, "the server must close a plaintext connection");
    assert!(r.messages.is_empty(), "no SIP answer in plaintext");
    // The listener is unharmed.
    let mut s = connect(app.sips, &app.cert).await;
    options_ok(&mut s, "after-plain").await;
    // And plain TCP SIP still lives on its own port.
    let r = tcp_exchange(app.sip, text.as_bytes(), WAIT).await;
    assert_eq!(status(&parse(&r.messages[0])), 200);
    app.stop().await;
}

#[tokio::test]
async fn a_client_that_never_handshakes_is_cut_after_the_timeout() {
    let app = TlsApp::start(|c| c.tls.handshake_timeout_secs = 1).await;
    let mut silent = TcpStream::connect(app.sips).await.unwrap();
    let mut buf = [0u8; 64];
    // Well past the 1 s timeout (the idle timeout, 300 s, is not what closes it).
    let r = tokio::time::timeout(Duration::from_secs(10), silent.read(&mut buf)).await;
    assert!(
        matches!(r, Ok(Ok(0)) | Ok(Err(_))),
        "the silent connection must be closed: {r:?}"
    );
    let mut s = connect(app.sips, &app.cert).await;
    options_ok(&mut s, "after-silent").await;
    app.stop().await;
}

#[tokio::test]
async fn connections_per_address_are_capped() {
    let app = TlsApp::start(|c| c.tls.max_connections_per_ip = 2).await;
    let mut a = connect(app.sips, &app.cert).await;
    // A connection still handshaking counts too.
    let silent = TcpStream::connect(app.sips).await.unwrap();
    options_ok(&mut a, "cap-a").await;
    let third = connect_as(app.sips, client_config(&app.cert, None), "localhost").await;
    let refused = match third {
        Err(_) => true,
        Ok(mut s) => read_msgs(&mut s, WAIT).await.closed,
    };
    assert!(refused, "a third connection from 127.0.0.1 must be refused");
    // One closes: a new one gets its place (the slot is freed when the server sees it).
    drop(silent);
    let mut ok = false;
    for _ in 0..50 {
        if let Ok(mut s) = connect_as(app.sips, client_config(&app.cert, None), "localhost").await {
            s.write_all(options("cap-b", "127.0.0.1:5061".parse().unwrap()).as_bytes())
                .await
                .unwrap();
            let r = read_msgs(&mut s, Duration::from_secs(1)).await;
            if r.messages.iter().any(|m| status(m) == 200) {
                ok = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "a connection after one closed must be served");
    options_ok(&mut a, "cap-a2").await;
    app.stop().await;
}

#[tokio::test]
async fn the_listener_wide_cap_refuses_more_connections() {
    let app = TlsApp::start(|c| c.tls.max_connections = 1).await;
    let mut a = connect(app.sips, &app.cert).await;
    options_ok(&mut a, "all-a").await;
    let refused = match connect_as(app.sips, client_config(&app.cert, None), "localhost").await {
        Err(_) => true,
        Ok(mut s) => read_msgs(&mut s, WAIT).await.closed,
    };
    assert!(refused, "a second connection must be refused");
    options_ok(&mut a, "all-a2").await;
    app.stop().await;
}

#[tokio::test]
async fn a_reload_serves_the_new_certificate_and_keeps_open_connections() {
    let app = TlsApp::start(|_| {}).await;
    let old_ca = app.dir.path().join("old.pem");
    std::fs::copy(&app.cert, &old_ca).unwrap();
    let mut old = connect(app.sips, &old_ca).await;
    options_ok(&mut old, "before").await;

    // A new pair on disk, then the reload (what SIGHUP does).
    let (cert, _) = write_pair(app.dir.path());
    app.tls.reload().unwrap();
    assert_eq!(app.tls.reloads(), 1);
    let mut new = connect_as(app.sips, client_config(&cert, None), "localhost")
        .await
        .expect("a new connection sees the new certificate");
    options_ok(&mut new, "new").await;
    let stale = connect_as(app.sips, client_config(&old_ca, None), "localhost").await;
    assert!(stale.is_err(), "the old certificate is no longer served");
    // The connection made before the reload is still up and answered.
    options_ok(&mut old, "after").await;

    // A broken file: the reload fails and the current certificate stays.
    std::fs::write(&app.key, "not a key").unwrap();
    let e = app.tls.reload().unwrap_err();
    assert!(e.to_string().contains("key.pem"), "{e}");
    let mut again = connect_as(app.sips, client_config(&cert, None), "localhost")
        .await
        .expect("still the new certificate");
    options_ok(&mut again, "kept").await;
    app.stop().await;
}

#[tokio::test]
async fn a_changed_certificate_file_is_picked_up_without_a_signal() {
    let app = TlsApp::start(|c| c.tls.reload_poll_secs = 1).await;
    let old_ca = app.dir.path().join("old.pem");
    std::fs::copy(&app.cert, &old_ca).unwrap();
    let mut old = connect(app.sips, &old_ca).await;
    let (cert, _) = write_pair(app.dir.path());
    let mut served = false;
    for _ in 0..100 {
        if connect_as(app.sips, client_config(&cert, None), "localhost")
            .await
            .is_ok()
        {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served, "the new certificate was never served");
    assert!(app.tls.reloads() >= 1);
    options_ok(&mut old, "poll-old").await;
    app.stop().await;
}

/// A CA, and a client certificate it signed (both PEM), for mutual TLS.
fn client_ca(
    dir: &Path,
) -> (
    PathBuf,
    Vec<CertificateDer<'static>>,
    PrivateKeyDer<'static>,
) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let ca_path = dir.join("client-ca.pem");
    std::fs::write(&ca_path, ca_cert.pem()).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let client_key = KeyPair::generate().unwrap();
    let client = CertificateParams::new(vec!["phone.example.com".to_string()])
        .unwrap()
        .signed_by(&client_key, &issuer)
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(client_key.serialize_pem().as_bytes()).unwrap();
    (ca_path, vec![client.der().clone()], key)
}

#[tokio::test]
async fn with_a_client_ca_only_clients_with_a_certificate_it_signed_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, chain, key) = client_ca(dir.path());
    let app = TlsApp::start(|c| c.tls.client_ca_file = ca.clone()).await;
    let mut s = connect_as(
        app.sips,
        client_config(&app.cert, Some((chain, key))),
        "localhost",
    )
    .await
    .expect("handshake with a client certificate");
    options_ok(&mut s, "mtls").await;
    // Without a certificate: refused (in TLS 1.3 the client learns it on its first read).
    let refused = match connect_as(app.sips, client_config(&app.cert, None), "localhost").await {
        Err(_) => true,
        Ok(mut s) => {
            let _ = s
                .write_all(options("nocert", "127.0.0.1:5061".parse().unwrap()).as_bytes())
                .await;
            let r = read_msgs(&mut s, WAIT).await;
            r.closed && r.messages.is_empty()
        }
    };
    assert!(refused, "a client without a certificate must not be served");
    app.stop().await;
}

/// A child process killed when dropped.
struct Child(tokio::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.start_kill();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn sipreg() -> tokio::process::Command {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_sipreg"));
    for v in [
        "SIPREG_CONFIG",
        "SIPREG_DATABASE_URL",
        "SIPREG_SIPS_LISTEN",
        "SIPREG_TLS_CERT_FILE",
        "SIPREG_TLS_KEY_FILE",
    ] {
        c.env_remove(v);
    }
    c.kill_on_drop(true);
    c
}

#[tokio::test]
async fn serve_with_a_missing_certificate_fails_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (_, key) = write_pair(dir.path());
    let missing = dir.path().join("missing-cert.pem");
    let out = sipreg()
        .arg("serve")
        .current_dir(dir.path())
        .args([
            "--sip-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .args(["--sips-listen", "127.0.0.1:0"])
        .arg("--tls-cert-file")
        .arg(&missing)
        .env("SIPREG_TLS_KEY_FILE", &key)
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("missing-cert.pem") && err.contains("cannot read"),
        "{err}"
    );
    assert_eq!(
        err.lines()
            .filter(|l| l.contains("missing-cert.pem"))
            .count(),
        1,
        "one error line: {err}"
    );
}

#[tokio::test]
async fn serve_without_a_certificate_says_tls_is_off() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = sipreg()
        .arg("serve")
        .current_dir(dir.path())
        .args([
            "--sip-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .args(["--database", "sqlite://sipreg.db?mode=rwc"])
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        use tokio::io::AsyncBufReadExt;
        let mut line = String::new();
        while lines.read_line(&mut line).await.unwrap_or(0) > 0 {
            seen.push_str(&line);
            if line.contains("SIP over TLS is off") {
                return true;
            }
            line.clear();
        }
        false
    })
    .await;
    let _ = child.start_kill();
    let _ = child.wait().await;
    assert_eq!(found.ok(), Some(true), "{seen}");
}

#[tokio::test]
async fn self_signed_command_writes_a_pair_a_client_accepts_and_sighup_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let certs_dir = dir.path().join("certs");
    let out = sipreg()
        .args(["tls", "self-signed", "--name", "sip.example.com", "--out"])
        .arg(&certs_dir)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    let cert = std::fs::canonicalize(certs_dir.join("cert.pem")).unwrap();
    let key = std::fs::canonicalize(certs_dir.join("key.pem")).unwrap();
    assert!(
        printed.contains(&format!("cert_file = \"{}\"", cert.display()))
            && printed.contains(&format!("key_file = \"{}\"", key.display())),
        "{printed}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "key mode {mode:o}");
    }
    // Not overwritten without --force.
    let again = sipreg()
        .args(["tls", "self-signed", "--name", "sip.example.com", "--out"])
        .arg(&certs_dir)
        .output()
        .await
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));

    // The printed lines, pasted into a configuration file, serve TLS.
    let port = free_port();
    let cfg = dir.path().join("sipreg.toml");
    std::fs::write(
        &cfg,
        format!(
            "[tls]\nlisten = \"127.0.0.1:{port}\"\nreload_poll_secs = 0\n{printed}\n[tokens]\nkey_dir = \"{}\"\n",
            dir.path().join("keys").display()
        ),
    )
    .unwrap();
    let child = sipreg()
        .arg("serve")
        .arg("--config")
        .arg(&cfg)
        .current_dir(dir.path())
        .args([
            "--sip-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .args(["--database", "sqlite://sipreg.db?mode=rwc"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let child = Child(child);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut old = None;
    for _ in 0..100 {
        // The certificate names sip.example.com and the loopback addresses.
        if let Ok(s) = connect_as(addr, client_config(&cert, None), "sip.example.com").await {
            old = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut old = old.expect("the binary never served TLS");
    options_ok(&mut old, "bin-old").await;
    let mut by_ip = connect_as(addr, client_config(&cert, None), "127.0.0.1")
        .await
        .expect("127.0.0.1 is in the certificate");
    options_ok(&mut by_ip, "bin-ip").await;

    // A new certificate on disk and SIGHUP: new connections see it, the old one lives.
    let backup = dir.path().join("first.pem");
    std::fs::copy(&cert, &backup).unwrap();
    let out = sipreg()
        .args([
            "tls",
            "self-signed",
            "--force",
            "--name",
            "sip.example.com",
            "--out",
        ])
        .arg(&certs_dir)
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    let pid = child.0.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let mut reloaded = false;
    for _ in 0..100 {
        if connect_as(addr, client_config(&cert, None), "sip.example.com")
            .await
            .is_ok()
        {
            reloaded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(reloaded, "SIGHUP did not bring in the new certificate");
    assert!(
        connect_as(addr, client_config(&backup, None), "sip.example.com")
            .await
            .is_err()
    );
    options_ok(&mut old, "bin-old-after").await;
    drop(child);
}
