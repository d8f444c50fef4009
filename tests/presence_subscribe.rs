//! SUBSCRIBE and NOTIFY end to end (RFC 6665, RFC 3856, issue 5): status codes, the
//! dialog (To tag, CSeq, refresh, unsubscribe), NOTIFY over UDP with retransmissions and
//! removal after Timer F, over the watcher's TCP connection, coalescing, expiry, and the
//! composed document as watchers see it change.

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
const AOR: &str = "sip:alice@example.com";

async fn token(app: &AppServer, user: &sipreg::users::User, scopes: Option<&[&str]>) -> String {
    let scopes: Option<Vec<String>> = scopes.map(|s| s.iter().map(|x| x.to_string()).collect());
    app.users
        .issue_token(user, scopes.as_deref(), None)
        .unwrap()
        .access_token
}

/// A server with a short NOTIFY interval, alice and bob, and their tokens.
async fn setup(tweak: impl FnOnce(&mut sipreg::config::Config)) -> (AppServer, String, String) {
    let app = AppServer::start(|c| {
        c.presence.notify_interval_ms = 20;
        tweak(c)
    })
    .await;
    let alice = add_user(&app.users, "alice", &[]).await;
    let bob = add_user(&app.users, "bob", &[]).await;
    let ta = token(&app, &alice, None).await;
    let tb = token(&app, &bob, None).await;
    (app, ta, tb)
}

/// bob subscribes to alice from `w`; returns the 200 and the first NOTIFY (answered 200).
async fn subscribed(app: &AppServer, w: &Peer, tb: &str, call_id: &str) -> (Message, Message) {
    let m = w
        .request(
            app.sip,
            &subscribe(
                "bob",
                "example.com",
                "alice",
                call_id,
                1,
                None,
                "UDP",
                w.addr,
                &format!("{}Event: presence\r\n", bearer(tb)),
            ),
        )
        .await;
    assert_eq!(status(&m), 200, "{}", m.first_line);
    let n = w.notify(WAIT, 200).await.expect("immediate NOTIFY");
    (m, n)
}

async fn publish_ok(
    app: &AppServer,
    p: &Peer,
    ta: &str,
    branch: &str,
    cseq: u32,
    doc: &str,
) -> String {
    let m = p
        .request(
            app.sip,
            &publish(
                "alice",
                branch,
                cseq,
                &format!("{}{PIDF_HEADERS}", bearer(ta)),
                doc,
            ),
        )
        .await;
    assert_eq!(status(&m), 200, "{}", m.first_line);
    header(&m, HeaderName::SipETag).unwrap()
}

#[tokio::test]
async fn subscribe_refusals() {
    let (app, _ta, tb) = setup(|c| {
        c.presence.max_subscriptions_per_watcher = 1;
    })
    .await;
    let w = Peer::new().await;
    let ev = "Event: presence\r\n";
    let sub = |call: &str, from_domain: &str, extra: &str, tag: Option<&str>| {
        subscribe(
            "bob",
            from_domain,
            "alice",
            call,
            1,
            tag,
            "UDP",
            w.addr,
            extra,
        )
    };
    // 401 with the presence.read scope.
    let m = w
        .request(app.sip, &sub("s1", "example.com", ev, None))
        .await;
    assert_eq!(status(&m), 401);
    assert!(
        header(&m, HeaderName::WwwAuthenticate)
            .unwrap()
            .contains("scope=\"presence.read\"")
    );
    // 403 insufficient scope.
    let bob = app.users.get_user_by_name("bob").await.unwrap();
    let narrow = token(&app, &bob, Some(&["sip.register"])).await;
    let m = w
        .request(
            app.sip,
            &sub(
                "s2",
                "example.com",
                &format!("{}{ev}", bearer(&narrow)),
                None,
            ),
        )
        .await;
    assert_eq!(status(&m), 403);
    let auth = bearer(&tb);
    // 489 without Event or with another package.
    for e in ["", "Event: message-summary\r\n"] {
        let m = w
            .request(
                app.sip,
                &sub("s3", "example.com", &format!("{auth}{e}"), None),
            )
            .await;
        assert_eq!(status(&m), 489);
        assert_eq!(
            header(&m, HeaderName::AllowEvents).as_deref(),
            Some("presence")
        );
    }
    // 423 with Min-Expires; 400 for a malformed Expires.
    let m = w
        .request(
            app.sip,
            &sub(
                "s4",
                "example.com",
                &format!("{auth}{ev}Expires: 5\r\n"),
                None,
            ),
        )
        .await;
    assert_eq!(status(&m), 423);
    assert_eq!(header(&m, HeaderName::MinExpires).as_deref(), Some("60"));
    let m = w
        .request(
            app.sip,
            &sub(
                "s4b",
                "example.com",
                &format!("{auth}{ev}Expires: soon\r\n"),
                None,
            ),
        )
        .await;
    assert_eq!(status(&m), 400);
    // 406 when Accept leaves PIDF out; */* is fine.
    let m = w
        .request(
            app.sip,
            &sub(
                "s4c",
                "example.com",
                &format!("{auth}{ev}Accept: application/xpidf+xml\r\n"),
                None,
            ),
        )
        .await;
    assert_eq!(status(&m), 406);
    assert_eq!(
        header(&m, HeaderName::Accept).as_deref(),
        Some("application/pidf+xml")
    );
    // 481 for a dialog that does not exist.
    let m = w
        .request(
            app.sip,
            &sub(
                "s5",
                "example.com",
                &format!("{auth}{ev}"),
                Some("nosuchtag"),
            ),
        )
        .await;
    assert_eq!(status(&m), 481);
    // same-domain policy: a watcher from another domain gets 403.
    let m = w
        .request(
            app.sip,
            &sub("s6", "other.example.net", &format!("{auth}{ev}"), None),
        )
        .await;
    assert_eq!(status(&m), 403);
    assert!(
        m.first_line.contains("not allowed to watch"),
        "{}",
        m.first_line
    );
    // No Contact: 400.
    let no_contact = sub("s7", "example.com", &format!("{auth}{ev}"), None).replace(
        &format!("Contact: <sip:bob@{};transport=udp>\r\n", w.addr),
        "",
    );
    let m = w.request(app.sip, &no_contact).await;
    assert_eq!(status(&m), 400);
    // The watcher limit (1): the second subscription gets 403.
    let (_, _) = subscribed(&app, &w, &tb, "s8").await;
    let m = w
        .request(
            app.sip,
            &sub("s9", "example.com", &format!("{auth}{ev}"), None),
        )
        .await;
    assert_eq!(status(&m), 403);
    assert!(
        m.first_line.contains("Too many subscriptions"),
        "{}",
        m.first_line
    );
    assert_eq!(app.presence.subscriptions.len(), 1);
}

#[tokio::test]
async fn owner_only_policy_and_presentity_limit() {
    let (app, ta, tb) = setup(|c| {
        c.presence.policy = sipreg::presence::Policy::OwnerOnly;
        c.presence.max_subscriptions_per_presentity = 1;
    })
    .await;
    let w = Peer::new().await;
    let m = w
        .request(
            app.sip,
            &subscribe(
                "bob",
                "example.com",
                "alice",
                "o1",
                1,
                None,
                "UDP",
                w.addr,
                &format!("{}Event: presence\r\n", bearer(&tb)),
            ),
        )
        .await;
    assert_eq!(status(&m), 403, "owner-only refuses bob");
    // alice may watch herself; a second watcher of alice then hits the presentity limit.
    let m = w
        .request(
            app.sip,
            &subscribe(
                "alice",
                "example.com",
                "alice",
                "o2",
                1,
                None,
                "UDP",
                w.addr,
                &format!("{}Event: presence\r\n", bearer(&ta)),
            ),
        )
        .await;
    assert_eq!(status(&m), 200);
    let m = w
        .request(
            app.sip,
            &subscribe(
                "alice",
                "example.com",
                "alice",
                "o3",
                1,
                None,
                "UDP",
                w.addr,
                &format!("{}Event: presence\r\n", bearer(&ta)),
            ),
        )
        .await;
    assert_eq!(status(&m), 503);
    assert!(header_named(&m, "Retry-After").is_some());
}

#[tokio::test]
async fn subscribe_notify_refresh_unsubscribe_over_udp() {
    let (app, ta, tb) = setup(|_| {}).await;
    let w = Peer::new().await;
    let (ok, n1) = subscribed(&app, &w, &tb, "d1").await;
    // 200 (never 202), To tag, Expires, Contact.
    assert!(ok.first_line.starts_with("SIP/2.0 200"));
    let tag = to_tag(&ok);
    assert!(!tag.is_empty());
    assert_eq!(header(&ok, HeaderName::Expires).as_deref(), Some("3600"));
    assert!(header(&ok, HeaderName::Contact).is_some());
    // The first NOTIFY: the dialog's identifiers, active, the closed document.
    assert!(
        n1.first_line
            .starts_with(&format!("NOTIFY sip:bob@{};transport=udp SIP/2.0", w.addr)),
        "{}",
        n1.first_line
    );
    assert_eq!(header(&n1, HeaderName::CallId).as_deref(), Some("d1"));
    assert!(
        header(&n1, HeaderName::From)
            .unwrap()
            .ends_with(&format!(";tag={tag}"))
    );
    assert!(header(&n1, HeaderName::To).unwrap().contains("tag=wd1"));
    assert_eq!(header(&n1, HeaderName::Event).as_deref(), Some("presence"));
    let ss = sub_state(&n1);
    assert!(ss.starts_with("active;expires="), "{ss}");
    let left: u32 = ss.trim_start_matches("active;expires=").parse().unwrap();
    assert!((3598..=3600).contains(&left), "{ss}");
    assert_eq!(
        header(&n1, HeaderName::ContentType).as_deref(),
        Some("application/pidf+xml")
    );
    assert!(body(&n1).contains("<basic>closed</basic>"), "{}", body(&n1));
    assert!(header(&n1, HeaderName::Contact).is_some());
    assert_eq!(header(&n1, HeaderName::MaxForwards).as_deref(), Some("70"));

    // A PUBLISH: a NOTIFY with the new state, CSeq one more.
    let p = Peer::new().await;
    publish_ok(
        &app,
        &p,
        &ta,
        "pb1",
        1,
        &pidf(AOR, "t1", "", "busy", "in a call"),
    )
    .await;
    let n2 = w.notify(WAIT, 200).await.expect("NOTIFY after PUBLISH");
    assert_eq!(cseq(&n2), cseq(&n1) + 1);
    assert!(
        body(&n2).contains("rpid:busy") && body(&n2).contains("in a call"),
        "{}",
        body(&n2)
    );

    // A refresh in the dialog: 200 with the new Expires and a NOTIFY at once.
    let m = w
        .request(
            app.sip,
            &subscribe(
                "bob",
                "example.com",
                "alice",
                "d1",
                2,
                Some(&tag),
                "UDP",
                w.addr,
                &format!("{}Event: presence\r\nExpires: 600\r\n", bearer(&tb)),
            ),
        )
        .await;
    assert_eq!(status(&m), 200);
    assert_eq!(header(&m, HeaderName::Expires).as_deref(), Some("600"));
    let n3 = w.notify(WAIT, 200).await.expect("NOTIFY after refresh");
    assert!(
        sub_state(&n3).starts_with("active;expires=6"),
        "{}",
        sub_state(&n3)
    );
    assert_eq!(cseq(&n3), cseq(&n2) + 1);

    // A stale CSeq in the dialog (a new transaction): 500.
    let stale = subscribe(
        "bob",
        "example.com",
        "alice",
        "d1",
        2,
        Some(&tag),
        "UDP",
        w.addr,
        &format!("{}Event: presence\r\n", bearer(&tb)),
    )
    .replace("branch=z9hG4bKd1s2", "branch=z9hG4bKd1stale");
    let m = w.request(app.sip, &stale).await;
    assert_eq!(status(&m), 500);

    // Unsubscribe: 200 Expires 0, a final NOTIFY terminated;reason=timeout, nothing kept.
    let m = w
        .request(
            app.sip,
            &subscribe(
                "bob",
                "example.com",
                "alice",
                "d1",
                3,
                Some(&tag),
                "UDP",
                w.addr,
                &format!("{}Event: presence\r\nExpires: 0\r\n", bearer(&tb)),
            ),
        )
        .await;
    assert_eq!(status(&m), 200);
    assert_eq!(header(&m, HeaderName::Expires).as_deref(), Some("0"));
    let n4 = w.notify(WAIT, 200).await.expect("final NOTIFY");
    assert_eq!(sub_state(&n4), "terminated;reason=timeout");
    assert_eq!(app.presence.subscriptions.len(), 0);
    // The dialog is gone.
    let m = w
        .request(
            app.sip,
            &subscribe(
                "bob",
                "example.com",
                "alice",
                "d1",
                4,
                Some(&tag),
                "UDP",
                w.addr,
                &format!("{}Event: presence\r\n", bearer(&tb)),
            ),
        )
        .await;
    assert_eq!(status(&m), 481);
}

#[tokio::test]
async fn fetch_with_expires_zero_gets_one_terminated_notify() {
    let (app, _ta, tb) = setup(|_| {}).await;
    let w = Peer::new().await;
    // Two proxies recorded the route: the NOTIFY carries them as its Route set, in order
    // (sipreg still sends to the SUBSCRIBE's source address, never to a proxy's name).
    let rr = "Record-Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n";
    let m = w
        .request(
            app.sip,
            &subscribe(
                "bob",
                "example.com",
                "alice",
                "f1",
                1,
                None,
                "UDP",
                w.addr,
                &format!("{}Event: presence;id=42\r\nExpires: 0\r\n{rr}", bearer(&tb)),
            ),
        )
        .await;
    assert_eq!(status(&m), 200);
    assert_eq!(header(&m, HeaderName::Expires).as_deref(), Some("0"));
    let n = w.notify(WAIT, 200).await.expect("one NOTIFY");
    assert_eq!(sub_state(&n), "terminated;reason=timeout");
    let routes: Vec<String> = n
        .headers
        .all(HeaderName::Route)
        .map(|h| h.value.to_string())
        .collect();
    assert_eq!(
        routes,
        ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    );
    assert_eq!(
        header(&n, HeaderName::Event).as_deref(),
        Some("presence;id=42")
    );
    assert!(body(&n).contains("entity=\"sip:alice@example.com\""));
    assert_eq!(app.presence.subscriptions.len(), 0);
}

#[tokio::test]
async fn unanswered_notify_is_retransmitted_then_the_subscription_removed() {
    // T1 = 20 ms: Timer F after 1.28 s.
    let (app, _ta, tb) = setup(|c| c.sip.t1_ms = 20).await;
    let w = Peer::new().await;
    let m = w
        .request(
            app.sip,
            &subscribe(
                "bob",
                "example.com",
                "alice",
                "r1",
                1,
                None,
                "UDP",
                w.addr,
                &format!("{}Event: presence\r\n", bearer(&tb)),
            ),
        )
        .await;
    assert_eq!(status(&m), 200);
    assert_eq!(app.presence.subscriptions.len(), 1);
    // Never answer: the same NOTIFY (same branch) comes again and again.
    let mut copies: Vec<Message> = Vec::new();
    while let Some(n) = w.notify(Duration::from_millis(800), 0).await {
        copies.push(n);
    }
    assert!(copies.len() >= 4, "only {} copies", copies.len());
    let via = header(&copies[0], HeaderName::Via).unwrap();
    assert!(
        copies
            .iter()
            .all(|c| header(c, HeaderName::Via).unwrap() == via)
    );
    assert!(copies.iter().all(|c| cseq(c) == cseq(&copies[0])));
    // Timer F (64·T1 = 1.28 s after the first copy) removes the subscription.
    eventually("removal after Timer F", Duration::from_secs(2), || {
        app.presence.subscriptions.is_empty()
    })
    .await;
}

#[tokio::test]
async fn a_481_from_the_watcher_removes_the_subscription() {
    let (app, ta, tb) = setup(|_| {}).await;
    let w = Peer::new().await;
    subscribed(&app, &w, &tb, "g1").await;
    assert_eq!(app.presence.subscriptions.len(), 1);
    let p = Peer::new().await;
    publish_ok(&app, &p, &ta, "g2", 1, &pidf(AOR, "t1", "", "away", "")).await;
    let n = w.notify(WAIT, 481).await.expect("NOTIFY");
    assert!(body(&n).contains("rpid:away"));
    eventually("removal after 481", Duration::from_secs(2), || {
        app.presence.subscriptions.is_empty()
    })
    .await;
}

#[tokio::test]
async fn notify_goes_over_the_watchers_tcp_connection() {
    let (app, ta, tb) = setup(|c| c.sip.t1_ms = 50).await;
    let mut s = TcpStream::connect(app.sip).await.unwrap();
    let local: SocketAddr = s.local_addr().unwrap();
    let text = subscribe(
        "bob",
        "example.com",
        "alice",
        "tc1",
        1,
        None,
        "TCP",
        local,
        &format!("{}Event: presence\r\n", bearer(&tb)),
    );
    s.write_all(text.as_bytes()).await.unwrap();
    let r = tcp_read(&mut s, WAIT).await;
    let msgs: Vec<Message> = r.messages.iter().map(parse).collect();
    let ok = msgs
        .iter()
        .find(|m| m.is_response())
        .expect("200 on the stream");
    assert_eq!(status(ok), 200);
    let n = msgs
        .iter()
        .find(|m| !m.is_response())
        .expect("NOTIFY on the stream");
    assert!(n.first_line.starts_with("NOTIFY "));
    assert!(
        header(n, HeaderName::Via)
            .unwrap()
            .starts_with("SIP/2.0/TCP"),
        "{:?}",
        header(n, HeaderName::Via)
    );
    let answer = sipreg::sip::Response::new(200).encode(n, app.sip, "");
    s.write_all(&answer).await.unwrap();

    // A change: the next NOTIFY comes on the same connection.
    let p = Peer::new().await;
    publish_ok(&app, &p, &ta, "tc2", 1, &pidf(AOR, "t1", "", "meeting", "")).await;
    let r = tcp_read(&mut s, WAIT).await;
    let n2 = r
        .messages
        .iter()
        .map(parse)
        .find(|m| !m.is_response())
        .expect("second NOTIFY over TCP");
    assert!(body(&n2).contains("rpid:meeting"), "{}", body(&n2));
    assert_eq!(cseq(&n2), cseq(n) + 1);
    let answer = sipreg::sip::Response::new(200).encode(&n2, app.sip, "");
    s.write_all(&answer).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(app.presence.subscriptions.len(), 1);

    // The connection closes: the next NOTIFY cannot go (the connection is gone, or at
    // worst Timer F of 64·T1 = 3.2 s runs out), and the subscription goes.
    drop(s);
    tokio::time::sleep(Duration::from_millis(100)).await;
    publish_ok(&app, &p, &ta, "tc3", 1, &pidf(AOR, "t2", "", "away", "")).await;
    eventually(
        "removal after the connection closed",
        Duration::from_secs(5),
        || app.presence.subscriptions.is_empty(),
    )
    .await;
}

#[tokio::test]
async fn changes_within_the_interval_are_coalesced() {
    let (app, ta, tb) = setup(|c| c.presence.notify_interval_ms = 1000).await;
    let w = Peer::new().await;
    subscribed(&app, &w, &tb, "c1").await;
    let first = std::time::Instant::now();
    let p = Peer::new().await;
    let mut etag = publish_ok(&app, &p, &ta, "c2", 1, &pidf(AOR, "t1", "", "busy", "v0")).await;
    for i in 1..=5 {
        let m = p
            .request(
                app.sip,
                &publish(
                    "alice",
                    "c2",
                    i + 1,
                    &format!("{}{PIDF_HEADERS}SIP-If-Match: {etag}\r\n", bearer(&ta)),
                    &pidf(AOR, "t1", "", "busy", &format!("v{i}")),
                ),
            )
            .await;
        assert_eq!(status(&m), 200);
        etag = header(&m, HeaderName::SipETag).unwrap();
    }
    assert!(
        first.elapsed() < Duration::from_millis(900),
        "publishing took too long"
    );
    // Six changes within the interval after the first NOTIFY: one NOTIFY, the latest
    // state, not before the interval has passed.
    let mut got = Vec::new();
    while let Some(n) = w.notify(Duration::from_millis(1500), 200).await {
        if got.is_empty() {
            assert!(
                first.elapsed() >= Duration::from_millis(900),
                "{:?}",
                first.elapsed()
            );
        }
        got.push(n);
    }
    assert_eq!(
        got.len(),
        1,
        "{:?}",
        got.iter().map(body).collect::<Vec<_>>()
    );
    assert!(body(&got[0]).contains("v5"), "{}", body(&got[0]));
}

#[tokio::test]
async fn subscription_expiry_sends_a_terminated_notify() {
    let (app, _ta, tb) = setup(|c| c.presence.subscribe_min_expires = 1).await;
    let w = Peer::new().await;
    let m = w
        .request(
            app.sip,
            &subscribe(
                "bob",
                "example.com",
                "alice",
                "x1",
                1,
                None,
                "UDP",
                w.addr,
                &format!("{}Event: presence\r\nExpires: 1\r\n", bearer(&tb)),
            ),
        )
        .await;
    assert_eq!(status(&m), 200);
    let n1 = w.notify(WAIT, 200).await.unwrap();
    assert!(sub_state(&n1).starts_with("active"));
    let n2 = w
        .notify(Duration::from_secs(4), 200)
        .await
        .expect("terminated NOTIFY");
    assert_eq!(sub_state(&n2), "terminated;reason=timeout");
    assert_eq!(cseq(&n2), cseq(&n1) + 1);
    assert_eq!(app.presence.subscriptions.len(), 0);
}

#[tokio::test]
async fn composition_as_watchers_see_it() {
    let (app, ta, tb) = setup(|c| c.presence.publish_min_expires = 1).await;
    let w = Peer::new().await;
    let (_, n0) = subscribed(&app, &w, &tb, "k1").await;
    assert!(body(&n0).contains("<basic>closed</basic>"));

    // A phone that only registers shows online with its contact.
    let phone = Peer::new().await;
    let contact = format!(
        "<sip:alice@{};transport=udp>;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-0000000000a1>\"",
        phone.addr
    );
    let m = phone
        .request(
            app.sip,
            &register("alice", "reg1", 1, &contact, &bearer(&ta)),
        )
        .await;
    assert_eq!(status(&m), 200);
    let n1 = w.notify(WAIT, 200).await.expect("NOTIFY after REGISTER");
    let b1 = body(&n1);
    assert!(
        b1.contains("<basic>open</basic>") && b1.contains(&format!("sip:alice@{}", phone.addr)),
        "{b1}"
    );

    // Two devices publish different activities: the person shows on-the-phone (rank).
    let desk = Peer::new().await;
    publish_ok(
        &app,
        &desk,
        &ta,
        "k2",
        1,
        &pidf(
            AOR,
            "desk",
            "urn:uuid:00000000-0000-1000-8000-0000000000b2",
            "away",
            "",
        ),
    )
    .await;
    let _ = w
        .notify(WAIT, 200)
        .await
        .expect("NOTIFY after first PUBLISH");
    let mobile = Peer::new().await;
    let m = mobile
        .request(
            app.sip,
            &publish(
                "alice",
                "k3",
                1,
                &format!("{}{PIDF_HEADERS}Expires: 1\r\n", bearer(&ta)),
                &pidf(
                    AOR,
                    "mobile",
                    "urn:uuid:00000000-0000-1000-8000-0000000000a1",
                    "on-the-phone",
                    "",
                ),
            ),
        )
        .await;
    assert_eq!(status(&m), 200);
    let n3 = w
        .notify(WAIT, 200)
        .await
        .expect("NOTIFY after second PUBLISH");
    let b3 = body(&n3);
    assert!(
        b3.contains("tuple id=\"desk\"") && b3.contains("tuple id=\"mobile\""),
        "{b3}"
    );
    assert!(
        b3.contains("rpid:on-the-phone") && !b3.contains("rpid:away"),
        "{b3}"
    );
    // The registered phone published (same instance): no separate registered-only tuple.
    assert_eq!(b3.matches("<tuple ").count(), 2, "{b3}");

    // The mobile's publication expires: back to away, the registration tuple returns.
    let n4 = w
        .notify(Duration::from_secs(4), 200)
        .await
        .expect("NOTIFY after expiry");
    let b4 = body(&n4);
    assert!(
        b4.contains("rpid:away") && !b4.contains("tuple id=\"mobile\""),
        "{b4}"
    );
    assert!(b4.contains(&format!("sip:alice@{}", phone.addr)), "{b4}");

    // The phone unregisters: its registration tuple goes.
    let m = phone
        .request(
            app.sip,
            &register(
                "alice",
                "reg1",
                2,
                &contact,
                &format!("{}Expires: 0\r\n", bearer(&ta)),
            ),
        )
        .await;
    assert_eq!(status(&m), 200);
    let n5 = w.notify(WAIT, 200).await.expect("NOTIFY after unregister");
    let b5 = body(&n5);
    assert!(
        !b5.contains(&format!("sip:alice@{}", phone.addr)) && b5.contains("tuple id=\"desk\""),
        "{b5}"
    );
}

#[tokio::test]
async fn subscribe_expiry_is_capped_at_the_maximum() {
    let app = AppServer::start(|c| c.presence.subscribe_max_expires = 7200).await;
    let bob = add_user(&app.users, "bob", &[]).await;
    let auth = bearer(&token(&app, &bob, None).await);
    let w = Peer::new().await;
    let m = w
        .request(
            app.sip,
            &subscribe(
                "bob",
                "example.com",
                "alice",
                "cap1",
                1,
                None,
                "UDP",
                w.addr,
                &format!("{auth}Event: presence\r\nExpires: 999999\r\n"),
            ),
        )
        .await;
    assert_eq!(status(&m), 200);
    assert_eq!(header(&m, HeaderName::Expires).as_deref(), Some("7200"));
}
