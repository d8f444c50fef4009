//! SIP over WebSocket (RFC 7118) against the whole sipreg on loopback, with a
//! tokio-tungstenite client: REGISTER over WS and WSS (Via `SIP/2.0/WS` with a `.invalid`
//! host, Contact `;transport=ws`), the bindings removed when the socket closes, SUBSCRIBE
//! with its NOTIFY on the same socket, and the upgrade's refusals (no `sip`
//! sub-protocol, a wrong Origin, a frame over the limit, the per-address cap), each
//! leaving another client on the listener undisturbed.

mod common;

use std::time::Duration;

use common::ws::*;
use common::*;
use sipreg::clock::unix_now;
use sipreg::config::Config;
use sipreg::registrar::Aor;
use sipreg::sip::Message;
use sipreg::sip::headers::HeaderName;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

const WAIT: Duration = Duration::from_secs(5);

/// A server with WS on a free loopback port, and alice's and bob's tokens.
async fn setup(tweak: impl FnOnce(&mut Config)) -> (AppServer, String, String) {
    let app = AppServer::start(|c| {
        c.websocket.ws_listen = Some("127.0.0.1:0".parse().unwrap());
        c.presence.notify_interval_ms = 20;
        tweak(c)
    })
    .await;
    let (ta, tb) = tokens(&app).await;
    (app, ta, tb)
}

async fn tokens(app: &AppServer) -> (String, String) {
    let alice = add_user(&app.users, "alice", &[]).await;
    let bob = add_user(&app.users, "bob", &[]).await;
    let t = |u| app.users.issue_token(u, None, None).unwrap().access_token;
    (t(&alice), t(&bob))
}

/// A REGISTER as a WebSocket client sends it (RFC 7118 §8.1): Via host and Contact host
/// under `.invalid`, `transport=ws` (or `wss`).
fn register(
    user: &str,
    call_id: &str,
    cseq: u32,
    token: &str,
    transport: &str,
    expires: u32,
) -> String {
    let t = transport.to_ascii_lowercase();
    format!(
        "REGISTER sip:example.com SIP/2.0\r\n\
         Via: SIP/2.0/{transport} df7jal23ls0d.invalid;branch=z9hG4bK{call_id}{cseq};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{user}@example.com>;tag=t{call_id}\r\n\
         To: <sip:{user}@example.com>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} REGISTER\r\n\
         Contact: <sip:{user}@df7jal23ls0d.invalid;transport={t}>;expires={expires}\r\n\
         Authorization: Bearer {token}\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

fn subscribe(watcher: &str, presentity: &str, call_id: &str, token: &str) -> String {
    format!(
        "SUBSCRIBE sip:{presentity}@example.com SIP/2.0\r\n\
         Via: SIP/2.0/WS h7kjh12s.invalid;branch=z9hG4bK{call_id}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{watcher}@example.com>;tag=w{call_id}\r\n\
         To: <sip:{presentity}@example.com>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 SUBSCRIBE\r\n\
         Contact: <sip:{watcher}@h7kjh12s.invalid;transport=ws;ob>\r\n\
         Event: presence\r\n\
         Accept: application/pidf+xml\r\n\
         Expires: 600\r\n\
         Authorization: Bearer {token}\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

fn options(call_id: &str) -> String {
    format!(
        "OPTIONS sip:example.com SIP/2.0\r\n\
         Via: SIP/2.0/WS q8.invalid;branch=z9hG4bK{call_id}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:probe@example.com>;tag={call_id}\r\n\
         To: <sip:example.com>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

fn header(m: &Message, name: HeaderName) -> String {
    m.headers
        .first(name)
        .map(|v| v.to_string())
        .unwrap_or_default()
}

/// `GET /registrations` as an admin.
async fn registrations(app: &AppServer) -> serde_json::Value {
    let root = match app.users.get_user_by_name("root").await {
        Ok(u) => u,
        Err(_) => add_user(&app.users, "root", &["admin"]).await,
    };
    let t = app
        .users
        .issue_token(&root, None, None)
        .unwrap()
        .access_token;
    let r = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("http://{}/registrations", app.http))
        .bearer_auth(t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

fn aor(user: &str) -> Aor {
    Aor::parse(&format!("sip:{user}@example.com")).unwrap()
}

/// Waits (bounded) until `aor` has no binding left in the registrar's table.
async fn wait_unbound(app: &AppServer, user: &str) -> bool {
    for _ in 0..100 {
        if app.registrar.table.get(&aor(user), unix_now()).is_empty() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn register_over_ws_is_listed_and_closing_the_socket_removes_it() {
    let (app, ta, _) = setup(|_| {}).await;
    let ws = app.ws.expect("ws listener");
    let mut c = connect(ws, None, Open::sip()).await.expect("upgrade");
    let m = c
        .request(&register("alice", "r1", 1, &ta, "WS", 600), WAIT)
        .await;
    assert_eq!(status(&m), 200, "{}", m.first_line);
    assert!(
        header(&m, HeaderName::Contact).contains("sip:alice@df7jal23ls0d.invalid;transport=ws"),
        "{m:?}"
    );
    // The answer echoes the WS Via with the connection's address.
    let via = header(&m, HeaderName::Via);
    assert!(via.starts_with("SIP/2.0/WS df7jal23ls0d.invalid"), "{via}");
    assert!(via.contains(&format!("received={}", c.local.ip())), "{via}");

    let v = registrations(&app).await;
    assert_eq!(v[0]["aor"], "sip:alice@example.com");
    let b = &v[0]["bindings"][0];
    assert_eq!(b["transport"], "ws");
    assert_eq!(b["contact"], "sip:alice@df7jal23ls0d.invalid;transport=ws");
    assert_eq!(b["source"], c.local.to_string());

    assert!(stored_rows_become(&app, 1).await, "the binding was stored");

    c.close().await;
    assert!(
        wait_unbound(&app, "alice").await,
        "binding removed on close"
    );
    assert_eq!(registrations(&app).await, serde_json::json!([]));
    // The removal reached the store, like an unregistration.
    assert!(stored_rows_become(&app, 0).await, "the removal was stored");
}

/// Waits (bounded) until the store's bindings table holds `n` rows.
async fn stored_rows_become(app: &AppServer, n: i64) -> bool {
    sqlx::any::install_default_drivers();
    let url = common::testdb::url(app.dir.path());
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    for _ in 0..100 {
        let (rows,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM bindings")
            .fetch_one(&pool)
            .await
            .unwrap();
        if rows == n {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn a_dropped_connection_removes_only_its_own_bindings() {
    let (app, ta, tb) = setup(|_| {}).await;
    let ws = app.ws.unwrap();
    let mut a = connect(ws, None, Open::sip()).await.unwrap();
    let mut b = connect(ws, None, Open::sip()).await.unwrap();
    let m = a
        .request(&register("alice", "d1", 1, &ta, "WS", 600), WAIT)
        .await;
    assert_eq!(status(&m), 200);
    let m = b
        .request(&register("bob", "d2", 1, &tb, "WS", 600), WAIT)
        .await;
    assert_eq!(status(&m), 200);
    // Over UDP alice also has a desk phone, which no WebSocket closing may touch.
    let udp = sipreg::registrar::Source {
        transport: sipreg::transport::Transport::Udp,
        addr: "127.0.0.1:5999".parse().unwrap(),
        connection: None,
    };
    let desk = "REGISTER sip:example.com SIP/2.0\r\n\
                Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKdesk;rport\r\n\
                Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=desk\r\n\
                To: <sip:alice@example.com>\r\nCall-ID: desk\r\nCSeq: 1 REGISTER\r\n\
                Contact: <sip:alice@127.0.0.1:5999>;expires=600\r\n";
    let r = udp_exchange(
        app.sip,
        format!("{desk}Authorization: Bearer {ta}\r\nContent-Length: 0\r\n\r\n").as_bytes(),
        WAIT,
    )
    .await;
    assert_eq!(status(&parse(&r[0])), 200);
    assert_eq!(app.registrar.table.get(&aor("alice"), unix_now()).len(), 2);

    // A TCP reset, no closing handshake.
    drop(a);
    for _ in 0..100 {
        if app.registrar.table.get(&aor("alice"), unix_now()).len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let left = app.registrar.table.get(&aor("alice"), unix_now());
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].source.transport, udp.transport);
    assert_eq!(&*left[0].uri, "sip:alice@127.0.0.1:5999");
    // bob's socket is still open, and so is his binding; it still works.
    assert_eq!(app.registrar.table.get(&aor("bob"), unix_now()).len(), 1);
    let m = b.request(&options("still-there"), WAIT).await;
    assert_eq!(status(&m), 200);
}

#[tokio::test]
async fn subscribe_over_ws_gets_its_notify_on_the_same_socket_and_ends_with_it() {
    let (app, ta, tb) = setup(|_| {}).await;
    let ws = app.ws.unwrap();
    let mut bob = connect(ws, None, Open::sip()).await.unwrap();
    let m = bob
        .request(&subscribe("bob", "alice", "s1", &tb), WAIT)
        .await;
    assert_eq!(status(&m), 200, "{}", m.first_line);
    let n = bob.sip(WAIT).await;
    assert!(
        n.first_line
            .starts_with("NOTIFY sip:bob@h7kjh12s.invalid;transport=ws;ob "),
        "{}",
        n.first_line
    );
    assert_eq!(header(&n, HeaderName::Event), "presence");
    assert!(
        header(&n, HeaderName::Via).starts_with("SIP/2.0/WS "),
        "{n:?}"
    );
    assert!(String::from_utf8_lossy(&n.body).contains("<basic>closed</basic>"));
    bob.send_text(&String::from_utf8_lossy(&answer(&n, 200)))
        .await;

    // alice registers over her own WebSocket: bob's socket carries the change.
    let mut alice = connect(ws, None, Open::sip()).await.unwrap();
    let m = alice
        .request(&register("alice", "s2", 1, &ta, "WS", 600), WAIT)
        .await;
    assert_eq!(status(&m), 200);
    let n = bob.sip(WAIT).await;
    assert!(n.first_line.starts_with("NOTIFY "));
    assert!(
        String::from_utf8_lossy(&n.body).contains("<basic>open</basic>"),
        "{:?}",
        n.body
    );
    bob.send_text(&String::from_utf8_lossy(&answer(&n, 200)))
        .await;

    // alice's socket closes: her binding goes and bob hears she is offline.
    alice.close().await;
    let n = bob.sip(WAIT).await;
    assert!(
        String::from_utf8_lossy(&n.body).contains("<basic>closed</basic>"),
        "{:?}",
        n.body
    );
    bob.send_text(&String::from_utf8_lossy(&answer(&n, 200)))
        .await;

    // bob's socket closes: his subscription ends with it.
    assert_eq!(app.presence.subscriptions.len(), 1);
    bob.close().await;
    let mut gone = false;
    for _ in 0..100 {
        if app.presence.subscriptions.is_empty() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "subscription ended with its WebSocket");
}

/// The 200 (or other) answer to a NOTIFY, as the watcher sends it.
fn answer(req: &Message, code: u16) -> bytes::Bytes {
    sipreg::sip::Response::new(code).encode(req, "127.0.0.1:1".parse().unwrap(), "")
}

#[tokio::test]
async fn refusals_get_their_answers_and_leave_other_clients_alone() {
    let (app, _, _) = setup(|c| {
        c.websocket.origins = vec!["https://phone.example.com".into()];
        c.websocket.max_message_size = 4096;
    })
    .await;
    let ws = app.ws.unwrap();
    let mut bystander = connect(ws, None, Open::sip()).await.unwrap();

    // No sub-protocol, or another one: 400.
    for protocol in [None, Some("chat")] {
        match connect(
            ws,
            None,
            Open {
                protocol,
                origin: None,
            },
        )
        .await
        {
            Err(WsError::Http(r)) => assert_eq!(r.status(), 400, "{protocol:?}"),
            Err(e) => panic!("{protocol:?}: {e}"),
            Ok(_) => panic!("{protocol:?}: upgraded"),
        }
    }
    // A browser page from elsewhere: 403. From the allowed origin: upgraded.
    let evil = Open {
        protocol: Some("sip"),
        origin: Some("https://evil.example.net"),
    };
    match connect(ws, None, evil).await {
        Err(WsError::Http(r)) => assert_eq!(r.status(), 403),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("wrong origin upgraded"),
    }
    let good = Open {
        protocol: Some("sip"),
        origin: Some("https://phone.example.com"),
    };
    let mut ok = connect(ws, None, good).await.expect("allowed origin");
    assert_eq!(status(&ok.request(&options("o1"), WAIT).await), 200);

    // A frame over the limit: closed with 1009, nothing answered.
    let mut big = connect(ws, None, Open::sip()).await.unwrap();
    let padding = "x".repeat(5000);
    big.send_text(&format!("{}{padding}", options("big"))).await;
    match big.next(WAIT).await {
        Got::Closed(Some(f)) => assert_eq!(f.code, CloseCode::Size),
        other => panic!("expected a 1009 close, got {other:?}"),
    }

    // A message that is not SIP: answered by nothing, the connection stays.
    bystander.send_text("hello").await;
    // The bystander is undisturbed throughout.
    let m = bystander.request(&options("b1"), WAIT).await;
    assert_eq!(status(&m), 200);
    assert_eq!(header(&m, HeaderName::CallId), "b1");
}

#[tokio::test]
async fn connections_per_address_are_capped() {
    let (app, _, _) = setup(|c| c.websocket.max_connections_per_ip = 2).await;
    let ws = app.ws.unwrap();
    let mut first = connect(ws, None, Open::sip()).await.unwrap();
    let _second = connect(ws, None, Open::sip()).await.unwrap();
    assert!(
        connect(ws, None, Open::sip()).await.is_err(),
        "a third connection from 127.0.0.1 is refused"
    );
    assert_eq!(status(&first.request(&options("cap1"), WAIT).await), 200);
    // A slot comes back when a connection closes.
    first.close().await;
    let mut again = None;
    for _ in 0..50 {
        if let Ok(c) = connect(ws, None, Open::sip()).await {
            again = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut again = again.expect("a freed slot");
    assert_eq!(status(&again.request(&options("cap2"), WAIT).await), 200);
}

#[tokio::test]
async fn silent_clients_are_pinged_and_unresponsive_ones_closed() {
    let (app, _, _) = setup(|c| {
        c.websocket.ping_interval_secs = 1;
        c.websocket.idle_timeout_secs = 3;
    })
    .await;
    let ws = app.ws.unwrap();
    let mut live = connect(ws, None, Open::sip()).await.unwrap();
    let mut dead = connect(ws, None, Open::sip()).await.unwrap();
    // `live` keeps reading, so tungstenite answers each ping with a pong: the server
    // pings it, and it outlives the idle timeout.
    let mut pings = 0;
    let until = tokio::time::Instant::now() + Duration::from_secs(5);
    while tokio::time::Instant::now() < until {
        match live.next(Duration::from_millis(200)).await {
            Got::Ping => pings += 1,
            Got::Nothing => {}
            other => panic!("live client: {other:?}"),
        }
    }
    assert!(pings >= 2, "pinged {pings} times");
    assert_eq!(status(&live.request(&options("alive"), WAIT).await), 200);
    // `dead` read nothing, so it never answered: closed as idle after its pings. (The
    // server's Close, 1001, is sent first, but by the time `dead` reads, the connection
    // is gone and answering the first ping fails: only the pings and the end are seen.)
    let mut saw = Vec::new();
    loop {
        match dead.next(WAIT).await {
            Got::Closed(f) => {
                assert!(
                    f.as_ref().is_none_or(|f| f.code == CloseCode::Away),
                    "{f:?}"
                );
                saw.push("closed");
                break;
            }
            Got::Ping => saw.push("ping"),
            other => panic!("dead client: {other:?}"),
        }
    }
    assert_eq!(saw.first(), Some(&"ping"), "{saw:?}");
    assert_eq!(saw.last(), Some(&"closed"), "{saw:?}");
}

#[tokio::test]
async fn the_binary_serves_ws_on_its_flag() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ws: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let _child = tokio::process::Command::new(env!("CARGO_BIN_EXE_sipreg"))
        .arg("--database")
        .arg(common::testdb::url(dir.path()))
        .args([
            "serve",
            "--no-auth",
            "--sip-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .args(["--ws-listen", &ws.to_string()])
        .env("SIPREG_WSS_LISTEN", "127.0.0.1:0")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut c = None;
    for _ in 0..100 {
        if let Ok(client) = connect(ws, None, Open::sip()).await {
            c = Some(client);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut c = c.expect("sipreg serve --ws-listen accepts WebSocket clients");
    let m = c
        .request(&register("carol", "bin1", 1, "none", "WS", 600), WAIT)
        .await;
    assert_eq!(status(&m), 200, "{}", m.first_line);
}

#[tokio::test]
async fn register_over_wss_with_a_lab_certificate() {
    let cert = lab_cert();
    let dir = tempfile::tempdir().unwrap();
    let mut config = app_config(dir.path());
    config.websocket.wss_listen = Some("127.0.0.1:0".parse().unwrap());
    let app = AppServer::start_with_tls(dir, config, Some(tls_accept(&cert))).await;
    let (ta, _) = tokens(&app).await;
    let wss = app.wss.expect("wss listener");
    let tls = tls_connector(&cert);
    let mut c = connect(wss, Some(&tls), Open::sip())
        .await
        .expect("upgrade over TLS");
    let m = c
        .request(&register("alice", "t1", 1, &ta, "WSS", 600), WAIT)
        .await;
    assert_eq!(status(&m), 200, "{}", m.first_line);
    let v = registrations(&app).await;
    assert_eq!(v[0]["bindings"][0]["transport"], "wss");
    assert_eq!(
        v[0]["bindings"][0]["contact"],
        "sip:alice@df7jal23ls0d.invalid;transport=wss"
    );
    // A client that does not trust the certificate gets no connection.
    let stranger = tls_connector(&lab_cert());
    assert!(connect(wss, Some(&stranger), Open::sip()).await.is_err());
    c.close().await;
    assert!(
        wait_unbound(&app, "alice").await,
        "WSS binding removed on close"
    );
}

#[tokio::test]
async fn wss_without_a_certificate_is_not_served() {
    let app =
        AppServer::start(|c| c.websocket.wss_listen = Some("127.0.0.1:0".parse().unwrap())).await;
    let wss = app.wss.expect("bound");
    let tls = tls_connector(&lab_cert());
    assert!(connect(wss, Some(&tls), Open::sip()).await.is_err());
}

/// The registrar alone (no authentication, memory only) and a WS request context.
fn bare_registrar() -> std::sync::Arc<sipreg::registrar::Registrar> {
    sipreg::registrar::Registrar::new(Default::default(), Vec::new(), None, None, None)
}

fn ws_ctx(flow: u64) -> sipreg::transport::Context {
    sipreg::transport::Context {
        transport: sipreg::transport::Transport::Ws,
        source: "127.0.0.1:40000".parse().unwrap(),
        local: "127.0.0.1:5066".parse().unwrap(),
        connection: Some(flow),
    }
}

fn request_of(text: &str) -> sipreg::sip::Request {
    let msg = sipreg::sip::parse_datagram(
        bytes::Bytes::copy_from_slice(text.as_bytes()),
        &sipreg::sip::Limits::default(),
    )
    .unwrap();
    sipreg::sip::Request::from_message(msg).unwrap()
}

fn answered(reply: sipreg::server::Reply) -> u16 {
    match reply {
        sipreg::server::Reply::Now(r) => r.status,
        sipreg::server::Reply::Later(_) => panic!("expected an immediate answer"),
    }
}

#[test]
fn a_register_finishing_after_its_socket_closed_leaves_no_binding() {
    let r = bare_registrar();
    // Flow 42 closed while the REGISTER that came over it was still being processed.
    r.flow_closed(42, sipreg::transport::Transport::Ws);
    let late = request_of(&register("alice", "late", 1, "x", "WS", 600));
    assert_eq!(answered(r.register(late, ws_ctx(42))), 200);
    assert!(r.table.get(&aor("alice"), unix_now()).is_empty());
    // Over a flow still open, the binding stays until that flow closes.
    let live = request_of(&register("bob", "live", 1, "x", "WS", 600));
    assert_eq!(answered(r.register(live, ws_ctx(43))), 200);
    assert_eq!(r.table.get(&aor("bob"), unix_now()).len(), 1);
    // A TCP connection closing with the same id is not a WebSocket: nothing happens.
    r.flow_closed(43, sipreg::transport::Transport::Tcp);
    assert_eq!(r.table.get(&aor("bob"), unix_now()).len(), 1);
    r.flow_closed(43, sipreg::transport::Transport::Ws);
    assert!(r.table.get(&aor("bob"), unix_now()).is_empty());
}

#[test]
fn stored_websocket_bindings_are_not_restored() {
    let r = bare_registrar();
    let binding = |transport, uri: &str| sipreg::registrar::Binding {
        id: 1,
        uri: uri.into(),
        instance: None,
        reg_id: None,
        q: None,
        expires_at: unix_now() + 600,
        call_id: "c".into(),
        cseq: 1,
        path: Vec::new(),
        source: sipreg::registrar::Source {
            transport,
            addr: "127.0.0.1:40000".parse().unwrap(),
            connection: None,
        },
        user_agent: None,
        registered_at: unix_now(),
    };
    use sipreg::transport::Transport::*;
    r.restore_one(aor("alice"), binding(Wss, "sip:a@x.invalid;transport=ws"));
    r.restore_one(aor("alice"), binding(Tcp, "sip:a@192.0.2.1;transport=tcp"));
    let left = r.table.get(&aor("alice"), unix_now());
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].source.transport, Tcp);
}
