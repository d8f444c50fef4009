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
