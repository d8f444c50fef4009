//! The SIP message trace end to end: a REGISTER with a Bearer token and one with Digest
//! credentials over UDP, and an OPTIONS over TCP, all land in the trace file (requests and
//! responses) with neither the token nor the Digest response in it; a HEPv3 collector (a
//! UDP socket here, decoding the chunks itself) gets each message with its addresses.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::presence::{Peer, bearer, eventually, register};
use common::*;
use sha2::{Digest, Sha256};
use sipreg::sip::headers::{HeaderName, TypedHeader, WwwAuthenticate};

const WAIT: Duration = Duration::from_secs(5);

fn hex_sha256(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Digest SHA-256 credentials answering challenge `ch`; returns the header and the
/// response value.
fn digest(ch: &str, user: &str) -> (String, String) {
    let a = WwwAuthenticate::parse_str(ch).unwrap().0;
    let realm = a.param("realm").unwrap();
    let nonce = a.param("nonce").unwrap();
    let ha1 = hex_sha256(&format!("{user}:{realm}:{PASSWORD}"));
    let ha2 = hex_sha256("REGISTER:sip:example.com");
    let response = hex_sha256(&format!("{ha1}:{nonce}:00000001:c0ffee:auth:{ha2}"));
    let header = format!(
        "Authorization: Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"sip:example.com\", response=\"{response}\", algorithm=SHA-256, qop=auth, nc=00000001, cnonce=\"c0ffee\"\r\n"
    );
    (header, response)
}

fn digest_challenge(m: &sipreg::sip::Message) -> String {
    m.headers
        .all(HeaderName::WwwAuthenticate)
        .map(|h| h.value.to_string())
        .find(|c| c.starts_with("Digest") && c.contains("SHA-256"))
        .expect("a Digest SHA-256 challenge")
}

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[tokio::test]
async fn trace_file_has_every_message_and_no_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sip-trace.log");
    let mut config = app_config(dir.path());
    config.trace.file = Some(path.clone());
    let app = AppServer::start_in(dir, config).await;
    let alice = add_user(&app.users, "alice", &[]).await;
    let p = Peer::new().await;
    let contact = format!("<sip:alice@{}>;expires=600", p.addr);

    let token = app
        .users
        .issue_token(&alice, None, None)
        .unwrap()
        .access_token;
    let m = p
        .request(
            app.sip,
            &register("alice", "tb1", 1, &contact, &bearer(&token)),
        )
        .await;
    assert_eq!(status(&m), 200, "{}", m.first_line);

    let m = p
        .request(app.sip, &register("alice", "td1", 1, &contact, ""))
        .await;
    assert_eq!(status(&m), 401);
    let (auth, response) = digest(&digest_challenge(&m), "alice");
    let m = p
        .request(app.sip, &register("alice", "td1", 2, &contact, &auth))
        .await;
    assert_eq!(status(&m), 200, "{}", m.first_line);

    let tcp = tcp_exchange(app.sip, request("OPTIONS", "tt1", "").as_bytes(), WAIT).await;
    assert_eq!(status(&parse(&tcp.messages[0])), 200);

    // Written by the trace's own thread: wait until all eight messages are there.
    eventually("the trace file holds every message", WAIT, || {
        let t = read(&path);
        t.matches("==== ").count() >= 8 && t.contains("recv TCP") && t.contains("sent TCP")
    })
    .await;
    let trace = read(&path);
    let peer = p.addr.to_string();
    assert_eq!(
        trace.matches(&format!("recv UDP {peer} -> ")).count(),
        3,
        "{trace}"
    );
    assert_eq!(
        trace.matches(&format!(" -> {peer} (")).count(),
        3,
        "{trace}"
    );
    assert_eq!(
        trace
            .matches("\nREGISTER sip:example.com SIP/2.0\r\n")
            .count(),
        3
    );
    assert_eq!(trace.matches("\nSIP/2.0 200 OK\r\n").count(), 3, "{trace}");
    assert_eq!(
        trace.matches("\nSIP/2.0 401 Unauthorized\r\n").count(),
        1,
        "{trace}"
    );
    assert!(trace.contains("\nOPTIONS sip:alice@example.com SIP/2.0\r\n"));
    // Credentials are gone, the rest of the Authorization fields stay.
    assert!(
        trace.contains("Authorization: Bearer <redacted>\r\n"),
        "{trace}"
    );
    assert!(trace.contains("response=\"<redacted>\""), "{trace}");
    assert!(trace.contains("username=\"alice\""), "{trace}");
    assert!(!trace.contains(&token), "the Bearer token is in the trace");
    for part in token.split('.') {
        assert!(
            !trace.contains(part),
            "part of the Bearer token is in the trace"
        );
    }
    assert!(
        !trace.contains(&response),
        "the Digest response is in the trace"
    );
    assert!(!trace.contains(PASSWORD));
    app.stop().await;
}

/// One HEPv3 packet's chunks of vendor 0, by type (decoded here, independently of sipreg).
fn hep_chunks(packet: &[u8]) -> Vec<(u16, Vec<u8>)> {
    assert_eq!(&packet[..4], b"HEP3");
    let total = usize::from(u16::from_be_bytes([packet[4], packet[5]]));
    assert_eq!(total, packet.len(), "HEP total length");
    let mut out = Vec::new();
    let mut at = 6;
    while at < total {
        let vendor = u16::from_be_bytes([packet[at], packet[at + 1]]);
        let kind = u16::from_be_bytes([packet[at + 2], packet[at + 3]]);
        let len = usize::from(u16::from_be_bytes([packet[at + 4], packet[at + 5]]));
        assert_eq!(vendor, 0, "generic vendor chunks only");
        assert!(len >= 6 && at + len <= total, "chunk length {len} at {at}");
        out.push((kind, packet[at + 6..at + len].to_vec()));
        at += len;
    }
    out
}

fn chunk(chunks: &[(u16, Vec<u8>)], kind: u16) -> Vec<u8> {
    chunks
        .iter()
        .find(|(k, _)| *k == kind)
        .unwrap_or_else(|| panic!("no chunk {kind}"))
        .1
        .clone()
}

fn endpoint(chunks: &[(u16, Vec<u8>)], ip: u16, port: u16) -> SocketAddr {
    let ip = chunk(chunks, ip);
    let ip: [u8; 4] = ip.try_into().expect("an IPv4 address");
    let port = chunk(chunks, port);
    SocketAddr::from((ip, u16::from_be_bytes([port[0], port[1]])))
}

#[tokio::test]
async fn hep_collector_gets_each_message_with_its_addresses() {
    let collector = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let hep = collector.local_addr().unwrap();
    let app = AppServer::start(|c| {
        c.trace.hep = Some(hep);
        c.trace.hep_capture_id = 4242;
    })
    .await;
    let p = Peer::new().await;
    let token = "header.payload.c2lnbmF0dXJl";
    let m = p
        .request(
            app.sip,
            &register("bob", "hep1", 1, "<sip:bob@127.0.0.1:5999>", &bearer(token)),
        )
        .await;
    assert_eq!(status(&m), 401);

    let mut packets = Vec::new();
    let mut buf = vec![0u8; 65_535];
    while packets.len() < 2 {
        let (n, _) = tokio::time::timeout(WAIT, collector.recv_from(&mut buf))
            .await
            .expect("a HEP packet in time")
            .unwrap();
        packets.push(hep_chunks(&buf[..n]));
    }
    let (req, resp) = (&packets[0], &packets[1]);
    for c in [req, resp] {
        assert_eq!(chunk(c, 1), [2], "IPv4");
        assert_eq!(chunk(c, 2), [17], "UDP");
        assert_eq!(chunk(c, 11), [1], "SIP");
        assert_eq!(chunk(c, 12), 4242u32.to_be_bytes());
        assert_eq!(chunk(c, 9).len(), 4);
        assert_eq!(chunk(c, 10).len(), 4);
    }
    assert_eq!(endpoint(req, 3, 7), p.addr);
    assert_eq!(endpoint(req, 4, 8).port(), app.sip.port());
    assert_eq!(endpoint(resp, 3, 7).port(), app.sip.port());
    assert_eq!(endpoint(resp, 4, 8), p.addr);
    let req_text = String::from_utf8(chunk(req, 15)).unwrap();
    let resp_text = String::from_utf8(chunk(resp, 15)).unwrap();
    assert!(
        req_text.starts_with("REGISTER sip:example.com SIP/2.0\r\n"),
        "{req_text}"
    );
    assert!(
        req_text.contains("Authorization: Bearer <redacted>\r\n"),
        "{req_text}"
    );
    assert!(
        !req_text.contains("c2lnbmF0dXJl"),
        "the token reached the collector"
    );
    assert!(resp_text.starts_with("SIP/2.0 401 "), "{resp_text}");
    app.stop().await;
}

mod spawned;

/// `--log-format json` writes one JSON object per line, and every HTTP request gets an
/// access line (target `sipreg::access`) without its query string.
#[test]
fn json_logs_and_an_access_line_without_the_query() {
    let trace = tempfile::tempdir().unwrap();
    let trace_file = trace.path().join("flag.log");
    let flag = trace_file.to_str().unwrap();
    let mut s = spawned::Spawned::start("", &["--sip-trace", flag]);
    assert_eq!(s.http_get("/health?code=SECRET-CODE-123&state=xyz"), 200);
    assert_eq!(s.http_get("/no/such/route"), 404);
    let access = |path: &'static str| {
        move |j: &serde_json::Value| j["target"] == "sipreg::access" && j["path"] == path
    };
    let health = s.wait_for("an access line for /health", access("/health"));
    assert_eq!(health["method"], "GET");
    assert_eq!(health["status"], 200);
    assert_eq!(health["level"], "INFO");
    assert!(health["latency_us"].is_u64(), "{health}");
    assert!(
        health["peer"]
            .as_str()
            .is_some_and(|p| p.starts_with("127.0.0.1:")),
        "{health}"
    );
    let missing = s.wait_for("an access line for the 404", access("/no/such/route"));
    assert_eq!(missing["status"], 404);
    // Every line is JSON (logs() panics otherwise), and the query never shows.
    assert!(!s.logs().is_empty());
    assert!(!s.log_text().contains("SECRET-CODE-123"));

    // --sip-trace turned the trace on: an OPTIONS and its answer are in the file.
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(WAIT)).unwrap();
    sock.send_to(request("OPTIONS", "flag1", "").as_bytes(), s.sip)
        .unwrap();
    let mut buf = [0u8; 65_535];
    let (n, _) = sock.recv_from(&mut buf).expect("an answer");
    assert!(buf[..n].starts_with(b"SIP/2.0 200 OK\r\n"));
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let t = read(&trace_file);
        if t.contains("\nOPTIONS sip:alice@example.com SIP/2.0\r\n")
            && t.contains("\nSIP/2.0 200 OK\r\n")
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not traced:\n{t}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// sipreg's own requests (the NOTIFY of a subscription) and their answers are traced too.
#[tokio::test]
async fn notify_and_its_answer_are_traced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sip-trace.log");
    let mut config = app_config(dir.path());
    config.trace.file = Some(path.clone());
    config.presence.notify_interval_ms = 20;
    let app = AppServer::start_in(dir, config).await;
    add_user(&app.users, "alice", &[]).await;
    let bob = add_user(&app.users, "bob", &[]).await;
    let token = app
        .users
        .issue_token(&bob, None, None)
        .unwrap()
        .access_token;
    let w = Peer::new().await;
    let sub = common::presence::subscribe(
        "bob",
        "example.com",
        "alice",
        "tn1",
        1,
        None,
        "UDP",
        w.addr,
        &format!("{}Event: presence\r\n", bearer(&token)),
    );
    let m = w.request(app.sip, &sub).await;
    assert_eq!(status(&m), 200, "{}", m.first_line);
    let n = w.notify(WAIT, 200).await.expect("a NOTIFY");
    assert!(n.first_line.starts_with("NOTIFY "));
    let peer = w.addr.to_string();
    eventually("the NOTIFY and its 200 in the trace", WAIT, || {
        let t = read(&path);
        t.matches(&format!(" -> {peer} (")).count() >= 2
            && t.matches(&format!("recv UDP {peer} -> ")).count() >= 2
    })
    .await;
    let trace = read(&path);
    let sent_notify = trace
        .split("==== ")
        .find(|r| {
            r.starts_with(char::is_numeric)
                && r.contains(" sent UDP ")
                && r.contains("\nNOTIFY sip:")
        })
        .unwrap_or_else(|| panic!("no NOTIFY sent in:\n{trace}"));
    assert!(
        sent_notify.contains(&format!(" -> {peer} (")),
        "{sent_notify}"
    );
    let answered = trace.split("==== ").any(|r| {
        r.contains(&format!(" recv UDP {peer} -> "))
            && r.contains("\nSIP/2.0 200 OK\r\n")
            && r.contains(" NOTIFY\r\n")
    });
    assert!(answered, "the NOTIFY's 200 is not in:\n{trace}");
    assert!(!trace.contains(&token));
    app.stop().await;
}
