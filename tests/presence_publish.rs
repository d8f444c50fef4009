//! PUBLISH end to end (RFC 3903, issue 5): every status code (Bearer and Digest), the
//! entity-tag lifecycle, expiry, the per-AOR cap, OPTIONS advertising presence, and
//! `GET /presence/{aor}`.

mod common;

use std::time::Duration;

use common::presence::*;
use common::*;
use sipreg::sip::headers::HeaderName;

async fn token(app: &AppServer, user: &sipreg::users::User, scopes: Option<&[&str]>) -> String {
    let scopes: Option<Vec<String>> = scopes.map(|s| s.iter().map(|x| x.to_string()).collect());
    app.users
        .issue_token(user, scopes.as_deref(), None)
        .unwrap()
        .access_token
}

const AOR: &str = "sip:alice@example.com";

#[tokio::test]
async fn publish_refusals_carry_the_right_status_and_headers() {
    let app = AppServer::start(|_| {}).await;
    let alice = add_user(&app.users, "alice", &[]).await;
    let _bob = add_user(&app.users, "bob", &[]).await;
    let t = token(&app, &alice, None).await;
    let auth = bearer(&t);
    let p = Peer::new().await;
    let doc = pidf(AOR, "t1", "", "busy", "");

    // No credentials: 401 with the presence.write scope in the Bearer challenge.
    let m = p
        .request(app.sip, &publish("alice", "a1", 1, PIDF_HEADERS, &doc))
        .await;
    assert_eq!(status(&m), 401);
    let ch = header(&m, HeaderName::WwwAuthenticate).unwrap();
    assert!(ch.contains("scope=\"presence.write\""), "{ch}");

    // A token without presence.write: 403 insufficient_scope.
    let narrow = token(&app, &alice, Some(&["sip.register"])).await;
    let m = p
        .request(
            app.sip,
            &publish(
                "alice",
                "a2",
                1,
                &format!("{}{PIDF_HEADERS}", bearer(&narrow)),
                &doc,
            ),
        )
        .await;
    assert_eq!(status(&m), 403);
    assert!(
        header(&m, HeaderName::WwwAuthenticate)
            .unwrap()
            .contains("insufficient_scope")
    );

    // Someone else's presentity: 403.
    let m = p
        .request(
            app.sip,
            &publish("bob", "a3", 1, &format!("{auth}{PIDF_HEADERS}"), &doc),
        )
        .await;
    assert_eq!(status(&m), 403);

    // No Event, or another package: 489 with Allow-Events.
    for ev in ["", "Event: dialog\r\n"] {
        let m = p
            .request(
                app.sip,
                &publish(
                    "alice",
                    "a4",
                    1,
                    &format!("{auth}{ev}Content-Type: application/pidf+xml\r\n"),
                    &doc,
                ),
            )
            .await;
        assert_eq!(status(&m), 489, "{ev:?}");
        assert_eq!(
            header(&m, HeaderName::AllowEvents).as_deref(),
            Some("presence")
        );
    }

    // Another body type: 415 with Accept.
    let m = p
        .request(
            app.sip,
            &publish(
                "alice",
                "a5",
                1,
                &format!("{auth}Event: presence\r\nContent-Type: text/plain\r\n"),
                "hello",
            ),
        )
        .await;
    assert_eq!(status(&m), 415);
    assert_eq!(
        header(&m, HeaderName::Accept).as_deref(),
        Some("application/pidf+xml")
    );

    // Not PIDF: 400 naming the problem.
    let m = p
        .request(
            app.sip,
            &publish(
                "alice",
                "a6",
                1,
                &format!("{auth}{PIDF_HEADERS}"),
                "<presence",
            ),
        )
        .await;
    assert_eq!(status(&m), 400);
    assert!(
        m.first_line.contains("XML") || m.first_line.contains("PIDF"),
        "{}",
        m.first_line
    );
    let m = p
        .request(
            app.sip,
            &publish(
                "alice",
                "a6b",
                1,
                &format!("{auth}{PIDF_HEADERS}"),
                "<foo xmlns=\"urn:x\"/>",
            ),
        )
        .await;
    assert_eq!(status(&m), 400);
    assert!(
        m.first_line.contains("not a PIDF presence"),
        "{}",
        m.first_line
    );

    // Over the 16 KiB limit: 413.
    let big = pidf(AOR, "t1", "", "", &"x".repeat(17 * 1024));
    let m = p
        .request(
            app.sip,
            &publish("alice", "a7", 1, &format!("{auth}{PIDF_HEADERS}"), &big),
        )
        .await;
    assert_eq!(status(&m), 413);

    // Too brief: 423 with Min-Expires.
    let m = p
        .request(
            app.sip,
            &publish(
                "alice",
                "a8",
                1,
                &format!("{auth}{PIDF_HEADERS}Expires: 10\r\n"),
                &doc,
            ),
        )
        .await;
    assert_eq!(status(&m), 423);
    assert_eq!(header(&m, HeaderName::MinExpires).as_deref(), Some("60"));

    // No SIP-If-Match and no body: 400. Two SIP-If-Match: 400. Unknown tag: 412.
    let m = p
        .request(
            app.sip,
            &publish("alice", "a9", 1, &format!("{auth}Event: presence\r\n"), ""),
        )
        .await;
    assert_eq!(status(&m), 400);
    let m = p
        .request(
            app.sip,
            &publish(
                "alice",
                "a10",
                1,
                &format!("{auth}Event: presence\r\nSIP-If-Match: a\r\nSIP-If-Match: b\r\n"),
                "",
            ),
        )
        .await;
    assert_eq!(status(&m), 400);
    let m = p
        .request(
            app.sip,
            &publish(
                "alice",
                "a11",
                1,
                &format!("{auth}Event: presence\r\nSIP-If-Match: nosuchtag\r\n"),
                "",
            ),
        )
        .await;
    assert_eq!(status(&m), 412);
    assert!(app.presence.publications.is_empty());
}

#[tokio::test]
async fn etag_lifecycle_create_refresh_modify_remove() {
    let app = AppServer::start(|c| c.presence.publish_max_expires = 7200).await;
    let alice = add_user(&app.users, "alice", &[]).await;
    let auth = bearer(&token(&app, &alice, None).await);
    let p = Peer::new().await;
    let aor = sipreg::registrar::Aor::parse(AOR).unwrap();

    // Create: 200 with SIP-ETag and the granted Expires (capped at the maximum).
    let m = p
        .request(
            app.sip,
            &publish(
                "alice",
                "e1",
                1,
                &format!("{auth}{PIDF_HEADERS}Expires: 100000\r\n"),
                &pidf(AOR, "t1", "", "busy", "first"),
            ),
        )
        .await;
    assert_eq!(status(&m), 200);
    assert_eq!(header(&m, HeaderName::Expires).as_deref(), Some("7200"));
    let e1 = header(&m, HeaderName::SipETag).expect("SIP-ETag");
    assert_eq!(app.presence.publications.live(&aor, 0).len(), 1);
    assert!(app.presence.document(&aor).to_xml().contains("first"));

    // Refresh without a body: a new tag, same document.
    let m = p
        .request(
            app.sip,
            &publish(
                "alice",
                "e1",
                2,
                &format!("{auth}Event: presence\r\nSIP-If-Match: {e1}\r\nExpires: 600\r\n"),
                "",
            ),
        )
        .await;
    assert_eq!(status(&m), 200);
    assert_eq!(header(&m, HeaderName::Expires).as_deref(), Some("600"));
    let e2 = header(&m, HeaderName::SipETag).unwrap();
    assert_ne!(e1, e2);

    // The old tag is spent.
    let m = p
        .request(
            app.sip,
            &publish(
                "alice",
                "e1",
                3,
                &format!("{auth}Event: presence\r\nSIP-If-Match: {e1}\r\n"),
                "",
            ),
        )
        .await;
    assert_eq!(status(&m), 412);

    // Modify: the body replaces the publication (still one).
    let m = p
        .request(
            app.sip,
            &publish(
                "alice",
                "e1",
                4,
                &format!("{auth}{PIDF_HEADERS}SIP-If-Match: {e2}\r\n"),
                &pidf(AOR, "t1", "", "away", "second"),
            ),
        )
        .await;
    assert_eq!(status(&m), 200);
    let e3 = header(&m, HeaderName::SipETag).unwrap();
    assert_eq!(app.presence.publications.live(&aor, 0).len(), 1);
    let xml = app.presence.document(&aor).to_xml();
    assert!(
        xml.contains("second") && xml.contains("rpid:away") && !xml.contains("first"),
        "{xml}"
    );

    // Remove: 200 Expires: 0, no tag; the AOR is closed again.
    let m = p
        .request(
            app.sip,
            &publish(
                "alice",
                "e1",
                5,
                &format!("{auth}Event: presence\r\nSIP-If-Match: {e3}\r\nExpires: 0\r\n"),
                "",
            ),
        )
        .await;
    assert_eq!(status(&m), 200);
    assert_eq!(header(&m, HeaderName::Expires).as_deref(), Some("0"));
    assert_eq!(header(&m, HeaderName::SipETag), None);
    assert!(app.presence.publications.is_empty());
    assert!(
        app.presence
            .document(&aor)
            .to_xml()
            .contains("<basic>closed</basic>")
    );
    let m = p
        .request(
            app.sip,
            &publish(
                "alice",
                "e1",
                6,
                &format!("{auth}Event: presence\r\nSIP-If-Match: {e3}\r\n"),
                "",
            ),
        )
        .await;
    assert_eq!(status(&m), 412);
}

#[tokio::test]
async fn publications_expire_on_time() {
    let app = AppServer::start(|c| c.presence.publish_min_expires = 1).await;
    let alice = add_user(&app.users, "alice", &[]).await;
    let auth = bearer(&token(&app, &alice, None).await);
    let p = Peer::new().await;
    let aor = sipreg::registrar::Aor::parse(AOR).unwrap();
    let m = p
        .request(
            app.sip,
            &publish(
                "alice",
                "x1",
                1,
                &format!("{auth}{PIDF_HEADERS}Expires: 1\r\n"),
                &pidf(AOR, "t1", "", "busy", ""),
            ),
        )
        .await;
    assert_eq!(status(&m), 200);
    let etag = header(&m, HeaderName::SipETag).unwrap();
    assert!(app.presence.document(&aor).to_xml().contains("rpid:busy"));
    eventually("publication expiry", Duration::from_secs(4), || {
        app.presence.publications.is_empty()
    })
    .await;
    assert!(
        app.presence
            .document(&aor)
            .to_xml()
            .contains("<basic>closed</basic>")
    );
    let m = p
        .request(
            app.sip,
            &publish(
                "alice",
                "x1",
                2,
                &format!("{auth}Event: presence\r\nSIP-If-Match: {etag}\r\n"),
                "",
            ),
        )
        .await;
    assert_eq!(status(&m), 412, "an expired tag is unknown");
}

#[tokio::test]
async fn admin_may_publish_for_anyone() {
    let app = AppServer::start(|_| {}).await;
    let root = add_user(&app.users, "root", &["admin"]).await;
    let auth = bearer(&token(&app, &root, None).await);
    let p = Peer::new().await;
    let m = p
        .request(
            app.sip,
            &publish(
                "alice",
                "ad1",
                1,
                &format!("{auth}{PIDF_HEADERS}"),
                &pidf(AOR, "t1", "", "", ""),
            ),
        )
        .await;
    assert_eq!(status(&m), 200);
}

#[tokio::test]
async fn options_advertises_the_presence_package() {
    let app = AppServer::start(|_| {}).await;
    let p = Peer::new().await;
    let m = p.request(app.sip, &request("OPTIONS", "op1", "")).await;
    assert_eq!(status(&m), 200);
    let allow = header(&m, HeaderName::Allow).unwrap();
    for method in ["REGISTER", "PUBLISH", "SUBSCRIBE"] {
        assert!(allow.contains(method), "{allow}");
    }
    assert_eq!(
        header(&m, HeaderName::AllowEvents).as_deref(),
        Some("presence")
    );
    assert_eq!(
        header(&m, HeaderName::Accept).as_deref(),
        Some("application/pidf+xml")
    );
}

#[tokio::test]
async fn http_presence_document_pidf_and_json() {
    let app = AppServer::start(|_| {}).await;
    let alice = add_user(&app.users, "alice", &[]).await;
    let root = add_user(&app.users, "root", &["admin"]).await;
    let user_token = token(&app, &alice, None).await;
    let admin_token = token(&app, &root, None).await;
    let p = Peer::new().await;
    let m = p
        .request(
            app.sip,
            &publish(
                "alice",
                "h1",
                1,
                &format!("{}{PIDF_HEADERS}", bearer(&user_token)),
                &pidf(AOR, "t1", "", "on-the-phone", "call &lt;me&gt;"),
            ),
        )
        .await;
    assert_eq!(status(&m), 200);

    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = format!("http://{}/presence/sip:alice@example.com", app.http);
    let r = client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = client
        .get(&url)
        .bearer_auth(&user_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = client
        .get(&url)
        .bearer_auth(&admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/pidf+xml");
    let xml = r.text().await.unwrap();
    assert!(
        xml.contains("entity=\"sip:alice@example.com\"") && xml.contains("rpid:on-the-phone"),
        "{xml}"
    );
    assert!(xml.contains("call &lt;me&gt;"), "{xml}");

    let r = client
        .get(&url)
        .bearer_auth(&admin_token)
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["entity"], "sip:alice@example.com");
    assert_eq!(v["activities"], serde_json::json!(["on-the-phone"]));
    assert_eq!(v["note"], "call <me>");
    assert_eq!(v["tuples"][0]["basic"], "open");

    let r = client
        .get(format!("http://{}/presence/not-a-uri", app.http))
        .bearer_auth(&admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn publications_per_presentity_are_bounded() {
    let app = AppServer::start(|c| c.presence.max_publications_per_aor = 2).await;
    let alice = add_user(&app.users, "alice", &[]).await;
    let auth = bearer(&token(&app, &alice, None).await);
    let p = Peer::new().await;
    let doc = pidf(AOR, "t1", "", "", "");
    for (i, want) in [(1, 200), (2, 200), (3, 403)] {
        let m = p
            .request(
                app.sip,
                &publish(
                    "alice",
                    &format!("cap{i}"),
                    1,
                    &format!("{auth}{PIDF_HEADERS}"),
                    &doc,
                ),
            )
            .await;
        assert_eq!(status(&m), want, "{}", m.first_line);
    }
    assert_eq!(app.presence.publications.len(), 2);
}

/// An `Authorization: Digest` (SHA-256, qop=auth) answering challenge `ch`.
fn digest(ch: &str, method: &str, uri: &str) -> String {
    use sha2::{Digest, Sha256};
    use sipreg::sip::headers::{TypedHeader, WwwAuthenticate};
    let hex = |s: &str| -> String {
        Sha256::digest(s.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let a = WwwAuthenticate::parse_str(ch).unwrap().0;
    let (realm, nonce) = (a.param("realm").unwrap(), a.param("nonce").unwrap());
    let ha1 = hex(&format!("alice:{realm}:{PASSWORD}"));
    let ha2 = hex(&format!("{method}:{uri}"));
    let response = hex(&format!("{ha1}:{nonce}:00000001:c0ffee:auth:{ha2}"));
    format!(
        "Authorization: Digest username=\"alice\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\", algorithm=SHA-256, qop=auth, nc=00000001, cnonce=\"c0ffee\"\r\n"
    )
}

#[tokio::test]
async fn digest_publish_is_accepted_like_a_digest_register() {
    let app = AppServer::start(|_| {}).await;
    add_user(&app.users, "alice", &[]).await;
    let p = Peer::new().await;
    let doc = pidf(AOR, "t1", "", "busy", "");
    let m = p
        .request(app.sip, &publish("alice", "dg1", 1, PIDF_HEADERS, &doc))
        .await;
    assert_eq!(status(&m), 401);
    let ch = m
        .headers
        .all(HeaderName::WwwAuthenticate)
        .map(|h| h.value.to_string())
        .find(|c| c.starts_with("Digest ") && c.contains("SHA-256"))
        .expect("a SHA-256 Digest challenge");
    let auth = digest(&ch, "PUBLISH", AOR);
    let m = p
        .request(
            app.sip,
            &publish("alice", "dg1", 2, &format!("{auth}{PIDF_HEADERS}"), &doc),
        )
        .await;
    assert_eq!(status(&m), 200, "{}", m.first_line);
    assert!(header(&m, HeaderName::SipETag).is_some());
}
