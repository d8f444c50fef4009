//! Signing keys over time and across processes: retirement after rotation, a
//! configured PEM key, a rotation by another process (the CLI) picked up by a running
//! service, concurrent refreshes, Digest switched off, leeway, and HTTP shutdown.

mod common;

use common::{PASSWORD, add_user, env, env_with};
use sipreg::auth::{AuthError, now};
use sipreg::users::{UsersError, UsersService};

#[tokio::test]
async fn rotated_out_key_retires_and_leaves_jwks() {
    let e = env().await;
    let u = add_user(&e.svc, "kim", &[]).await;
    let old_token = e.svc.issue_token(&u, None, None).unwrap().access_token;
    let old_kid = e.svc.current_kid();
    e.svc.rotate_signing_key().await.unwrap();
    assert_eq!(e.svc.jwks().keys.len(), 2);
    // Once the old key's last token has expired (pretend it is later), it retires.
    let later = now() + e.config.tokens.access_ttl_secs as i64 + 3600;
    let live = e.svc.store().live_signing_keys(later).await.unwrap();
    assert_eq!(live.len(), 1);
    e.svc.reload_keys().await.unwrap();
    let kids: Vec<_> = e
        .svc
        .jwks()
        .keys
        .iter()
        .filter_map(|k| k.common.key_id.clone())
        .collect();
    assert!(!kids.contains(&old_kid), "retired key still published");
    assert_eq!(
        e.svc.validate(&old_token).await.unwrap_err(),
        AuthError::UnknownKey
    );
}

#[tokio::test]
async fn configured_pem_key_is_used_for_signing() {
    let keys = tempfile::tempdir().unwrap();
    let (path, kid) = sipreg::auth::keys::generate_into(keys.path()).unwrap();
    let e = env_with(|c| c.tokens.signing_key_file = path.clone()).await;
    assert_eq!(e.svc.current_kid(), kid);
    let u = add_user(&e.svc, "lee", &[]).await;
    let t = e.svc.issue_token(&u, None, None).unwrap().access_token;
    assert_eq!(
        jsonwebtoken::decode_header(&t).unwrap().kid.as_deref(),
        Some(kid.as_str())
    );
    e.svc.validate(&t).await.unwrap();
    assert!(
        !e.config.tokens.key_dir.exists(),
        "no key generated when one is configured"
    );
}

#[tokio::test]
async fn rotation_by_another_process_is_picked_up() {
    let server = env().await;
    // A second service on the same store plays the CLI.
    let cli = UsersService::open(&server.config).await.unwrap();
    let u = add_user(&cli, "max", &[]).await;
    let new_kid = cli.rotate_signing_key().await.unwrap();
    assert_ne!(server.svc.current_kid(), new_kid);
    let t = cli.issue_token(&u, None, None).unwrap().access_token;
    // The server has never seen this kid: it reloads its ring and accepts the token.
    server.svc.validate(&t).await.unwrap();
    // A user disabled by the other process is refused once the server has read the
    // revocation log (what its poller does every `revocation_poll_ms`).
    let t2 = cli.issue_token(&u, None, None).unwrap().access_token;
    cli.disable_user(&u.id).await.unwrap();
    server.svc.validator().sync().await.unwrap();
    assert_eq!(
        server.svc.validate(&t2).await.unwrap_err(),
        AuthError::UserDisabled
    );
}

#[tokio::test]
async fn concurrent_refreshes_of_one_token_yield_one_winner() {
    let e = env().await;
    add_user(&e.svc, "ned", &[]).await;
    let pair = e.svc.login("ned", PASSWORD, None).await.unwrap();
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let svc = e.svc.clone();
            let r = pair.refresh_token.clone();
            tokio::spawn(async move { svc.refresh(&r).await })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => wins += 1,
            Err(UsersError::BadRefreshToken) => {}
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(wins, 1, "exactly one concurrent use may win");
}

#[tokio::test]
async fn digest_off_stores_no_ha1() {
    let e = env_with(|c| c.auth.digest_enabled = false).await;
    add_user(&e.svc, "olga", &[]).await;
    assert_eq!(e.svc.digest_ha1("olga", "MD5").await.unwrap(), None);
    let on = env().await;
    add_user(&on.svc, "olga", &[]).await;
    assert!(
        on.svc
            .digest_ha1("olga", "SHA-256")
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn leeway_is_configurable() {
    let strict = env_with(|c| c.tokens.leeway_secs = 0).await;
    let u = add_user(&strict.svc, "pia", &[]).await;
    let t = strict
        .svc
        .issue_token(&u, None, Some(1))
        .unwrap()
        .access_token;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(
        strict.svc.validate(&t).await.unwrap_err(),
        AuthError::Expired
    );
    let lenient = env().await;
    let u = add_user(&lenient.svc, "pia", &[]).await;
    let t = lenient
        .svc
        .issue_token(&u, None, Some(1))
        .unwrap()
        .access_token;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    lenient
        .svc
        .validate(&t)
        .await
        .expect("within the default 30 s leeway");
}

#[tokio::test]
async fn http_serve_stops_on_shutdown() {
    let e = env().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(sipreg::http::serve(listener, e.svc.clone(), async {
        let _ = rx.await;
    }));
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let r = client
        .get(format!("http://{addr}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    tx.send(()).unwrap();
    let done = tokio::time::timeout(std::time::Duration::from_secs(5), server).await;
    assert!(matches!(done, Ok(Ok(Ok(())))), "{done:?}");
}
