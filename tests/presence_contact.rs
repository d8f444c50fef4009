//! In-dialog requests find their way back (RFC 3261 §12.1.1): the Contact of sipreg's 200
//! to SUBSCRIBE and of its NOTIFYs names sipreg itself, so a watcher with no outbound
//! proxy sends its refresh there — not to the presentity's domain. The server listens on
//! the wildcard address and serves only example.com, the hard case for both.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::presence::*;
use common::*;
use sipreg::sip::Message;
use sipreg::sip::headers::HeaderName;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(3);

/// sipreg on 0.0.0.0 (an ephemeral port) serving example.com, with bob's token.
async fn setup() -> (AppServer, SocketAddr, String) {
    let app = AppServer::start(|c| {
        c.sip.listen = "0.0.0.0:0".parse().unwrap();
        c.sip.domains = vec!["example.com".into()];
    })
    .await;
    add_user(&app.users, "alice", &[]).await;
    let bob = add_user(&app.users, "bob", &[]).await;
    let tb = app
        .users
        .issue_token(&bob, None, None)
        .unwrap()
        .access_token;
    let sip = SocketAddr::from(([127, 0, 0, 1], app.sip.port()));
    (app, sip, tb)
}

/// The URI inside a Contact value's angle brackets.
fn contact_uri(m: &Message) -> String {
    let c = header(m, HeaderName::Contact).expect("a Contact");
    c.trim_start_matches('<')
        .split('>')
        .next()
        .unwrap_or("")
        .to_string()
}

/// The host:port of a `sip:` URI, as a socket address (sipreg never names a host name).
fn addr_of(uri: &str) -> SocketAddr {
    let rest = uri.split_once('@').map_or(uri, |(_, r)| r);
    let hostport = rest.split(';').next().unwrap_or("");
    hostport
        .parse()
        .unwrap_or_else(|_| panic!("{uri}: not an address"))
}

/// bob's SUBSCRIBE to alice sent to `uri`, in the dialog `to_tag` when given.
fn bob_subscribe(
    uri: &str,
    cseq: u32,
    to_tag: Option<&str>,
    transport: &str,
    contact: SocketAddr,
    extra: &str,
) -> String {
    subscribe(
        "bob",
        "example.com",
        "alice",
        "pc1",
        cseq,
        to_tag,
        transport,
        contact,
        extra,
    )
    .replacen(
        "SUBSCRIBE sip:alice@example.com SIP/2.0",
        &format!("SUBSCRIBE {uri} SIP/2.0"),
        1,
    )
}

#[tokio::test]
async fn refresh_sent_to_the_contact_of_the_200_reaches_sipreg_over_udp() {
    let (app, sip, tb) = setup().await;
    let w = Peer::new().await;
    let ev = format!("{}Event: presence\r\n", bearer(&tb));
    let ok = w
        .request(
            sip,
            &bob_subscribe("sip:alice@example.com", 1, None, "UDP", w.addr, &ev),
        )
        .await;
    assert_eq!(status(&ok), 200, "{}", ok.first_line);
    let uri = contact_uri(&ok);
    // sipreg's own address: the wildcard replaced by the address the watcher reaches.
    assert_eq!(uri, format!("sip:alice@{sip}"));
    let n = w.notify(WAIT, 200).await.expect("immediate NOTIFY");
    assert_eq!(contact_uri(&n), uri, "the NOTIFY names the same Contact");

    // The refresh goes where the Contact says, with the Contact as Request-URI.
    let tag = to_tag(&ok);
    let w2 = Peer::new().await;
    let refresh = bob_subscribe(&uri, 2, Some(&tag), "UDP", w.addr, &ev);
    w2.send(addr_of(&uri), &refresh).await;
    let mut seen = Vec::new();
    let r = w2.response(WAIT, &mut seen).await;
    assert_eq!(status(&r), 200, "{}", r.first_line);
    assert_eq!(header(&r, HeaderName::Expires).as_deref(), Some("3600"));
    assert_eq!(app.presence.subscriptions.len(), 1);

    // And so does the unsubscribe.
    let bye = bob_subscribe(
        &uri,
        3,
        Some(&tag),
        "UDP",
        w.addr,
        &format!("{ev}Expires: 0\r\n"),
    );
    w2.send(addr_of(&uri), &bye).await;
    let r = w2.response(WAIT, &mut seen).await;
    assert_eq!(status(&r), 200, "{}", r.first_line);
    eventually("unsubscribed", WAIT, || {
        app.presence.subscriptions.is_empty()
    })
    .await;
}

#[tokio::test]
async fn contact_names_tcp_when_the_subscribe_came_over_tcp() {
    let (app, sip, tb) = setup().await;
    let ev = format!("{}Event: presence\r\n", bearer(&tb));
    let mut s = TcpStream::connect(sip).await.unwrap();
    let local = s.local_addr().unwrap();
    let text = bob_subscribe("sip:alice@example.com", 1, None, "TCP", local, &ev);
    s.write_all(text.as_bytes()).await.unwrap();
    let msgs: Vec<Message> = tcp_read(&mut s, WAIT)
        .await
        .messages
        .iter()
        .map(parse)
        .collect();
    let ok = msgs.iter().find(|m| m.is_response()).expect("a response");
    assert_eq!(status(ok), 200, "{}", ok.first_line);
    let uri = contact_uri(ok);
    assert_eq!(uri, format!("sip:alice@{sip};transport=tcp"));
    if let Some(n) = msgs.iter().find(|m| !m.is_response()) {
        assert_eq!(contact_uri(n), uri);
    }

    // A refresh over a new connection to that address.
    let mut s2 = TcpStream::connect(addr_of(&uri)).await.unwrap();
    let local2 = s2.local_addr().unwrap();
    let refresh = bob_subscribe(&uri, 2, Some(&to_tag(ok)), "TCP", local2, &ev);
    s2.write_all(refresh.as_bytes()).await.unwrap();
    let r = tcp_read(&mut s2, WAIT)
        .await
        .messages
        .iter()
        .map(parse)
        .find(|m| m.is_response())
        .expect("a response to the refresh");
    assert_eq!(status(&r), 200, "{}", r.first_line);
    assert_eq!(app.presence.subscriptions.len(), 1);
}
