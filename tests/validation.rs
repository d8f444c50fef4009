//! Token validation without the store (issue 15 items 2 and 4): revocations (refresh
//! families, disabled users, API keys, removed clients) reach cached verdicts at once, in
//! this process and, through the revocation log, from another process sharing the store; a first-sighting token validates with the store gone
//! (while Digest, which needs it, gets 503); a verdict leaves the cache at its token's
//! `exp`; a full verification pool answers 503 with Retry-After at once.

mod common;

use std::time::{Duration, Instant};

use common::*;
use sipreg::auth::AuthError;
use sipreg::sip::headers::HeaderName;
use sipreg::users::UsersService;
use tokio::net::UdpSocket;

const WAIT: Duration = Duration::from_secs(5);

async fn send(server: std::net::SocketAddr, msg: &str) -> sipreg::sip::Message {
    let r = udp_exchange(server, msg.as_bytes(), WAIT).await;
    assert_eq!(r.len(), 1, "one answer expected, got {r:?}");
    parse(&r[0])
}

#[tokio::test]
async fn a_revoked_familys_cached_access_token_is_refused_at_once() {
    let e = env().await;
    add_user(&e.svc, "fay", &[]).await;
    let pair = e.svc.login("fay", PASSWORD, None).await.unwrap();
    let v = e.svc.validator();
    let t = &pair.access.access_token;
    v.validate(t).await.unwrap();
    assert!(v.validate_cached(t).is_some_and(|r| r.is_ok()), "cached");
    // Logout with the refresh token only: the family goes, and its access token too.
    e.svc.logout(Some(&pair.refresh_token), None).await.unwrap();
    assert!(
        v.validate_cached(t).is_none_or(|r| r.is_err()),
        "the cached verdict must not survive the family's revocation"
    );
    assert_eq!(v.validate(t).await.unwrap_err(), AuthError::Revoked);
    // A new session is not affected.
    let again = e.svc.login("fay", PASSWORD, None).await.unwrap();
    v.validate(&again.access.access_token).await.unwrap();
}

#[tokio::test]
async fn a_disabled_users_cached_token_is_refused_at_once_and_back_when_enabled() {
    let e = env().await;
    let u = add_user(&e.svc, "dina", &[]).await;
    let t = e.svc.issue_token(&u, None, None).unwrap().access_token;
    let v = e.svc.validator();
    v.validate(&t).await.unwrap();
    e.svc.disable_user(&u.id).await.unwrap();
    assert!(v.validate_cached(&t).is_none_or(|r| r.is_err()));
    assert_eq!(v.validate(&t).await.unwrap_err(), AuthError::UserDisabled);
    e.svc
        .update_user(
            &u.id,
            sipreg::users::UserUpdate {
                active: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    v.validate(&t).await.unwrap();
}

/// Another process (a second service on the same SQLite file, as the CLI is) disables a
/// user and revokes a family; the running server, which had both tokens cached, refuses
/// them once its poller has read the revocation log.
#[tokio::test]
async fn another_processes_revocations_are_honoured_within_seconds() {
    let app = AppServer::start(|c| c.tokens.revocation_poll_ms = 200).await;
    let cli = UsersService::open(&app_config(app.dir.path()))
        .await
        .unwrap();
    let u = add_user(&app.users, "otto", &[]).await;
    add_user(&app.users, "olga", &[]).await;
    let t = app.users.issue_token(&u, None, None).unwrap().access_token;
    let pair = app.users.login("olga", PASSWORD, None).await.unwrap();
    let v = app.users.validator();
    v.validate(&t).await.unwrap();
    v.validate(&pair.access.access_token).await.unwrap();

    cli.disable_user(&u.id).await.unwrap();
    cli.logout(Some(&pair.refresh_token), None).await.unwrap();
    let accepted = |t: &str| v.validate_cached(t).is_some_and(|r| r.is_ok());
    presence::eventually("both cached tokens refused", Duration::from_secs(3), || {
        !accepted(&t) && !accepted(&pair.access.access_token)
    })
    .await;
    assert_eq!(v.validate(&t).await.unwrap_err(), AuthError::UserDisabled);
    assert_eq!(
        v.validate(&pair.access.access_token).await.unwrap_err(),
        AuthError::Revoked
    );
}

/// With the store closed, a token never seen before still validates (signature and
/// in-memory revocation state only) and its REGISTER is answered 200; a Digest REGISTER,
/// which needs the store, gets 503.
#[tokio::test]
async fn a_first_sighting_token_needs_no_store_query() {
    let app = AppServer::start(|c| {
        c.registrar.persistence = sipreg::registrar::Persistence::Memory;
    })
    .await;
    let u = add_user(&app.users, "nora", &[]).await;
    let t = app.users.issue_token(&u, None, None).unwrap().access_token;
    app.users.store().pool().close().await;
    assert!(!app.users.store().ping().await, "the store is closed");

    let v = app.users.validator();
    assert!(v.validate_cached(&t).is_none(), "never seen before");
    let reg = presence::register(
        "nora",
        "n1",
        1,
        "<sip:nora@192.0.2.7>",
        &presence::bearer(&t),
    );
    assert_eq!(status(&send(app.sip, &reg).await), 200);

    let m = send(
        app.sip,
        &presence::register("nora", "n2", 1, "<sip:nora@192.0.2.7>", ""),
    )
    .await;
    assert_eq!(status(&m), 401);
    let digest = m
        .headers
        .all(HeaderName::WwwAuthenticate)
        .map(|h| h.value.to_string())
        .find(|c| c.starts_with("Digest") && c.contains("SHA-256"))
        .expect("a Digest challenge");
    let nonce = digest
        .split("nonce=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("nonce");
    // The response is never compared: the HA1 look-up fails first.
    let auth = format!(
        "Authorization: Digest username=\"nora\", realm=\"sipreg\", nonce=\"{nonce}\", \
         uri=\"sip:example.com\", response=\"{}\", algorithm=SHA-256, qop=auth, \
         nc=00000001, cnonce=\"ab\"\r\n",
        "0".repeat(64)
    );
    let m = send(
        app.sip,
        &presence::register("nora", "n2", 2, "<sip:nora@192.0.2.7>", &auth),
    )
    .await;
    assert_eq!(status(&m), 503);
}

/// A verdict lives until its token's `exp`, not a common deadline, and then leaves the
/// cache (not just hidden).
#[tokio::test]
async fn a_cache_entry_is_gone_after_exp() {
    let e = env_with(|c| c.tokens.leeway_secs = 0).await;
    let u = add_user(&e.svc, "esme", &[]).await;
    let short = e.svc.issue_token(&u, None, Some(2)).unwrap().access_token;
    let long = e.svc.issue_token(&u, None, None).unwrap().access_token;
    let v = e.svc.validator();
    v.validate(&short).await.unwrap();
    v.validate(&long).await.unwrap();
    assert_eq!(v.cache_len(), 2);
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert!(v.validate_cached(&short).is_none());
    assert_eq!(v.cache_len(), 1, "the expired verdict is evicted");
    assert_eq!(v.validate(&short).await.unwrap_err(), AuthError::Expired);
    assert!(v.validate_cached(&long).is_some_and(|r| r.is_ok()));
}

/// One verification thread and no waiting room: of a burst of new tokens, those that
/// find the thread busy get 503 with Retry-After at once; the others 200.
#[tokio::test]
async fn a_full_verification_pool_answers_503_with_retry_after() {
    let app = AppServer::start(|c| {
        c.registrar.persistence = sipreg::registrar::Persistence::Memory;
        c.tokens.verify_threads = 1;
        c.tokens.verify_queue = 0;
    })
    .await;
    let u = add_user(&app.users, "bea", &[]).await;
    const BURST: usize = 100;
    let tokens: Vec<String> = (0..BURST)
        .map(|_| app.users.issue_token(&u, None, None).unwrap().access_token)
        .collect();
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for (i, t) in tokens.iter().enumerate() {
        let reg = presence::register(
            "bea",
            &format!("b{i}"),
            1,
            &format!("<sip:bea@192.0.2.8:{}>", 5000 + i),
            &presence::bearer(t),
        );
        sock.send_to(reg.as_bytes(), app.sip).await.unwrap();
    }
    let mut answers = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while answers.len() < BURST && Instant::now() < deadline {
        answers.extend(udp_collect(&sock, Duration::from_millis(500)).await);
    }
    let answers: Vec<_> = answers.iter().map(parse).collect();
    assert_eq!(answers.len(), BURST, "every REGISTER answered");
    let busy: Vec<_> = answers.iter().filter(|m| status(m) == 503).collect();
    let ok = answers.iter().filter(|m| status(m) == 200).count();
    assert_eq!(busy.len() + ok, BURST, "only 200 and 503");
    assert!(
        !busy.is_empty(),
        "a burst on one thread with no queue must overflow"
    );
    assert!(ok > 0, "the thread kept working");
    for m in busy {
        assert_eq!(
            presence::header_named(m, "Retry-After").as_deref(),
            Some("1")
        );
    }
}

#[tokio::test]
async fn a_revoked_api_keys_cached_verdict_is_refused_at_once() {
    let e = env().await;
    let u = add_user(&e.svc, "kay", &[]).await;
    let (k, key) = e.svc.create_api_key(&u.id, "ci", None, None).await.unwrap();
    let v = e.svc.validator();
    v.validate(&key).await.unwrap();
    assert!(v.validate_cached(&key).is_some_and(|r| r.is_ok()), "cached");
    e.svc.revoke_api_key(&k.id).await.unwrap();
    assert!(v.validate_cached(&key).is_none_or(|r| r.is_err()));
    assert_eq!(v.validate(&key).await.unwrap_err(), AuthError::Revoked);
}

/// A `client_credentials` token stands while its client is registered; removing the
/// client refuses its cached token at once.
#[tokio::test]
async fn a_removed_clients_cached_token_is_refused_at_once() {
    let e = env().await;
    let client = sipreg::users::store::ClientRecord {
        id: "svc-bot".into(),
        name: "bot".into(),
        secret_hash: Some("0".repeat(64)),
        grants: vec!["client_credentials".into()],
        redirect_uris: vec![],
        scopes: vec!["presence.read".into()],
        created_at: sipreg::auth::now(),
    };
    e.svc.store().insert_client(&client).await.unwrap();
    e.svc.sync_validator().await;
    let t = e
        .svc
        .issue_client_token("svc-bot", &["presence.read".to_string()])
        .await
        .unwrap()
        .access_token;
    let v = e.svc.validator();
    v.validate(&t).await.unwrap();
    assert!(v.validate_cached(&t).is_some_and(|r| r.is_ok()), "cached");
    assert!(e.svc.store().delete_client("svc-bot").await.unwrap());
    e.svc.sync_validator().await;
    assert!(v.validate_cached(&t).is_none_or(|r| r.is_err()));
    assert_eq!(v.validate(&t).await.unwrap_err(), AuthError::UserDisabled);
}
