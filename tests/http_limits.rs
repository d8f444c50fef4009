//! HTTP under attack: a client trickling its header section (slowloris) is cut off at
//! `[limits] http_header_timeout_secs`, a body over `http_max_body` gets 413, and a
//! request whose body never finishes gets 503 at `http_request_timeout_secs`.

mod common;

use std::time::{Duration, Instant};

use common::AppServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn app() -> AppServer {
    AppServer::start(|c| {
        c.limits.http_header_timeout_secs = 2;
        c.limits.http_request_timeout_secs = 2;
        c.limits.http_max_body = 1024;
    })
    .await
}

/// Everything the server sends until it closes (or 15 s pass).
async fn read_all(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(15), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn a_client_trickling_its_headers_is_disconnected() {
    let app = app().await;
    let mut s = TcpStream::connect(app.http).await.unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    // One byte a second of a header that never ends; the server must close first.
    let mut closed = false;
    let mut buf = [0u8; 512];
    for _ in 0..20 {
        if s.write_all(b"X").await.is_err() {
            closed = true;
            break;
        }
        match tokio::time::timeout(Duration::from_secs(1), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            // hyper may answer 408 before closing.
            Ok(Ok(_)) => {}
            Err(_) => {}
        }
    }
    let took = started.elapsed();
    assert!(closed, "still connected after 20 s of trickled headers");
    // Cut off by the 2 s header deadline, not by anything else (generous margin).
    assert!(took < Duration::from_secs(10), "closed only after {took:?}");
}

#[tokio::test]
async fn a_complete_request_is_still_served() {
    let app = app().await;
    let mut s = TcpStream::connect(app.http).await.unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let out = read_all(&mut s).await;
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
}

#[tokio::test]
async fn an_oversized_body_gets_413() {
    let app = app().await;
    let body = format!(
        "{{\"username\":\"alice\",\"password\":\"{}\"}}",
        "x".repeat(4096)
    );
    let mut s = TcpStream::connect(app.http).await.unwrap();
    let req = format!(
        "POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let out = read_all(&mut s).await;
    assert!(out.starts_with("HTTP/1.1 413"), "{out}");
}

#[tokio::test]
async fn a_body_that_never_finishes_gets_503() {
    let app = app().await;
    let mut s = TcpStream::connect(app.http).await.unwrap();
    // Promises 100 octets, sends 10, then waits.
    s.write_all(
        b"POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 100\r\nConnection: close\r\n\r\n{\"username\"",
    )
    .await
    .unwrap();
    let out = read_all(&mut s).await;
    assert!(out.starts_with("HTTP/1.1 503"), "{out}");
    assert!(out.to_ascii_lowercase().contains("retry-after: 5"), "{out}");
}

/// sipreg with the public HTTPS listener on (a lab certificate for 127.0.0.1) and the
/// same limits; a TLS client configuration trusting that certificate.
async fn public_app() -> (AppServer, std::sync::Arc<rustls::ClientConfig>) {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let dir = tempfile::tempdir().unwrap();
    let pair = sipreg::transport::tls::self_signed::self_signed("127.0.0.1").unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, &pair.cert_pem).unwrap();
    std::fs::write(&key, &pair.key_pem).unwrap();
    let app = AppServer::start(|c| {
        c.tls.listen = "127.0.0.1:0".parse().unwrap();
        c.tls.cert_file = cert;
        c.tls.key_file = key;
        c.http.public_listen = Some("127.0.0.1:0".parse().unwrap());
        c.limits.http_header_timeout_secs = 2;
        c.limits.http_request_timeout_secs = 2;
        c.limits.http_max_body = 1024;
    })
    .await;
    // The files are read at start; the folder may go.
    drop(dir);
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(pair.cert_pem.as_bytes()).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    (app, std::sync::Arc::new(config))
}

async fn tls_connect(
    addr: std::net::SocketAddr,
    config: std::sync::Arc<rustls::ClientConfig>,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .expect("TLS handshake")
}

#[tokio::test]
async fn the_public_https_listener_has_the_same_limits() {
    let (app, tls) = public_app().await;
    let public = app.public.expect("public listener");
    // Trickled headers: cut off.
    let mut s = tls_connect(public, tls.clone()).await;
    s.write_all(b"GET /.well-known/jwks.json HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    s.flush().await.unwrap();
    let started = Instant::now();
    let mut closed = false;
    let mut buf = [0u8; 512];
    for _ in 0..20 {
        if s.write_all(b"X").await.is_err() || s.flush().await.is_err() {
            closed = true;
            break;
        }
        match tokio::time::timeout(Duration::from_secs(1), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            _ => {}
        }
    }
    assert!(closed, "still connected after 20 s of trickled headers");
    assert!(started.elapsed() < Duration::from_secs(10));
    // An oversized body: 413.
    let mut s = tls_connect(public, tls).await;
    let body = "x".repeat(4096);
    let req = format!(
        "POST /oauth/token HTTP/1.1\r\nHost: x\r\n\
         Content-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    s.flush().await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(15), s.read_to_end(&mut out)).await;
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("HTTP/1.1 413"), "{out}");
}
