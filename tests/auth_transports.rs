//! Where Bearer tokens may travel (RFC 6750 §5.3, RFC 8898 §6) and which challenges each
//! client gets. Requests from afar (192.0.2.10, a documentation address) are handed to the
//! registrar and presence services directly with a forged transport `Context`: nothing is
//! ever sent to that address. Loopback cases go over real sockets.

mod common;

use std::time::Duration;

use common::presence::{Peer, bearer, eventually, register, subscribe};
use common::*;
use sipreg::auth::CleartextBearer;
use sipreg::registrar::Aor;
use sipreg::sip::{Request, Response};
use sipreg::transaction::user::Reply;
use sipreg::transport::{Context, Transport};

const AFAR: &str = "192.0.2.10:5060";

fn ctx(transport: Transport, source: &str) -> Context {
    Context {
        transport,
        source: source.parse().unwrap(),
        local: "127.0.0.1:5060".parse().unwrap(),
        connection: transport.is_stream().then_some(1),
    }
}

fn request(text: &str) -> Request {
    let m = parse(&bytes::Bytes::from(text.to_string()));
    Request::from_message(m).unwrap_or_else(|_| panic!("bad test request"))
}

async fn answer(reply: Reply) -> Response {
    match reply {
        Reply::Now(r) => r,
        Reply::Later(f) => f.await,
    }
}

fn challenges(r: &Response) -> Vec<String> {
    r.headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("WWW-Authenticate"))
        .map(|(_, v)| v.clone())
        .collect()
}

/// The scheme and algorithm of each challenge: `Bearer`, `Digest SHA-256`, `Digest MD5`.
fn kinds(r: &Response) -> Vec<String> {
    challenges(r)
        .iter()
        .map(|c| {
            let scheme = c.split(' ').next().unwrap_or("").to_string();
            match c.split("algorithm=").nth(1) {
                Some(a) => format!("{scheme} {}", a.split(',').next().unwrap_or("")),
                None => scheme,
            }
        })
        .collect()
}

fn alice_register(extra: &str) -> String {
    register(
        "alice",
        "ct1",
        1,
        "<sip:alice@192.0.2.10:5060>;expires=600",
        extra,
    )
}

fn bound(app: &AppServer) -> usize {
    let aor = Aor::parse("sip:alice@example.com").unwrap();
    app.registrar.table.get(&aor, 0).len()
}

#[tokio::test]
async fn bearer_is_not_invited_over_cleartext_transports_from_afar() {
    let app = AppServer::start(|_| {}).await;
    add_user(&app.users, "alice", &[]).await;
    for t in [Transport::Udp, Transport::Tcp, Transport::Ws] {
        let r = answer(
            app.registrar
                .register(request(&alice_register("")), ctx(t, AFAR)),
        )
        .await;
        assert_eq!(r.status, 401, "{t}");
        assert_eq!(kinds(&r), ["Digest SHA-256", "Digest MD5"], "{t}");
    }
    for t in [Transport::Tls, Transport::Wss] {
        let r = answer(
            app.registrar
                .register(request(&alice_register("")), ctx(t, AFAR)),
        )
        .await;
        assert_eq!(r.status, 401, "{t}");
        assert_eq!(kinds(&r), ["Bearer", "Digest SHA-256", "Digest MD5"], "{t}");
    }
    // Per-client rules apply from afar too, after the cleartext rule.
    let r = answer(app.registrar.register(
        request(&alice_register(
            "User-Agent: baresip v1.0.0 (x86_64/linux)\r\n",
        )),
        ctx(Transport::Tls, AFAR),
    ))
    .await;
    assert_eq!(kinds(&r), ["Digest MD5"]);
    assert_eq!(bound(&app), 0);
}

#[tokio::test]
async fn bearer_token_sent_in_clear_from_afar_is_refused() {
    let app = AppServer::start(|_| {}).await;
    let alice = add_user(&app.users, "alice", &[]).await;
    let token = app
        .users
        .issue_token(&alice, None, None)
        .unwrap()
        .access_token;
    for t in [Transport::Udp, Transport::Tcp, Transport::Ws] {
        // Twice: the second time the token is in the validation cache (the quick path).
        for _ in 0..2 {
            let r = answer(
                app.registrar
                    .register(request(&alice_register(&bearer(&token))), ctx(t, AFAR)),
            )
            .await;
            assert_eq!(r.status, 401, "{t}");
            assert_eq!(r.reason, "TLS Required For Bearer Tokens", "{t}");
            let ch = challenges(&r);
            assert!(
                ch[0].starts_with("Bearer ") && ch[0].contains("error=\"invalid_request\""),
                "{ch:?}"
            );
            assert_eq!(&kinds(&r)[1..], ["Digest SHA-256", "Digest MD5"], "{t}");
            assert_eq!(bound(&app), 0, "{t}: nothing bound");
        }
        // The presence services apply the same rule.
        let sub = subscribe(
            "alice",
            "example.com",
            "alice",
            "ct2",
            1,
            None,
            t.via_token(),
            AFAR.parse().unwrap(),
            &format!("Event: presence\r\nExpires: 600\r\n{}", bearer(&token)),
        );
        let r = answer(app.presence.subscribe(request(&sub), ctx(t, AFAR))).await;
        assert_eq!(r.status, 401, "{t}");
        assert_eq!(r.reason, "TLS Required For Bearer Tokens");
    }
    // Over TLS the same token registers.
    let r = answer(app.registrar.register(
        request(&alice_register(&bearer(&token))),
        ctx(Transport::Tls, AFAR),
    ))
    .await;
    assert_eq!(r.status, 200, "{}", r.reason);
    assert_eq!(bound(&app), 1);
}

#[tokio::test]
async fn bearer_over_cleartext_can_be_allowed() {
    let app = AppServer::start(|c| c.auth.bearer_over_cleartext = CleartextBearer::Allow).await;
    let alice = add_user(&app.users, "alice", &[]).await;
    let r = answer(
        app.registrar
            .register(request(&alice_register("")), ctx(Transport::Udp, AFAR)),
    )
    .await;
    assert_eq!(kinds(&r), ["Bearer", "Digest SHA-256", "Digest MD5"]);
    let token = app
        .users
        .issue_token(&alice, None, None)
        .unwrap()
        .access_token;
    let r = answer(app.registrar.register(
        request(&alice_register(&bearer(&token))),
        ctx(Transport::Udp, AFAR),
    ))
    .await;
    assert_eq!(r.status, 200, "{}", r.reason);
    assert_eq!(bound(&app), 1);
}

#[tokio::test]
async fn loopback_peers_still_get_and_use_bearer_over_udp() {
    let app = AppServer::start(|_| {}).await;
    let alice = add_user(&app.users, "alice", &[]).await;
    let p = Peer::new().await;
    let contact = format!("<sip:alice@{}>;expires=600", p.sock.local_addr().unwrap());
    let m = p
        .request(app.sip, &register("alice", "lb1", 1, &contact, ""))
        .await;
    assert_eq!(status(&m), 401);
    let first = m
        .headers
        .first(sipreg::sip::headers::HeaderName::WwwAuthenticate)
        .unwrap_or("");
    assert!(first.starts_with("Bearer realm=\"sipreg\""), "{first}");
    let token = app
        .users
        .issue_token(&alice, None, None)
        .unwrap()
        .access_token;
    let m = p
        .request(
            app.sip,
            &register("alice", "lb1", 2, &contact, &bearer(&token)),
        )
        .await;
    assert_eq!(status(&m), 200, "{}", m.first_line);
    eventually("alice bound", Duration::from_secs(5), || bound(&app) == 1).await;
}
