//! Transports and transactions against a running server: retransmissions, TCP framing,
//! keep-alives, limits, IPv6, response routing and shutdown.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::*;
use sipreg::config::Config;
use sipreg::server::{Context, Handler, NoServices, Reply};
use sipreg::sip::headers::{HeaderName, TypedHeader, Via};
use sipreg::sip::{Method, Request, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// Counts the REGISTERs it is given; answers 200, optionally after a delay.
struct Counting {
    calls: AtomicU64,
    delay: Option<Duration>,
}

impl Counting {
    fn new(delay: Option<Duration>) -> Arc<Counting> {
        Arc::new(Counting {
            calls: AtomicU64::new(0),
            delay,
        })
    }
}

impl Handler for Counting {
    fn methods(&self) -> &[Method] {
        &[Method::Register]
    }

    fn supported(&self) -> &[&'static str] {
        &["path"]
    }

    fn handle(&self, req: Request, _ctx: Context) -> Reply {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let resp = Response::new(200).header("X-Call", n.to_string());
        assert_eq!(req.method, Method::Register);
        match self.delay {
            None => Reply::Now(resp),
            Some(d) => Reply::Later(Box::pin(async move {
                tokio::time::sleep(d).await;
                resp
            })),
        }
    }
}

const WAIT: Duration = Duration::from_secs(3);

#[tokio::test]
async fn udp_retransmissions_are_answered_from_the_transaction_table() {
    let handler = Counting::new(None);
    let mut config = Config::default();
    config.sip.t1_ms = 10; // Timer J = 640 ms
    let server = TestServer::with(config, handler.clone()).await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let req = request("REGISTER", "retx1", "");
    let mut answers = Vec::new();
    for _ in 0..3 {
        sock.send_to(req.as_bytes(), server.addr).await.unwrap();
        answers.extend(udp_collect(&sock, WAIT).await);
    }
    assert_eq!(answers.len(), 3);
    assert!(
        answers.iter().all(|a| a == &answers[0]),
        "identical answers"
    );
    assert!(String::from_utf8_lossy(&answers[0]).contains("X-Call: 1\r\n"));
    assert_eq!(handler.calls.load(Ordering::SeqCst), 1, "processed once");
    assert_eq!(server.core.stats.retransmissions.load(Ordering::SeqCst), 2);

    // After Timer J the transaction is gone: the same request is new again.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    sock.send_to(req.as_bytes(), server.addr).await.unwrap();
    let late = udp_collect(&sock, WAIT).await;
    assert!(String::from_utf8_lossy(&late[0]).contains("X-Call: 2\r\n"));
    assert_eq!(handler.calls.load(Ordering::SeqCst), 2);
    server.stop().await;
}

#[tokio::test]
async fn retransmission_during_processing_is_absorbed() {
    let handler = Counting::new(Some(Duration::from_millis(300)));
    let server = TestServer::with(Config::default(), handler.clone()).await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let req = request("REGISTER", "slow1", "");
    sock.send_to(req.as_bytes(), server.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    sock.send_to(req.as_bytes(), server.addr).await.unwrap();
    let answers = udp_collect(&sock, WAIT).await;
    assert_eq!(answers.len(), 1, "one final answer for two copies");
    assert_eq!(handler.calls.load(Ordering::SeqCst), 1);
    server.stop().await;
}

#[tokio::test]
async fn another_clients_reused_branch_is_not_a_retransmission() {
    let handler = Counting::new(None);
    let server = TestServer::with(Config::default(), handler.clone()).await;
    let req = request("REGISTER", "shared", "");
    udp_exchange(server.addr, req.as_bytes(), WAIT).await;
    udp_exchange(server.addr, req.as_bytes(), WAIT).await;
    assert_eq!(handler.calls.load(Ordering::SeqCst), 2);
    server.stop().await;
}

#[tokio::test]
async fn tcp_pipelining_fragments_and_keepalive() {
    let server = TestServer::start().await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    // Two requests in one write, then a keep-alive ping.
    let two = format!(
        "{}{}\r\n\r\n",
        request("OPTIONS", "p1", ""),
        request("OPTIONS", "p2", "")
    );
    s.write_all(two.as_bytes()).await.unwrap();
    let got = tcp_read(&mut s, WAIT).await;
    assert_eq!(got.messages.len(), 3, "{:?}", got.messages);
    assert!(got.messages[0].starts_with(b"SIP/2.0 200 OK\r\n"));
    assert!(String::from_utf8_lossy(&got.messages[0]).contains("Call-ID: p1@test"));
    assert!(String::from_utf8_lossy(&got.messages[1]).contains("Call-ID: p2@test"));
    assert_eq!(&got.messages[2][..], b"\r\n", "CRLF pong");
    assert!(!got.closed);
    // One request dribbled in small pieces.
    let req = request("OPTIONS", "frag", "");
    for chunk in req.as_bytes().chunks(7) {
        s.write_all(chunk).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let got = tcp_read(&mut s, WAIT).await;
    assert_eq!(got.messages.len(), 1);
    assert!(String::from_utf8_lossy(&got.messages[0]).contains("Call-ID: frag@test"));
    server.stop().await;
}

/// Found by the `tcp_framer` fuzz target (docs/fuzzing.md): a keep-alive ping whose last
/// octet came in a later read was taken for two lone CRLFs and never answered.
#[tokio::test]
async fn tcp_keepalive_split_across_reads_is_answered() {
    let server = TestServer::start().await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(b"\r\n\r").await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.write_all(b"\n").await.unwrap();
    let got = tcp_read(&mut s, WAIT).await;
    assert_eq!(got.messages.len(), 1, "{:?}", got.messages);
    assert_eq!(&got.messages[0][..], b"\r\n", "CRLF pong");
    assert!(!got.closed);
    // A lone CRLF before a request is still skipped, not held.
    s.write_all(format!("\r\n{}", request("OPTIONS", "after", "")).as_bytes())
        .await
        .unwrap();
    let got = tcp_read(&mut s, WAIT).await;
    assert_eq!(got.messages.len(), 1, "{:?}", got.messages);
    assert!(String::from_utf8_lossy(&got.messages[0]).contains("Call-ID: after@test"));
    server.stop().await;
}

#[tokio::test]
async fn tcp_idle_timeout_connection_cap_and_oversize() {
    let mut config = Config::default();
    config.sip.tcp_idle_timeout_secs = 1;
    config.sip.tcp_max_connections = 2;
    config.sip.max_message_size = 2_000;
    let server = TestServer::with(config, Arc::new(NoServices)).await;
    let mut a = TcpStream::connect(server.addr).await.unwrap();
    let mut b = TcpStream::connect(server.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The third is accepted by the kernel and closed by sipreg at once.
    let mut c = TcpStream::connect(server.addr).await.unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(WAIT, c.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "connection over the cap is closed");
    // An over-long header section closes the connection.
    b.write_all(&vec![b'A'; 3_000]).await.unwrap();
    let got = tcp_read(&mut b, WAIT).await;
    assert!(got.closed && got.messages.is_empty());
    // An idle connection is closed after the timeout.
    let t0 = std::time::Instant::now();
    let n = tokio::time::timeout(Duration::from_secs(5), a.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0);
    assert!(
        t0.elapsed() >= Duration::from_millis(700),
        "closed too early"
    );
    server.stop().await;
}

#[tokio::test]
async fn ipv6_udp_and_tcp() {
    let Ok(probe) = std::net::UdpSocket::bind("[::1]:0") else {
        eprintln!("SKIPPED: no IPv6 loopback");
        return;
    };
    drop(probe);
    let mut config = Config::default();
    config.sip.listen = "[::1]:0".parse().unwrap();
    let server = TestServer::at(config, Arc::new(NoServices)).await;
    let sock = UdpSocket::bind("[::1]:0").await.unwrap();
    let req = request("OPTIONS", "v6", "");
    sock.send_to(req.as_bytes(), server.addr).await.unwrap();
    let answers = udp_collect(&sock, WAIT).await;
    let text = String::from_utf8_lossy(&answers[0]).to_string();
    assert!(text.starts_with("SIP/2.0 200 OK"), "{text}");
    assert!(text.contains("received=[::1]"), "{text}");
    let got = tcp_exchange(server.addr, request("OPTIONS", "v6t", "").as_bytes(), WAIT).await;
    assert_eq!(status(&parse(&got.messages[0])), 200);
    server.stop().await;
}

#[tokio::test]
async fn rport_is_filled_and_received_added() {
    let server = TestServer::start().await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = sock.local_addr().unwrap().port();
    let req = request("OPTIONS", "rp", "").replace("5060;branch", "5060;rport;branch");
    sock.send_to(req.as_bytes(), server.addr).await.unwrap();
    let m = parse(&udp_collect(&sock, WAIT).await[0]);
    let raw = m.headers.first(HeaderName::Via).unwrap();
    let via = Via::parse(m.headers.src(), raw).unwrap();
    assert_eq!(via.rport(), Some(Some(port.to_string().as_str())));
    assert_eq!(via.received(), Some("127.0.0.1"));
    server.stop().await;
}

#[tokio::test]
async fn without_force_rport_responses_follow_the_via_port() {
    let mut config = Config::default();
    config.sip.force_rport = false;
    let server = TestServer::with(config, Arc::new(NoServices)).await;
    let sender = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let listener = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let lport = listener.local_addr().unwrap().port();
    // Sent-by names 127.0.0.1 and the listener's port: RFC 3261 §18.2.2 answers there.
    let req =
        request("OPTIONS", "nr", "").replace("192.0.2.10:5060", &format!("127.0.0.1:{lport}"));
    sender.send_to(req.as_bytes(), server.addr).await.unwrap();
    let at_listener = udp_collect(&listener, WAIT).await;
    assert_eq!(at_listener.len(), 1);
    assert!(
        udp_collect(&sender, Duration::from_millis(200))
            .await
            .is_empty()
    );
    // With rport in the request the source port wins again.
    let req = request("OPTIONS", "nr2", "").replace("5060;branch", "5060;rport;branch");
    sender.send_to(req.as_bytes(), server.addr).await.unwrap();
    assert_eq!(udp_collect(&sender, WAIT).await.len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn oversized_datagram_gets_513_and_require_420() {
    let mut config = Config::default();
    config.sip.max_message_size = 1_000;
    let server = TestServer::with(config, Counting::new(None)).await;
    let big = request(
        "OPTIONS",
        "big",
        &format!("X-Pad: {}\r\n", "a".repeat(1_200)),
    );
    let r = udp_exchange(server.addr, big.as_bytes(), WAIT).await;
    assert_eq!(status(&parse(&r[0])), 513);
    // `path` is supported by this handler, the other tag is not.
    let req = request("REGISTER", "req", "Require: path, foo\r\n");
    let m = parse(&udp_exchange(server.addr, req.as_bytes(), WAIT).await[0]);
    assert_eq!(status(&m), 420);
    assert_eq!(m.headers.first(HeaderName::Unsupported), Some("foo"));
    server.stop().await;
}

#[tokio::test]
async fn options_and_405_list_what_is_served() {
    let server = TestServer::with(Config::default(), Counting::new(None)).await;
    let m =
        parse(&udp_exchange(server.addr, request("OPTIONS", "o1", "").as_bytes(), WAIT).await[0]);
    assert_eq!(status(&m), 200);
    assert_eq!(
        m.headers.first(HeaderName::Allow),
        Some("OPTIONS, REGISTER")
    );
    assert_eq!(m.headers.first(HeaderName::Supported), Some("path"));
    assert!(m.headers.first(HeaderName::Accept).is_some());
    for method in [
        "BYE", "MESSAGE", "INFO", "UPDATE", "REFER", "PRACK", "NOTIFY", "CANCEL", "INVITE",
    ] {
        let m = parse(
            &udp_exchange(
                server.addr,
                request(method, &format!("m{method}"), "").as_bytes(),
                WAIT,
            )
            .await[0],
        );
        assert_eq!(status(&m), 405, "{method}");
        assert_eq!(
            m.headers.first(HeaderName::Allow),
            Some("OPTIONS, REGISTER")
        );
    }
    // ACK is never answered.
    assert!(
        udp_exchange(
            server.addr,
            request("ACK", "a1", "").as_bytes(),
            Duration::from_millis(300)
        )
        .await
        .is_empty()
    );
    server.stop().await;
}

#[tokio::test]
async fn bare_core_answers_501_for_the_services_not_yet_plugged_in() {
    let server = TestServer::start().await;
    for method in ["REGISTER", "SUBSCRIBE", "PUBLISH"] {
        let m = parse(
            &udp_exchange(
                server.addr,
                request(method, &format!("n{method}"), "").as_bytes(),
                WAIT,
            )
            .await[0],
        );
        assert_eq!(status(&m), 501, "{method}");
    }
    let m = parse(&udp_exchange(server.addr, request("FOO", "foo", "").as_bytes(), WAIT).await[0]);
    assert_eq!(status(&m), 501);
    server.stop().await;
}

fn free_port() -> u16 {
    let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    u.local_addr().unwrap().port()
}

/// The real binary: configured from the environment and a file, answers, and exits 0 on
/// SIGTERM.
#[tokio::test]
async fn binary_serves_and_stops_cleanly_on_sigterm() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("sipreg.toml");
    std::fs::write(
        &cfg,
        "[sip]\nforce_rport = true\nlisten = \"127.0.0.1:1\"\n",
    )
    .unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_sipreg"))
        .arg("serve")
        .current_dir(dir.path())
        .env("SIPREG_HTTP_LISTEN", "127.0.0.1:0")
        .env("SIPREG_CONFIG", &cfg)
        // The environment overrides the file.
        .env("SIPREG_SIP_LISTEN", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut answered = false;
    for _ in 0..50 {
        let r = udp_exchange(
            addr,
            request("OPTIONS", "bin", "").as_bytes(),
            Duration::from_millis(200),
        )
        .await;
        if !r.is_empty() {
            assert_eq!(status(&parse(&r[0])), 200);
            answered = true;
            break;
        }
    }
    assert!(answered, "binary never answered");
    let pid = child.id().unwrap() as i32;
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .await
        .unwrap();
    assert!(err.contains("shutting down"), "{err}");
}

#[tokio::test]
async fn binary_rejects_a_bad_config_file_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[sip]\nlisten = 5\n").unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_sipreg"))
        .args(["serve", "--config"])
        .arg(&cfg)
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid config file"), "{err}");
}
