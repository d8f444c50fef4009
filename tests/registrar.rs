//! The registrar end to end over real sockets: authentication (Bearer, Digest), every
//! status code of RFC 3261 §10.3 processing, binding identity, expiry, persistence across
//! a clean restart and a kill -9, TCP and UDP, and a concurrent load.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use md5::Md5;
use sha2::{Digest, Sha256};
use sipreg::registrar::Aor;
use sipreg::sip::Message;
use sipreg::sip::headers::{HeaderName, TypedHeader, WwwAuthenticate};
use tokio::net::UdpSocket;

const WAIT: Duration = Duration::from_secs(5);

/// A REGISTER for `user@example.com`.
fn register(user: &str, call_id: &str, cseq: u32, contacts: &[&str], extra: &str) -> String {
    let mut c = String::new();
    for x in contacts {
        c.push_str(&format!("Contact: {x}\r\n"));
    }
    format!(
        "REGISTER sip:example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK{call_id}{cseq};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{user}@example.com>;tag=t{call_id}\r\n\
         To: <sip:{user}@example.com>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} REGISTER\r\n\
         {c}{extra}Content-Length: 0\r\n\r\n"
    )
}

async fn send(server: SocketAddr, msg: &str) -> Message {
    let r = udp_exchange(server, msg.as_bytes(), WAIT).await;
    assert_eq!(r.len(), 1, "one answer expected, got {r:?}");
    parse(&r[0])
}

fn contacts_of(m: &Message) -> Vec<String> {
    m.headers
        .all(HeaderName::Contact)
        .map(|h| h.value.to_string())
        .collect()
}

fn challenges(m: &Message) -> Vec<String> {
    m.headers
        .all(HeaderName::WwwAuthenticate)
        .map(|h| h.value.to_string())
        .collect()
}

async fn token(app: &AppServer, user: &sipreg::users::User, scopes: Option<&[&str]>) -> String {
    let scopes: Option<Vec<String>> = scopes.map(|s| s.iter().map(|x| x.to_string()).collect());
    app.users
        .issue_token(user, scopes.as_deref(), None)
        .unwrap()
        .access_token
}

fn bearer(t: &str) -> String {
    format!("Authorization: Bearer {t}\r\n")
}

#[tokio::test]
async fn no_credentials_get_one_challenge_per_scheme() {
    let app = AppServer::start(|_| {}).await;
    let m = send(
        app.sip,
        &register("alice", "nc1", 1, &["<sip:alice@192.0.2.10>"], ""),
    )
    .await;
    assert_eq!(status(&m), 401);
    let ch = challenges(&m);
    assert_eq!(ch.len(), 3, "{ch:?}");
    assert!(
        ch[0].starts_with(
            "Bearer realm=\"sipreg\", scope=\"sip.register\", authz_server=\"https://sipreg.local\""
        ),
        "{}",
        ch[0]
    );
    assert!(
        ch[1].starts_with("Digest ")
            && ch[1].contains("algorithm=SHA-256")
            && ch[1].contains("qop=\"auth\"")
    );
    assert!(ch[2].contains("algorithm=MD5"));
    // An unknown scheme counts as no credentials (RFC 4475 §3.3.7).
    let m = send(
        app.sip,
        &register(
            "alice",
            "nc2",
            1,
            &[],
            "Authorization: NoOneKnowsThisScheme opaque-data=here\r\n",
        ),
    )
    .await;
    assert_eq!(status(&m), 401);
    assert_eq!(app.registrar.table.bindings(), 0);
}

#[tokio::test]
async fn bearer_register_fetch_and_errors() {
    // No leeway, so a token one second old is really expired.
    let app = AppServer::start(|c| c.tokens.leeway_secs = 0).await;
    let alice = add_user(&app.users, "alice", &[]).await;
    let bob = add_user(&app.users, "bob", &[]).await;
    let t = token(&app, &alice, None).await;

    let m = send(
        app.sip,
        &register(
            "alice",
            "b1",
            1,
            &["<sip:alice@192.0.2.10:5060>;expires=600"],
            &bearer(&t),
        ),
    )
    .await;
    assert_eq!(status(&m), 200);
    let c = contacts_of(&m);
    assert_eq!(c.len(), 1);
    assert!(
        c[0].starts_with("<sip:alice@192.0.2.10:5060>;expires="),
        "{c:?}"
    );
    let left: u32 = c[0].split("expires=").nth(1).unwrap().parse().unwrap();
    assert!((598..=600).contains(&left));
    assert!(m.headers.first(HeaderName::Date).is_some());
    // Fetch: no Contact lists the bindings and changes nothing.
    let m = send(app.sip, &register("alice", "b2", 1, &[], &bearer(&t))).await;
    assert_eq!((status(&m), contacts_of(&m).len()), (200, 1));

    // A garbage token: 401 with error="invalid_token".
    let m = send(
        app.sip,
        &register("alice", "b3", 1, &[], &bearer("not.a.jwt")),
    )
    .await;
    assert_eq!(status(&m), 401);
    assert!(challenges(&m)[0].contains("error=\"invalid_token\""));
    // Valid token without sip.register: 403 insufficient_scope.
    let weak = token(&app, &alice, Some(&["presence.read"])).await;
    let m = send(app.sip, &register("alice", "b4", 1, &[], &bearer(&weak))).await;
    assert_eq!(status(&m), 403);
    assert!(challenges(&m)[0].contains("error=\"insufficient_scope\""));
    // Bob's token for Alice's AOR: 403.
    let tb = token(&app, &bob, None).await;
    let m = send(
        app.sip,
        &register("alice", "b5", 1, &["<sip:bob@192.0.2.11>"], &bearer(&tb)),
    )
    .await;
    assert_eq!(status(&m), 403);
    assert_eq!(
        app.registrar
            .table
            .get(&Aor::parse("sip:alice@example.com").unwrap(), 0)
            .len(),
        1
    );
    // An expired token is refused as invalid.
    let old = app
        .users
        .issue_token(&alice, None, Some(1))
        .unwrap()
        .access_token;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let m = send(app.sip, &register("alice", "b6", 1, &[], &bearer(&old))).await;
    assert_eq!(status(&m), 401);
}

#[tokio::test]
async fn admin_may_register_others_but_not_unknown_users() {
    let app = AppServer::start(|_| {}).await;
    let root = add_user(&app.users, "root", &["admin"]).await;
    add_user(&app.users, "carol", &[]).await;
    let t = token(&app, &root, None).await;
    let m = send(
        app.sip,
        &register("carol", "a1", 1, &["<sip:carol@192.0.2.12>"], &bearer(&t)),
    )
    .await;
    assert_eq!(status(&m), 200);
    let m = send(
        app.sip,
        &register("nobody", "a2", 1, &["<sip:n@192.0.2.13>"], &bearer(&t)),
    )
    .await;
    assert_eq!(status(&m), 404);
}

fn hex_md5(s: &str) -> String {
    Md5::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn hex_sha256(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn digest_header(ch: &str, user: &str, password: &str, uri: &str, nc: &str, sha: bool) -> String {
    let a = WwwAuthenticate::parse_str(ch).unwrap().0;
    let realm = a.param("realm").unwrap();
    let nonce = a.param("nonce").unwrap();
    let h = |s: &str| if sha { hex_sha256(s) } else { hex_md5(s) };
    let ha1 = h(&format!("{user}:{realm}:{password}"));
    let ha2 = h(&format!("REGISTER:{uri}"));
    let response = h(&format!("{ha1}:{nonce}:{nc}:abcdef:auth:{ha2}"));
    format!(
        "Authorization: Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\", algorithm={}, qop=auth, nc={nc}, cnonce=\"abcdef\"\r\n",
        if sha { "SHA-256" } else { "MD5" }
    )
}

#[tokio::test]
async fn digest_sha256_and_md5_replay_and_wrong_password() {
    let app = AppServer::start(|_| {}).await;
    add_user(&app.users, "dave", &[]).await;
    for (i, sha) in [(0, true), (1, false)] {
        let m = send(
            app.sip,
            &register("dave", &format!("d{i}"), 1, &["<sip:dave@192.0.2.14>"], ""),
        )
        .await;
        let ch = challenges(&m)[if sha { 1 } else { 2 }].clone();
        let auth = digest_header(&ch, "dave", PASSWORD, "sip:example.com", "00000001", sha);
        let m = send(
            app.sip,
            &register(
                "dave",
                &format!("d{i}"),
                2,
                &["<sip:dave@192.0.2.14>"],
                &auth,
            ),
        )
        .await;
        assert_eq!(status(&m), 200, "sha={sha}");
        // The same nonce-count again is a replay: challenged afresh, stale.
        let m = send(app.sip, &register("dave", &format!("d{i}"), 3, &[], &auth)).await;
        assert_eq!(status(&m), 401);
        assert!(challenges(&m)[1].contains("stale=true"));
    }
    let m = send(app.sip, &register("dave", "dw", 1, &[], "")).await;
    let bad = digest_header(
        &challenges(&m)[1],
        "dave",
        "wrong-password-123",
        "sip:example.com",
        "00000001",
        true,
    );
    assert_eq!(
        status(&send(app.sip, &register("dave", "dw", 2, &[], &bad)).await),
        401
    );
    // The digest uri must be the Request-URI.
    let m = send(app.sip, &register("dave", "du", 1, &[], "")).await;
    let wrong_uri = digest_header(
        &challenges(&m)[1],
        "dave",
        PASSWORD,
        "sip:elsewhere.com",
        "00000001",
        true,
    );
    assert_eq!(
        status(&send(app.sip, &register("dave", "du", 2, &[], &wrong_uri)).await),
        400
    );
}

#[tokio::test]
async fn repeated_failures_are_throttled() {
    let app = AppServer::start(|c| {
        c.auth.max_failures = 3;
        c.auth.failure_window_secs = 30;
    })
    .await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut codes = Vec::new();
    for i in 0..5 {
        sock.send_to(
            register("eve", &format!("th{i}"), 1, &[], &bearer("garbage.token.x")).as_bytes(),
            app.sip,
        )
        .await
        .unwrap();
        let r = udp_collect(&sock, WAIT).await;
        codes.push(status(&parse(&r[0])));
        if i == 4 {
            let m = parse(&r[0]);
            assert!(m.headers.other("Retry-After").is_some());
        }
    }
    assert_eq!(codes, [401, 401, 401, 403, 403]);
}

#[tokio::test]
async fn section_10_3_codes_identity_and_atomicity() {
    let app = AppServer::start(|c| {
        c.sip.domains = vec!["example.com".into()];
        c.registrar.max_contacts = 3;
    })
    .await;
    let alice = add_user(&app.users, "alice", &[]).await;
    let t = bearer(&token(&app, &alice, None).await);
    let aor = Aor::parse("sip:alice@example.com").unwrap();
    // Another domain: 404.
    let other = register("alice", "x1", 1, &[], &t)
        .replace("REGISTER sip:example.com", "REGISTER sip:example.org");
    assert_eq!(status(&send(app.sip, &other).await), 404);
    // Below the minimum: 423 with Min-Expires.
    let m = send(
        app.sip,
        &register("alice", "x2", 1, &["<sip:a@192.0.2.1>;expires=10"], &t),
    )
    .await;
    assert_eq!(status(&m), 423);
    assert_eq!(m.headers.first(HeaderName::MinExpires), Some("60"));
    // Above the maximum: shortened.
    let m = send(
        app.sip,
        &register(
            "alice",
            "x3",
            1,
            &["<sip:a@192.0.2.1>"],
            &format!("{t}Expires: 999999\r\n"),
        ),
    )
    .await;
    assert!(
        contacts_of(&m)[0].ends_with("expires=86400"),
        "{:?}",
        contacts_of(&m)
    );
    // Same Call-ID, CSeq not higher: refused, binding untouched.
    let m = send(
        app.sip,
        &register("alice", "x3", 1, &["<sip:a@192.0.2.1>;expires=0"], &t),
    )
    .await;
    assert_eq!(status(&m), 400);
    assert_eq!(app.registrar.table.get(&aor, 0).len(), 1);
    // Atomic: one bad contact (below minimum) and nothing of the request is applied.
    let m = send(
        app.sip,
        &register(
            "alice",
            "x4",
            1,
            &["<sip:a@192.0.2.2>", "<sip:a@192.0.2.3>;expires=5"],
            &t,
        ),
    )
    .await;
    assert_eq!(status(&m), 423);
    assert_eq!(app.registrar.table.get(&aor, 0).len(), 1);
    // '*' needs Expires: 0 and to be alone.
    assert_eq!(
        status(&send(app.sip, &register("alice", "x5", 1, &["*"], &t)).await),
        400
    );
    assert_eq!(
        status(
            &send(
                app.sip,
                &register(
                    "alice",
                    "x5",
                    2,
                    &["*", "<sip:a@192.0.2.9>"],
                    &format!("{t}Expires: 0\r\n")
                )
            )
            .await
        ),
        400
    );
    // Two devices with instance ids, then one re-registers from a new address and port.
    let d1 = "<sip:alice@192.0.2.20:5060>;+sip.instance=\"<urn:uuid:00000000-0000-0000-0000-000000000001>\";reg-id=1";
    let d2 = "<sip:alice@192.0.2.21:5060>;+sip.instance=\"<urn:uuid:00000000-0000-0000-0000-000000000002>\";reg-id=1";
    let m = send(
        app.sip,
        &register(
            "alice",
            "x6",
            1,
            &[d1, d2],
            &format!("{t}Supported: outbound\r\n"),
        ),
    )
    .await;
    assert_eq!(status(&m), 200);
    assert_eq!(contacts_of(&m).len(), 3);
    assert_eq!(m.headers.first(HeaderName::Require), Some("outbound"));
    let moved = d1.replace("192.0.2.20:5060", "198.51.100.9:41234");
    let m = send(app.sip, &register("alice", "x7", 1, &[&moved], &t)).await;
    let c = contacts_of(&m);
    assert_eq!(c.len(), 3, "replaced, not added: {c:?}");
    assert!(
        c.iter().any(|x| x.contains("198.51.100.9:41234"))
            && !c.iter().any(|x| x.contains("192.0.2.20"))
    );
    // A fourth contact is over the limit of 3.
    let m = send(
        app.sip,
        &register("alice", "x8", 1, &["<sip:a@192.0.2.30>"], &t),
    )
    .await;
    assert_eq!(status(&m), 403);
    assert!(m.first_line.contains("Too many registrations"));
    // '*' with Expires: 0 removes everything.
    let m = send(
        app.sip,
        &register("alice", "x9", 1, &["*"], &format!("{t}Expires: 0\r\n")),
    )
    .await;
    assert_eq!((status(&m), contacts_of(&m).len()), (200, 0));
    assert_eq!(app.registrar.table.aors(), 0);
}

#[tokio::test]
async fn path_is_stored_and_echoed_with_supported_path() {
    let app = AppServer::start(|c| c.auth.required = false).await;
    let m = send(
        app.sip,
        &register(
            "p",
            "pa1",
            1,
            &["<sip:p@192.0.2.40>"],
            "Path: <sip:edge.example.com;lr>\r\nSupported: path\r\n",
        ),
    )
    .await;
    assert_eq!(
        m.headers.first(HeaderName::Path),
        Some("<sip:edge.example.com;lr>")
    );
    let b = app
        .registrar
        .table
        .get(&Aor::parse("sip:p@example.com").unwrap(), 0);
    assert_eq!(&*b[0].path[0], "<sip:edge.example.com;lr>");
}

#[tokio::test]
async fn bindings_expire_on_time_with_an_event() {
    let app = AppServer::start(|c| {
        c.auth.required = false;
        c.registrar.min_expires = 1;
    })
    .await;
    let mut events = app.registrar.subscribe();
    let m = send(
        app.sip,
        &register("x", "e1", 1, &["<sip:x@192.0.2.50>;expires=2"], ""),
    )
    .await;
    assert_eq!(status(&m), 200);
    let added = tokio::time::timeout(WAIT, events.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(added.change, sipreg::registrar::Change::Added(_)));
    let gone = tokio::time::timeout(Duration::from_secs(6), events.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(gone.change, sipreg::registrar::Change::Expired(_)),
        "{gone:?}"
    );
    assert_eq!(app.registrar.table.bindings(), 0);
    let m = send(app.sip, &register("x", "e2", 1, &[], "")).await;
    assert_eq!(contacts_of(&m).len(), 0);
}

#[tokio::test]
async fn bindings_survive_a_clean_restart() {
    let app = AppServer::start(|c| c.auth.required = false).await;
    let config = app_config(app.dir.path());
    send(
        app.sip,
        &register(
            "r",
            "s1",
            1,
            &["<sip:r@192.0.2.60>;+sip.instance=\"<urn:uuid:9>\";reg-id=2"],
            "",
        ),
    )
    .await;
    send(
        app.sip,
        &register("r", "s1", 2, &["<sip:r@192.0.2.61>"], ""),
    )
    .await;
    let dir = app.stop().await;
    let mut config2 = config;
    config2.auth.required = false;
    let app = AppServer::start_in(dir, config2).await;
    let b = app
        .registrar
        .table
        .get(&Aor::parse("sip:r@example.com").unwrap(), 0);
    assert_eq!(b.len(), 2);
    assert!(
        b.iter()
            .any(|x| x.instance.as_deref() == Some("<urn:uuid:9>") && x.reg_id == Some(2))
    );
    // The restored binding keeps its Call-ID/CSeq: an old CSeq is still out of order.
    let m = send(
        app.sip,
        &register("r", "s1", 2, &["<sip:r@192.0.2.61>;expires=0"], ""),
    )
    .await;
    assert_eq!(status(&m), 400);
}

#[tokio::test]
async fn sync_persistence_writes_before_answering() {
    let app = AppServer::start(|c| {
        c.auth.required = false;
        c.registrar.persistence = sipreg::registrar::Persistence::Sync;
    })
    .await;
    let m = send(
        app.sip,
        &register("s", "y1", 1, &["<sip:s@192.0.2.70>"], ""),
    )
    .await;
    assert_eq!(status(&m), 200);
    let rows = sipreg::registrar::persist::load(app.users.store().pool(), 0)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "written before the 200 was sent");
}

#[tokio::test]
async fn register_over_tcp() {
    let app = AppServer::start(|c| c.auth.required = false).await;
    let msg = register("t", "tc1", 1, &["<sip:t@192.0.2.80;transport=tcp>"], "")
        .replace("SIP/2.0/UDP", "SIP/2.0/TCP");
    let r = tcp_exchange(app.sip, msg.as_bytes(), WAIT).await;
    let m = parse(&r.messages[0]);
    assert_eq!(status(&m), 200);
    let b = app
        .registrar
        .table
        .get(&Aor::parse("sip:t@example.com").unwrap(), 0);
    assert_eq!(b[0].source.transport, sipreg::server::Transport::Tcp);
    assert!(b[0].source.connection.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_aors_three_devices_concurrently_over_udp() {
    let app = AppServer::start(|c| c.auth.required = false).await;
    let server = app.sip;
    let mut tasks = Vec::new();
    for worker in 0..20u32 {
        tasks.push(tokio::spawn(async move {
            let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let mut ok = 0;
            for n in 0..50u32 {
                let user = format!("load{}", worker * 50 + n);
                let contacts: Vec<String> = (0..3)
                    .map(|d| format!("<sip:{user}@192.0.2.{d}:5060>;+sip.instance=\"<urn:uuid:{user}-{d}>\";reg-id=1"))
                    .collect();
                let refs: Vec<&str> = contacts.iter().map(String::as_str).collect();
                let msg = register(&user, &format!("L{user}"), 1, &refs, "");
                // Retransmit like a UAC until answered (loopback rarely drops).
                for _ in 0..5 {
                    sock.send_to(msg.as_bytes(), server).await.unwrap();
                    if let Some(r) = udp_collect(&sock, Duration::from_secs(2)).await.first() {
                        if status(&parse(r)) == 200 {
                            ok += 1;
                        }
                        break;
                    }
                }
            }
            ok
        }));
    }
    let mut ok = 0;
    for t in tasks {
        ok += t.await.unwrap();
    }
    assert_eq!(ok, 1000);
    assert_eq!(app.registrar.table.aors(), 1000);
    assert_eq!(app.registrar.table.bindings(), 3000);
    for i in [0, 499, 999] {
        let b = app
            .registrar
            .table
            .get(&Aor::parse(&format!("sip:load{i}@example.com")).unwrap(), 0);
        assert_eq!(b.len(), 3, "load{i}");
    }
    // And all of them reach the store.
    let dir_pool = app.users.store().pool().clone();
    let mut rows = 0;
    for _ in 0..50 {
        rows = sipreg::registrar::persist::load(&dir_pool, 0)
            .await
            .unwrap()
            .len();
        if rows == 3000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(rows, 3000);
}

#[tokio::test]
async fn registrations_api_is_admin_only() {
    let app = AppServer::start(|c| c.auth.required = false).await;
    send(
        app.sip,
        &register("api", "h1", 1, &["<sip:api@192.0.2.90>"], ""),
    )
    .await;
    let root = add_user(&app.users, "root", &["admin"]).await;
    let plain = add_user(&app.users, "plain", &[]).await;
    let admin_t = token(&app, &root, None).await;
    let user_t = token(&app, &plain, None).await;
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let base = format!("http://{}", app.http);
    let r = client
        .get(format!("{base}/registrations"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = client
        .get(format!("{base}/registrations"))
        .bearer_auth(&user_t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = client
        .get(format!("{base}/registrations"))
        .bearer_auth(&admin_t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v[0]["aor"], "sip:api@example.com");
    assert_eq!(v[0]["bindings"][0]["contact"], "sip:api@192.0.2.90");
    let r = client
        .get(format!("{base}/registrations/sip:api@example.com"))
        .bearer_auth(&admin_t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client
        .get(format!("{base}/registrations/sip:none@example.com"))
        .bearer_auth(&admin_t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spawn_binary(dir: &std::path::Path, port: u16) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_sipreg"))
        .args([
            "serve",
            "--no-auth",
            "--sip-listen",
            &format!("127.0.0.1:{port}"),
        ])
        .args(["--http-listen", "127.0.0.1:0"])
        .current_dir(dir)
        .env("SIPREG_DATABASE_URL", common::testdb::url(dir))
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

async fn wait_until_up(addr: SocketAddr) {
    for _ in 0..100 {
        if !udp_exchange(
            addr,
            register("ping", "up", 1, &[], "").as_bytes(),
            Duration::from_millis(100),
        )
        .await
        .is_empty()
        {
            return;
        }
    }
    panic!("server at {addr} never answered");
}

/// Default (write-behind) mode: a kill -9 loses at most the last batch window. Bindings
/// answered more than a window before the kill are there after a restart.
#[tokio::test]
async fn kill_9_loses_at_most_one_batch_window() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut child = spawn_binary(dir.path(), port);
    wait_until_up(addr).await;
    for i in 0..20 {
        let m = send(
            addr,
            &register(
                &format!("k{i}"),
                &format!("k{i}"),
                1,
                &[&format!("<sip:k{i}@192.0.2.{i}>")],
                "",
            ),
        )
        .await;
        assert_eq!(status(&m), 200);
    }
    // Longer than the 100 ms batch window, then SIGKILL: no flush on the way out.
    tokio::time::sleep(Duration::from_millis(400)).await;
    child.start_kill().unwrap();
    let st = child.wait().await.unwrap();
    assert_eq!(st.code(), None, "killed by a signal");
    let mut child = spawn_binary(dir.path(), port);
    wait_until_up(addr).await;
    for i in 0..20 {
        let m = send(
            addr,
            &register(&format!("k{i}"), &format!("q{i}"), 1, &[], ""),
        )
        .await;
        assert_eq!(contacts_of(&m).len(), 1, "k{i} lost");
        assert!(contacts_of(&m)[0].starts_with(&format!("<sip:k{i}@192.0.2.{i}>")));
    }
    child.start_kill().unwrap();
    let _ = child.wait().await;
}

/// SIGTERM flushes the queue: what was answered 200 right before is kept.
#[tokio::test]
async fn sigterm_flushes_pending_bindings() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let child = spawn_binary(dir.path(), port);
    wait_until_up(addr).await;
    let m = send(
        addr,
        &register("term", "t1", 1, &["<sip:term@192.0.2.99>"], ""),
    )
    .await;
    assert_eq!(status(&m), 200);
    let pid = child.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let out = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let mut child = spawn_binary(dir.path(), port);
    wait_until_up(addr).await;
    let m = send(addr, &register("term", "t2", 1, &[], "")).await;
    assert_eq!(contacts_of(&m).len(), 1);
    child.start_kill().unwrap();
    let _ = child.wait().await;
}
