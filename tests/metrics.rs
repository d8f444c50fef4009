//! Metrics and health over real sockets: REGISTERs over UDP (accepted, refused for a bad
//! token, challenged), an OPTIONS over TCP, then `GET /metrics` on the admin listener
//! must show exactly those moves; `/health` and `/ready`; `[metrics] enabled = false`
//! makes `/metrics` 404.
//!
//! The Prometheus recorder is one per process: only one test here sends SIP over UDP and
//! TCP, and only one does TLS handshakes, so each test's deltas are its own.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use common::presence::{Peer, bearer, eventually, register, subscribe};
use common::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(5);

/// A scrape publishes its app's sizes into the process-wide recorder and renders them:
/// one at a time, so two apps' scrapes never interleave.
static SCRAPES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// One scrape: each series (name and sorted labels, as `name{k="v",...}`) and its value.
struct Scrape(BTreeMap<String, f64>);

impl Scrape {
    async fn of(app: &AppServer) -> Scrape {
        let _one = SCRAPES.lock().await;
        let r = reqwest::get(format!("http://{}/metrics", app.http))
            .await
            .expect("GET /metrics");
        assert_eq!(r.status(), 200);
        let ct = r.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
        let text = r.text().await.unwrap();
        let mut out = BTreeMap::new();
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let (series, value) = line.rsplit_once(' ').expect("series value");
            let key = match series.split_once('{') {
                Some((name, labels)) => {
                    let mut l: Vec<&str> = labels.trim_end_matches('}').split(',').collect();
                    l.sort();
                    format!("{name}{{{}}}", l.join(","))
                }
                None => series.to_string(),
            };
            out.insert(key, value.parse().expect("a number"));
        }
        Scrape(out)
    }

    /// The value of `series` (labels in any order), 0 when absent.
    fn get(&self, series: &str) -> f64 {
        let key = match series.split_once('{') {
            Some((name, labels)) => {
                let mut l: Vec<&str> = labels.trim_end_matches('}').split(',').collect();
                l.sort();
                format!("{name}{{{}}}", l.join(","))
            }
            None => series.to_string(),
        };
        self.0.get(&key).copied().unwrap_or(0.0)
    }

    fn has(&self, name: &str) -> bool {
        self.0
            .keys()
            .any(|k| k == name || k.starts_with(&format!("{name}{{")))
    }
}

/// `after - before` for `series`.
fn moved(before: &Scrape, after: &Scrape, series: &str) -> f64 {
    after.get(series) - before.get(series)
}

async fn send_udp(app: &AppServer, msg: &str) -> u16 {
    let r = udp_exchange(app.sip, msg.as_bytes(), WAIT).await;
    assert_eq!(r.len(), 1, "one answer expected, got {r:?}");
    status(&parse(&r[0]))
}

async fn get(addr: SocketAddr, path: &str) -> (u16, serde_json::Value) {
    let r = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
    let code = r.status().as_u16();
    (code, r.json().await.unwrap_or(serde_json::Value::Null))
}

#[tokio::test]
async fn requests_auth_and_gauges_move_exactly() {
    // T1 = 20 ms: an unanswered NOTIFY times out (Timer F) after 1.28 s.
    let app = AppServer::start(|c| {
        c.sip.t1_ms = 20;
        c.presence.notify_interval_ms = 20;
    })
    .await;
    let alice = add_user(&app.users, "alice", &[]).await;
    let token = app
        .users
        .issue_token(&alice, None, None)
        .unwrap()
        .access_token;
    let before = Scrape::of(&app).await;
    for name in [
        "sipreg_sip_messages_received_total",
        "sipreg_bindings",
        "sipreg_connections",
        "sipreg_write_behind_queue_depth",
        "sipreg_notify_timeouts_total",
        "sipreg_tls_handshakes_total",
    ] {
        assert!(before.has(name), "{name} missing before any traffic");
    }

    let contact = "<sip:alice@127.0.0.1:5998>;expires=600";
    // Accepted (the token is checked in full: a cache miss), then refreshed (a hit).
    let ok = register("alice", "m1", 1, contact, &bearer(&token));
    assert_eq!(send_udp(&app, &ok).await, 200);
    let again = register("alice", "m1", 2, contact, &bearer(&token));
    assert_eq!(send_udp(&app, &again).await, 200);
    // A forged token: refused with a fresh challenge.
    let bad = register(
        "alice",
        "m2",
        1,
        contact,
        &bearer("eyJhbGciOiJSUzI1NiJ9.e30.c2ln"),
    );
    let code = send_udp(&app, &bad).await;
    assert!(code == 401 || code == 403, "bad token got {code}");
    // No credentials: the usual first challenge.
    assert_eq!(
        send_udp(&app, &register("alice", "m3", 1, contact, "")).await,
        401
    );
    // OPTIONS over TCP, the connection kept open across the scrape.
    let mut tcp = TcpStream::connect(app.sip).await.unwrap();
    tcp.write_all(request("OPTIONS", "mt1", "").as_bytes())
        .await
        .unwrap();
    let got = tcp_read(&mut tcp, WAIT).await;
    assert_eq!(status(&parse(&got.messages[0])), 200);

    let after = Scrape::of(&app).await;
    let req = |m: &str, s: u16, t: &str| {
        format!("sipreg_sip_requests_total{{method=\"{m}\",status=\"{s}\",transport=\"{t}\"}}")
    };
    assert_eq!(moved(&before, &after, &req("REGISTER", 200, "udp")), 2.0);
    assert_eq!(
        moved(&before, &after, &req("REGISTER", 401, "udp"))
            + moved(&before, &after, &req("REGISTER", 403, "udp")),
        2.0
    );
    assert_eq!(moved(&before, &after, &req("OPTIONS", 200, "tcp")), 1.0);
    let auth = |scheme: &str, result: &str| {
        format!("sipreg_auth_total{{scheme=\"{scheme}\",result=\"{result}\"}}")
    };
    assert_eq!(moved(&before, &after, &auth("bearer", "ok")), 2.0);
    assert_eq!(moved(&before, &after, &auth("bearer", "invalid")), 1.0);
    assert_eq!(moved(&before, &after, &auth("none", "challenge")), 1.0);
    assert_eq!(
        moved(&before, &after, "sipreg_token_cache_total{result=\"miss\"}"),
        2.0,
        "the first check of the good token and the bad token"
    );
    assert_eq!(
        moved(&before, &after, "sipreg_token_cache_total{result=\"hit\"}"),
        1.0,
        "the refresh"
    );
    assert_eq!(
        moved(&before, &after, "sipreg_sip_messages_received_total"),
        5.0
    );
    assert_eq!(
        moved(&before, &after, "sipreg_sip_requests_handled_total"),
        4.0
    );
    assert_eq!(after.get("sipreg_bindings"), 1.0);
    assert_eq!(after.get("sipreg_aors"), 1.0);
    assert_eq!(after.get("sipreg_connections{transport=\"tcp\"}"), 1.0);
    assert_eq!(after.get("sipreg_connections{transport=\"udp\"}"), 0.0);
    // The registrar's own table says the same as the gauge.
    assert_eq!(app.registrar.table.bindings(), 1);

    let (code, body) = get(app.http, "/health").await;
    assert_eq!((code, body["status"].as_str()), (200, Some("ok")));
    let (code, body) = get(app.http, "/ready").await;
    assert_eq!(
        (code, body["status"].as_str()),
        (200, Some("ready")),
        "{body}"
    );
    drop(tcp);

    // alice watches herself from a peer that never answers: one NOTIFY, its
    // retransmissions, then Timer F.
    let w = Peer::new().await;
    let sub = subscribe(
        "alice",
        "example.com",
        "alice",
        "msub",
        1,
        None,
        "UDP",
        w.addr,
        &format!("{}Event: presence\r\n", bearer(&token)),
    );
    let m = w.request(app.sip, &sub).await;
    assert_eq!(status(&m), 200, "{}", m.first_line);
    assert_eq!(Scrape::of(&app).await.get("sipreg_subscriptions"), 1.0);
    let mut copies = 0;
    while w.notify(Duration::from_millis(800), 0).await.is_some() {
        copies += 1;
    }
    assert!(
        copies >= 2,
        "the NOTIFY was retransmitted ({copies} copies)"
    );
    eventually("removal after Timer F", WAIT, || {
        app.presence.subscriptions.is_empty()
    })
    .await;
    let last = Scrape::of(&app).await;
    assert_eq!(moved(&after, &last, "sipreg_notify_sent_total"), 1.0);
    assert_eq!(
        moved(&after, &last, "sipreg_notify_retransmissions_total"),
        f64::from(copies - 1)
    );
    assert_eq!(moved(&after, &last, "sipreg_notify_timeouts_total"), 1.0);
    assert_eq!(last.get("sipreg_subscriptions"), 0.0);
}

#[tokio::test]
async fn ready_is_503_with_a_reason_when_the_store_is_gone() {
    let app = AppServer::start(|_| {}).await;
    assert_eq!(get(app.http, "/ready").await.0, 200);
    app.users.store().pool().close().await;
    let (code, body) = get(app.http, "/ready").await;
    assert_eq!(code, 503);
    assert_eq!(body["reason"], "database unavailable", "{body}");
    // Alive all the same.
    assert_eq!(get(app.http, "/health").await.0, 200);
}

#[tokio::test]
async fn metrics_off_answers_404_and_health_stays() {
    let app = AppServer::start(|c| c.metrics.enabled = false).await;
    let r = reqwest::get(format!("http://{}/metrics", app.http))
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(get(app.http, "/health").await.0, 200);
    assert_eq!(get(app.http, "/ready").await.0, 200);
}

#[tokio::test]
async fn tls_handshakes_and_connections_are_counted() {
    let cert = common::ws::lab_cert();
    let app = AppServer::start(|c| {
        let dir = c.tokens.key_dir.parent().unwrap().to_path_buf();
        std::fs::write(dir.join("cert.pem"), &cert.cert_pem).unwrap();
        std::fs::write(dir.join("key.pem"), &cert.key_pem).unwrap();
        c.tls.listen = "127.0.0.1:0".parse().unwrap();
        c.tls.cert_file = dir.join("cert.pem");
        c.tls.key_file = dir.join("key.pem");
        c.tls.reload_poll_secs = 0;
    })
    .await;
    let sips = app.sips.expect("TLS is on");
    let before = Scrape::of(&app).await;
    // Not TLS at all: the handshake fails.
    let mut plain = TcpStream::connect(sips).await.unwrap();
    plain
        .write_all(request("OPTIONS", "mtls0", "").as_bytes())
        .await
        .unwrap();
    let cut = tcp_read(&mut plain, WAIT).await;
    assert!(cut.closed, "plain SIP on the TLS port is cut off");
    // A real handshake, and the connection kept open across the scrape. No SIP on it:
    // the core's message counters are published as they stand (`absolute`, which keeps
    // the largest value seen in the process), and they are the other test's to check.
    let tcp = TcpStream::connect(sips).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let tls = common::ws::tls_connector(&cert)
        .connect(name, tcp)
        .await
        .expect("handshake");
    // The server registers the flow once its side of the handshake is done.
    let mut after = Scrape::of(&app).await;
    for _ in 0..50 {
        if after.get("sipreg_connections{transport=\"tls\"}") == 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        after = Scrape::of(&app).await;
    }
    assert_eq!(after.get("sipreg_connections{transport=\"tls\"}"), 1.0);
    assert_eq!(
        moved(
            &before,
            &after,
            "sipreg_tls_handshakes_total{result=\"ok\"}"
        ),
        1.0
    );
    assert_eq!(
        moved(
            &before,
            &after,
            "sipreg_tls_handshakes_total{result=\"failed\"}"
        ),
        1.0
    );
    drop(tls);
}
