//! `sipreg bench` (the load generator) against an in-process sipreg and against small
//! scripted servers: counts and status codes only, never timings.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::{AppServer, TestServer};
use sipreg::loadgen::plan::{Load, Model, Plan, Proto, Scenario};
use sipreg::loadgen::report::Report;
use sipreg::loadgen::users::{User, generated};
use sipreg::sip::headers::HeaderName;
use sipreg::sip::{Limits, Message, Response, parse_datagram};
use tokio::net::UdpSocket;

/// A plan that stops after `calls` calls (the duration is only an upper bound).
fn plan(target: SocketAddr, scenario: Scenario, users: Vec<User>, calls: u64) -> Plan {
    let auth = users.iter().any(|u| !u.token.is_empty());
    Plan {
        target,
        scenario,
        proto: Proto::Udp,
        users: Arc::from(users),
        auth,
        load: Load::Concurrency(8),
        duration: Duration::from_secs(30),
        warmup: Duration::ZERO,
        max_calls: Some(calls),
        lanes: 4,
        t1: Duration::from_millis(500),
        t2: Duration::from_secs(4),
        timeout: Duration::from_secs(10),
        sla: Duration::from_secs(10),
        expires: 600,
        domain: "example.com".into(),
        progress: false,
        connect: Default::default(),
        workload: Default::default(),
    }
}

fn codes(r: &Report) -> Vec<(u16, u64)> {
    r.statuses.iter().map(|(c, n)| (*c, *n)).collect()
}

async fn run(p: Plan) -> Report {
    sipreg::loadgen::run(p).await.expect("the run completes")
}

/// `n` users in the app's store with access tokens, as `sipreg sipp-users` makes them.
async fn users_with_tokens(app: &AppServer, n: usize) -> Vec<User> {
    let mut out = Vec::new();
    for i in 0..n {
        let name = format!("lg{i}");
        let u = common::add_user(&app.users, &name, &[]).await;
        let token = app.users.issue_token(&u, None, Some(600)).expect("token");
        out.push(User {
            name,
            password: common::PASSWORD.into(),
            token: token.access_token,
            spare: Vec::new(),
        });
    }
    out
}

#[tokio::test]
async fn register_without_auth_every_call_gets_200_and_a_binding() {
    let app = AppServer::start(|c| c.auth.required = false).await;
    let r = run(plan(app.sip, Scenario::Register, generated("aor", 50), 200)).await;
    assert_eq!(r.sent, 200);
    assert_eq!(codes(&r), [(200, 200)]);
    assert_eq!((r.timeouts, r.unmatched, r.skipped), (0, 0, 0));
    assert_eq!(
        r.latency.p50_us > 0,
        r.answered > 0,
        "every answer has a latency"
    );
    // 50 distinct AORs, each registered then refreshed with the same Contact.
    assert_eq!(app.registrar.table.aors(), 50);
    assert_eq!(app.registrar.table.bindings(), 50);
}

#[tokio::test]
async fn register_over_tcp() {
    let app = AppServer::start(|c| c.auth.required = false).await;
    let mut p = plan(app.sip, Scenario::Register, generated("tcp", 20), 60);
    p.proto = Proto::Tcp;
    p.lanes = 3;
    let r = run(p).await;
    assert_eq!(codes(&r), [(200, 60)]);
    assert_eq!(r.retransmissions, 0, "TCP never retransmits");
    assert_eq!(app.registrar.table.aors(), 20);
}

#[tokio::test]
async fn register_over_tcp_with_a_connection_per_call() {
    let app = AppServer::start(|c| c.auth.required = false).await;
    let mut p = plan(app.sip, Scenario::Register, generated("pc", 6), 18);
    p.proto = Proto::Tcp;
    p.load = Load::Concurrency(3);
    p.connect.per_call = true;
    let r = run(p).await;
    assert_eq!(codes(&r), [(200, 18)]);
    assert_eq!((r.connects, r.connect_errors, r.tls_resumed), (18, 0, 0));
    // Each call had its own connection, the lanes as many as the calls in flight.
    assert_eq!(r.lanes, 3);
    assert_eq!(app.registrar.table.aors(), 6);
}

#[tokio::test]
async fn register_auth_is_one_401_then_200_per_aor() {
    let app = AppServer::start(|_| {}).await;
    let users = users_with_tokens(&app, 6).await;
    // 12 calls for 6 users: each user's first call is 401 then Bearer 200, the second
    // sends the token straight away.
    let r = run(plan(app.sip, Scenario::RegisterAuth, users, 12)).await;
    assert_eq!(codes(&r), [(200, 12), (401, 6)]);
    assert_eq!(r.sent, 18);
    assert_eq!(app.registrar.table.aors(), 6);
}

#[tokio::test]
async fn register_with_cached_bearer_tokens() {
    let app = AppServer::start(|_| {}).await;
    let users = users_with_tokens(&app, 4).await;
    let r = run(plan(app.sip, Scenario::Register, users, 40)).await;
    assert_eq!(codes(&r), [(200, 40)]);
}

#[tokio::test]
async fn register_digest_answers_the_challenge_and_reuses_the_nonce() {
    let app = AppServer::start(|_| {}).await;
    let users = users_with_tokens(&app, 4).await;
    let r = run(plan(app.sip, Scenario::RegisterDigest, users, 12)).await;
    // One challenge per user, then every REGISTER authenticated with the next nonce-count.
    assert_eq!(codes(&r), [(200, 12), (401, 4)]);
    assert_eq!(r.unusable_challenges, 0);
    assert_eq!(app.registrar.table.aors(), 4);
}

#[tokio::test]
async fn register_without_credentials_gets_401s() {
    let app = AppServer::start(|_| {}).await;
    let r = run(plan(app.sip, Scenario::Register, generated("anon", 5), 10)).await;
    assert_eq!(codes(&r), [(401, 10)]);
    assert_eq!(app.registrar.table.aors(), 0);
}

#[tokio::test]
async fn options_against_the_sip_core() {
    let server = TestServer::start().await;
    let mut p = plan(server.addr, Scenario::Options, generated("o", 10), 100);
    p.load = Load::Rate(2000.0);
    let r = run(p).await;
    assert_eq!(codes(&r), [(200, 100)]);
}

#[tokio::test]
async fn subscribe_against_sipreg_presence() {
    let app = AppServer::start(|_| {}).await;
    let users = users_with_tokens(&app, 4).await;
    let mut p = plan(app.sip, Scenario::Subscribe, users, 8);
    p.load = Load::Concurrency(4);
    let r = run(p).await;
    // Each watcher subscribes, then refreshes inside the dialog; every SUBSCRIBE is
    // followed by a NOTIFY, which the generator answers.
    assert_eq!(r.answered, 8);
    assert_eq!(
        r.statuses
            .iter()
            .filter(|(c, _)| (200..300).contains(*c))
            .map(|(_, n)| n)
            .sum::<u64>(),
        8,
        "{:?}",
        r.statuses
    );
    assert_eq!(r.notify_received, 8);
    assert_eq!(r.notify_answered, 8);
    assert_eq!(r.unmatched, 0);
}

#[tokio::test]
async fn publish_against_sipreg_presence() {
    let app = AppServer::start(|_| {}).await;
    let users = users_with_tokens(&app, 4).await;
    // An initial PUBLISH per user, then refreshes by entity-tag: all 200.
    let r = run(plan(app.sip, Scenario::Publish, users, 12)).await;
    assert_eq!(codes(&r), [(200, 12)]);
}

#[tokio::test]
async fn presence_scenarios_against_a_core_without_presence() {
    // A core with no presence service answers 501; the generator must count that and
    // leave no dialog or entity-tag behind.
    let server = TestServer::start().await;
    let r = run(plan(server.addr, Scenario::Subscribe, generated("w", 4), 8)).await;
    assert_eq!(codes(&r), [(501, 8)]);
    assert_eq!(r.notify_received, 0);
    let r = run(plan(server.addr, Scenario::Publish, generated("p", 4), 8)).await;
    assert_eq!(codes(&r), [(501, 8)]);
}

/// A scripted UDP server: `answer` gets each parsed request and its sequence number and
/// returns the datagrams to send back to the source.
async fn scripted<F>(answer: F) -> SocketAddr
where
    F: Fn(&Message, u64, SocketAddr) -> Vec<Bytes> + Send + 'static,
{
    let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let addr = sock.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_535];
        let mut n = 0u64;
        while let Ok((len, src)) = sock.recv_from(&mut buf).await {
            let Ok(msg) = parse_datagram(Bytes::copy_from_slice(&buf[..len]), &Limits::default())
            else {
                continue;
            };
            n += 1;
            for out in answer(&msg, n, src) {
                let _ = sock.send_to(&out, src).await;
            }
        }
    });
    addr
}

#[tokio::test]
async fn every_other_datagram_dropped_means_one_retransmission_per_request() {
    let server = scripted(|msg, n, src| {
        if n % 2 == 1 {
            return vec![];
        }
        vec![Response::new(200).encode(msg, src, "srv")]
    })
    .await;
    let mut p = plan(server, Scenario::Register, generated("d", 1), 20);
    p.lanes = 1;
    p.load = Load::Concurrency(1);
    p.t1 = Duration::from_millis(20);
    let r = run(p).await;
    assert_eq!(codes(&r), [(200, 20)]);
    assert_eq!(r.sent, 20);
    assert_eq!(r.retransmissions, 20);
    assert_eq!(r.timeouts, 0);
    assert!(!r.sustained, "a run with retransmissions is not sustained");
}

#[tokio::test]
async fn a_silent_server_means_timeouts_after_retransmissions() {
    let server = scripted(|_, _, _| vec![]).await;
    let mut p = plan(server, Scenario::Options, generated("s", 5), 5);
    p.lanes = 1;
    p.load = Load::Concurrency(5);
    p.t1 = Duration::from_millis(100);
    p.timeout = Duration::from_millis(1000);
    let r = run(p).await;
    assert_eq!(r.sent, 5);
    assert_eq!(r.answered, 0);
    assert_eq!(r.timeouts, 5);
    // Timer E: copies at 100, 300 and 700 ms before the 1 s timeout.
    assert!(
        (5..=15).contains(&r.retransmissions),
        "{}",
        r.retransmissions
    );
}

#[tokio::test]
async fn subscribe_counts_and_answers_notifies_and_refreshes_in_the_dialog() {
    let answered = Arc::new(AtomicU64::new(0));
    let in_dialog = Arc::new(AtomicU64::new(0));
    let (a, d) = (Arc::clone(&answered), Arc::clone(&in_dialog));
    let server = scripted(move |msg, n, src| {
        if msg.is_response() {
            // The generator's 200 to our NOTIFY.
            if msg.first_line.starts_with("SIP/2.0 200") {
                a.fetch_add(1, Ordering::Relaxed);
            }
            return vec![];
        }
        let to = msg
            .headers
            .first(HeaderName::To)
            .map(|v| v.to_string())
            .unwrap_or_default();
        if to.contains("tag=") {
            d.fetch_add(1, Ordering::Relaxed);
        }
        let ok = Response::new(200)
            .header("Expires", "600")
            .encode(msg, src, "dlg");
        let from = msg
            .headers
            .first(HeaderName::From)
            .map(|v| v.to_string())
            .unwrap_or_default();
        let call = msg
            .headers
            .first(HeaderName::CallId)
            .map(|v| v.to_string())
            .unwrap_or_default();
        let notify = format!(
            "NOTIFY sip:w@{src} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bKn{n}\r\n\
             From: {to};tag=dlg\r\nTo: {from}\r\nCall-ID: {call}\r\nCSeq: {n} NOTIFY\r\n\
             Event: presence\r\nSubscription-State: active;expires=600\r\nContent-Length: 0\r\n\r\n"
        );
        vec![ok, Bytes::from(notify)]
    })
    .await;
    let mut p = plan(server, Scenario::Subscribe, generated("w", 3), 9);
    p.load = Load::Concurrency(3);
    p.lanes = 3;
    let r = run(p).await;
    assert_eq!(codes(&r), [(200, 9)]);
    // Every SUBSCRIBE got one NOTIFY; each was answered (the last ones may still be on
    // the way to the server when the run ends, so that side is at most).
    assert_eq!(r.notify_received, r.notify_answered);
    assert!(r.notify_received >= 6, "{}", r.notify_received);
    assert!(answered.load(Ordering::Relaxed) <= 9);
    // Three watchers, three calls each: the second and third are in-dialog refreshes.
    assert_eq!(in_dialog.load(Ordering::Relaxed), 6);
}

#[tokio::test]
async fn publish_refreshes_with_the_entity_tag() {
    let refreshes = Arc::new(AtomicU64::new(0));
    let bodies = Arc::new(AtomicU64::new(0));
    let (rf, bd) = (Arc::clone(&refreshes), Arc::clone(&bodies));
    let server = scripted(move |msg, n, src| {
        if msg
            .headers
            .first(HeaderName::SipIfMatch)
            .is_some_and(|t| t.starts_with("etag-"))
        {
            rf.fetch_add(1, Ordering::Relaxed);
        } else if !msg.body.is_empty() {
            bd.fetch_add(1, Ordering::Relaxed);
        }
        vec![
            Response::new(200)
                .header("SIP-ETag", format!("etag-{n}"))
                .header("Expires", "600")
                .encode(msg, src, "p"),
        ]
    })
    .await;
    let r = run(plan(server, Scenario::Publish, generated("pub", 4), 12)).await;
    assert_eq!(codes(&r), [(200, 12)]);
    // One initial publication with a PIDF body per user, then refreshes by entity-tag.
    assert_eq!(bodies.load(Ordering::Relaxed), 4);
    assert_eq!(refreshes.load(Ordering::Relaxed), 8);
}

#[tokio::test]
async fn refuses_targets_off_loopback() {
    let p = plan(
        "192.0.2.1:5060".parse().expect("addr"),
        Scenario::Options,
        generated("x", 1),
        1,
    );
    let err = sipreg::loadgen::run(p).await.expect_err("refused");
    assert!(err.contains("loopback"), "{err}");
}

#[tokio::test]
async fn closed_loop_replaces_a_timed_out_call_at_once() {
    let server = scripted(|_, _, _| vec![]).await;
    let mut p = plan(server, Scenario::Options, generated("t", 1), 3);
    p.lanes = 1;
    p.load = Load::Concurrency(1);
    p.t1 = Duration::from_millis(100);
    p.timeout = Duration::from_millis(200);
    // Three calls one after the other, each replaced as soon as it times out (not when
    // the 30 s run would end, which would leave one call sent).
    let r = run(p).await;
    assert_eq!((r.sent, r.timeouts, r.answered), (3, 3, 0));
}

/// `n` bench users (one shared password) with `tokens` access tokens each, made as
/// `sipreg bench-users` makes them.
async fn bench_users(app: &AppServer, prefix: &str, n: usize, tokens: usize) -> Vec<User> {
    let names: Vec<String> = (0..n).map(|i| format!("{prefix}{i}")).collect();
    let hash = app
        .users
        .bench_password_hash(common::PASSWORD)
        .await
        .expect("hash");
    let made = app
        .users
        .create_bench_users(&names, common::PASSWORD, &hash)
        .await
        .expect("bench users");
    let minted = app
        .users
        .issue_bench_tokens(&made, tokens, 600)
        .expect("tokens");
    names
        .into_iter()
        .zip(minted)
        .map(|(name, mut t)| {
            let first = t.remove(0);
            User {
                name,
                password: common::PASSWORD.into(),
                token: first,
                spare: t,
            }
        })
        .collect()
}

/// A scripted server that answers every request 200 and counts the Bearer tokens sent.
async fn token_counter() -> (
    SocketAddr,
    Arc<std::sync::Mutex<std::collections::HashMap<String, u32>>>,
) {
    let seen = Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
    let counts = Arc::clone(&seen);
    let addr = scripted(move |msg, _, src| {
        let token = msg
            .headers
            .first(HeaderName::Authorization)
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("none")
            .to_string();
        *counts.lock().expect("lock").entry(token).or_insert(0) += 1;
        vec![Response::new(200).encode(msg, src, "srv")]
    })
    .await;
    (addr, seen)
}

#[tokio::test]
async fn fleet_registers_every_user_and_reuses_each_token() {
    let app = AppServer::start(|_| {}).await;
    let users = bench_users(&app, "fl", 4, 2).await;
    // One call at a time on one lane: users in turn, six calls each.
    let mut p = plan(app.sip, Scenario::Register, users.clone(), 24);
    p.workload.model = Model::Fleet;
    p.workload.token_uses = 3;
    p.lanes = 1;
    p.load = Load::Concurrency(1);
    let r = run(p.clone()).await;
    assert_eq!(codes(&r), [(200, 24)]);
    // Every user's binding is listed by the server.
    let listed: Vec<String> = app
        .registrar
        .table
        .list(0, 100, sipreg::clock::unix_now())
        .into_iter()
        .map(|(aor, _)| aor.to_string())
        .collect();
    for u in &users {
        assert!(
            listed.iter().any(|a| a.contains(&format!("{}@", u.name))),
            "{} in {listed:?}",
            u.name
        );
    }
    assert_eq!(listed.len(), 4);
    // On the wire: six calls per user, three with each token (users start at different
    // points of their first token's uses, and wrap around to it after the second).
    let (server, seen) = token_counter().await;
    p.target = server;
    let r = run(p).await;
    assert_eq!(codes(&r), [(200, 24)]);
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 8, "both tokens of every user: {seen:?}");
    for u in &users {
        assert_eq!(seen.get(&u.token), Some(&3));
        assert_eq!(seen.get(&u.spare[0]), Some(&3));
    }
}

#[tokio::test]
async fn first_sighting_sends_each_token_once_and_stops_when_all_are_sent() {
    let app = AppServer::start(|_| {}).await;
    let users = bench_users(&app, "fs", 3, 3).await;
    let mut p = plan(app.sip, Scenario::Register, users.clone(), 1000);
    p.workload.model = Model::FirstSighting;
    let r = run(p.clone()).await;
    // Nine tokens, each validated by the server once: nine 200s, then the run ends.
    assert_eq!(codes(&r), [(200, 9)]);
    assert_eq!((r.sent, r.skipped), (9, 0));
    assert_eq!(app.registrar.table.aors(), 3);
    let (server, seen) = token_counter().await;
    p.target = server;
    p.load = Load::Rate(200.0);
    let r = run(p).await;
    assert_eq!(codes(&r), [(200, 9)]);
    let seen = seen.lock().expect("lock").clone();
    let all: Vec<&String> = users
        .iter()
        .flat_map(|u| std::iter::once(&u.token).chain(&u.spare))
        .collect();
    assert_eq!(seen.len(), 9);
    for t in all {
        assert_eq!(seen.get(t), Some(&1), "each token once");
    }
}

#[tokio::test]
async fn digest_with_a_fresh_nonce_is_a_401_then_a_200_per_registration() {
    let app = AppServer::start(|_| {}).await;
    let users = bench_users(&app, "dg", 4, 1).await;
    let mut p = plan(app.sip, Scenario::RegisterDigest, users, 12);
    p.workload.fresh_nonce = true;
    let r = run(p).await;
    // The 12 calls are 12 registrations, each a challenge and an answer.
    assert_eq!(codes(&r), [(200, 12), (401, 12)]);
    assert_eq!(
        (r.registered, r.challenges, r.unusable_challenges),
        (12, 12, 0)
    );
    // The window counts registrations: the challenges are not answers in time or late.
    assert_eq!(
        (r.windows[0].answered, r.windows[0].in_time_pct),
        (12, 100.0)
    );
    assert_eq!(app.registrar.table.aors(), 4);
}

#[tokio::test]
async fn windows_report_the_servers_rss() {
    let app = AppServer::start(|c| c.auth.required = false).await;
    let mut p = plan(app.sip, Scenario::Register, generated("w", 5), 10);
    // The test process is the server here.
    p.workload.server_pid = Some(std::process::id());
    let r = run(p).await;
    assert_eq!(codes(&r), [(200, 10)]);
    assert_eq!(r.windows.len(), 1);
    assert_eq!(r.windows[0].answered, 10);
    assert!(r.windows[0].rss_kib.is_some_and(|k| k > 0));
}

#[tokio::test]
async fn bench_users_command_makes_users_that_log_in_and_tokens_that_validate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = common::app_config(dir.path());
    let toml = format!(
        "[database]\nurl = \"{}\"\n[tokens]\nkey_dir = \"{}\"\n[users]\nargon2_memory_kib = 64\nargon2_iterations = 1\n",
        config.database.url,
        config.tokens.key_dir.display()
    );
    let file = dir.path().join("sipreg.toml");
    std::fs::write(&file, toml).expect("config");
    let (out, kam) = (dir.path().join("users.csv"), dir.path().join("kam.db"));
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_sipreg"))
        .arg("--config")
        .arg(&file)
        .args([
            "bench-users",
            "--count",
            "25",
            "--prefix",
            "bu",
            "--tokens-per-user",
            "2",
        ])
        .args(["--password", common::PASSWORD, "--out"])
        .arg(&out)
        .arg("--kamailio-db")
        .arg(&kam)
        .env_remove("SIPREG_CONFIG")
        .env_remove("SIPREG_DATABASE_URL")
        .status()
        .expect("runs");
    assert!(status.success());
    let users = sipreg::loadgen::users::read_csv(&out).expect("users file");
    assert_eq!(users.len(), 25);
    assert!(users.iter().all(|u| u.tokens() == 2));
    let svc = sipreg::users::UsersService::open(&config)
        .await
        .expect("store");
    for u in [&users[0], &users[24]] {
        let user = svc
            .check_password(&u.name, common::PASSWORD, None)
            .await
            .expect("the shared password logs in");
        assert_eq!(user.roles, ["bench"]);
        for t in [u.token_at(0), u.token_at(1)] {
            let claims = svc.validate(t).await.expect("the token validates");
            assert_eq!(claims.username, u.name);
        }
    }
    // Kamailio's subscribers: HA1 = MD5(user:realm:password).
    let pool = sqlx::AnyPool::connect(&format!("sqlite://{}", kam.display()))
        .await
        .expect("Kamailio db");
    let (n, ha1): (i64, String) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM subscriber), ha1 FROM subscriber WHERE username = 'bu7'",
    )
    .fetch_one(&pool)
    .await
    .expect("rows");
    assert_eq!(n, 25);
    use md5::Digest;
    let want = md5::Md5::digest(format!("bu7:127.0.0.1:{}", common::PASSWORD).as_bytes());
    assert_eq!(
        ha1,
        want.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
}
