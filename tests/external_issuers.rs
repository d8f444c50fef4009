//! Tokens of trusted external issuers: a PEM public key, a JWKS URL served on
//! loopback (fetched once, refetched on unknown kid at most once per interval), OpenID
//! discovery (the last good keys kept through an outage, a document naming another
//! issuer distrusted), the users their tokens name (refused or provisioned), and the
//! list replaced while running (reload).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::routing::get;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use sipreg::auth::keys::{generate_into, load_pem};
use sipreg::auth::{AuthError, Provision, TrustedIssuer, now};

struct IdpKey {
    enc: EncodingKey,
    kid: String,
    jwk: jsonwebtoken::jwk::Jwk,
    public_pem: String,
}

fn idp_key(dir: &std::path::Path) -> IdpKey {
    use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey, LineEnding};
    let (path, kid) = generate_into(dir).unwrap();
    let pem = std::fs::read_to_string(&path).unwrap();
    let private = rsa::PrivateKey::from_pkcs8_pem(&pem).unwrap();
    IdpKey {
        enc: EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
        jwk: load_pem(pem.as_bytes(), 0, None).unwrap().jwk,
        public_pem: private
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap(),
        kid,
    }
}

fn token(key: &IdpKey, kid: Option<&str>, iss: &str, aud: &str) -> String {
    let mut h = Header::new(Algorithm::RS256);
    h.kid = kid.map(str::to_string);
    let now = now();
    let c = json!({"iss": iss, "sub": "ext-user-1", "preferred_username": "ext-user", "aud": aud, "exp": now + 300, "iat": now,
                   "jti": uuid::Uuid::new_v4().to_string(), "scope": "presence.read"});
    jsonwebtoken::encode(&h, &c, &key.enc).unwrap()
}

#[tokio::test]
async fn pem_configured_issuer() {
    let idp_dir = tempfile::tempdir().unwrap();
    let key = idp_key(idp_dir.path());
    let pem_path = idp_dir.path().join("idp-public.pem");
    std::fs::write(&pem_path, &key.public_pem).unwrap();
    let e = common::env_with(|c| {
        c.tokens.trusted_issuers.push(TrustedIssuer {
            issuer: "https://idp.example".into(),
            audiences: vec!["sip".into()],
            public_key_file: Some(pem_path.clone()),
            jwks_url: None,
            jwks_refresh_secs: 300,
            jwks_min_refetch_secs: 30,
            provision: Provision::Auto,
            ..Default::default()
        })
    })
    .await;
    let v = e.svc.validator();
    let c = v
        .validate(&token(&key, None, "https://idp.example", "sip"))
        .await
        .unwrap();
    // The issuer's user maps to a local one (created on first sight here).
    assert_eq!(c.username, "ext-user");
    assert_eq!(c.sub, e.svc.get_user_by_name("ext-user").await.unwrap().id);
    assert!(c.has_scope("presence.read"));
    assert_eq!(
        v.validate(&token(&key, None, "https://idp.example", "web"))
            .await
            .unwrap_err(),
        AuthError::WrongAudience
    );
    assert_eq!(
        v.validate(&token(&key, None, "https://other.example", "sip"))
            .await
            .unwrap_err(),
        AuthError::WrongIssuer
    );
    // An external token cannot pass itself off as a local one.
    assert!(
        v.validate(&token(&key, Some(&key.kid), "https://sipreg.local", "sip"))
            .await
            .is_err()
    );
    // The mapped user is remembered: a new token of theirs needs no store query.
    e.svc.store().pool().close().await;
    let c = v
        .validate(&token(&key, None, "https://idp.example", "sip"))
        .await
        .unwrap();
    assert_eq!(c.username, "ext-user");
}

#[tokio::test]
async fn trusted_issuers_replaced_live() {
    let idp_dir = tempfile::tempdir().unwrap();
    let key = idp_key(idp_dir.path());
    let pem_path = idp_dir.path().join("idp-public.pem");
    std::fs::write(&pem_path, &key.public_pem).unwrap();
    let issuer = TrustedIssuer {
        issuer: "https://idp.example".into(),
        audiences: vec!["sip".into()],
        public_key_file: Some(pem_path.clone()),
        provision: Provision::Auto,
        ..Default::default()
    };
    let e = common::env_with(|c| c.tokens.trusted_issuers.push(issuer.clone())).await;
    let v = e.svc.validator();
    let t = token(&key, None, "https://idp.example", "sip");
    assert_eq!(v.validate(&t).await.unwrap().username, "ext-user");
    // The same list: nothing added, changed or removed.
    assert!(
        v.set_trusted_issuers(std::slice::from_ref(&issuer))
            .unwrap()
            .is_empty()
    );
    assert!(v.validate_cached(&t).is_some(), "the cached verdict stays");
    // Another audience: the issuer changed, its cached verdicts are gone.
    let other_aud = TrustedIssuer {
        audiences: vec!["web".into()],
        ..issuer.clone()
    };
    assert_eq!(
        v.set_trusted_issuers(&[other_aud]).unwrap(),
        ["https://idp.example"]
    );
    assert!(v.validate_cached(&t).is_none());
    assert_eq!(v.validate(&t).await.unwrap_err(), AuthError::WrongAudience);
    // Removed: refused.
    assert_eq!(v.set_trusted_issuers(&[]).unwrap(), ["https://idp.example"]);
    assert_eq!(v.validate(&t).await.unwrap_err(), AuthError::WrongIssuer);
    // An unreadable key file is refused and changes nothing.
    let broken = TrustedIssuer {
        public_key_file: Some(idp_dir.path().join("missing.pem")),
        ..issuer
    };
    assert!(v.set_trusted_issuers(&[broken]).is_err());
    assert_eq!(v.validate(&t).await.unwrap_err(), AuthError::WrongIssuer);
}

#[tokio::test]
async fn jwks_url_issuer_with_rate_limited_refetch() {
    let idp_dir = tempfile::tempdir().unwrap();
    let first = idp_key(idp_dir.path());
    let second = idp_key(idp_dir.path());
    let (url, served, hits) = jwks_server(vec![first.jwk.clone()]).await;

    let e = common::env_with(|c| {
        c.tokens.trusted_issuers.push(TrustedIssuer {
            issuer: "https://idp.example".into(),
            audiences: vec!["sip".into()],
            public_key_file: None,
            jwks_url: Some(url.clone()),
            jwks_refresh_secs: 300,
            jwks_min_refetch_secs: 1,
            provision: Provision::Auto,
            ..Default::default()
        })
    })
    .await;
    let v = e.svc.validator();
    let iss = "https://idp.example";
    v.validate(&token(&first, Some(&first.kid), iss, "sip"))
        .await
        .unwrap();
    v.validate(&token(&first, Some(&first.kid), iss, "sip"))
        .await
        .unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 1, "JWKS fetched once");

    tokio::time::sleep(Duration::from_millis(1100)).await;
    for _ in 0..3 {
        let t = token(&first, Some("unknown-kid"), iss, "sip");
        assert_eq!(v.validate(&t).await.unwrap_err(), AuthError::UnknownKey);
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        2,
        "one refetch per interval for unknown kids"
    );

    // The IdP rotates: the new kid is picked up by the next allowed refetch.
    served.lock().unwrap().keys.push(second.jwk.clone());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    v.validate(&token(&second, Some(&second.kid), iss, "sip"))
        .await
        .unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 3);
    // A token signed by one key but naming the other kid fails the signature check.
    let t = token(&first, Some(&second.kid), iss, "sip");
    assert_eq!(v.validate(&t).await.unwrap_err(), AuthError::BadSignature);
}

type Served = Arc<std::sync::Mutex<JwkSet>>;

/// A JWKS endpoint on loopback that counts its hits.
async fn jwks_server(keys: Vec<jsonwebtoken::jwk::Jwk>) -> (String, Served, Arc<AtomicUsize>) {
    let served = Arc::new(std::sync::Mutex::new(JwkSet { keys }));
    let hits = Arc::new(AtomicUsize::new(0));
    let app = {
        let (served, hits) = (served.clone(), hits.clone());
        axum::Router::new().route(
            "/jwks",
            get(move || {
                let (served, hits) = (served.clone(), hits.clone());
                async move {
                    hits.fetch_add(1, Ordering::SeqCst);
                    let set = served.lock().unwrap().clone();
                    axum::Json(set)
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, served, hits)
}

#[tokio::test]
async fn stale_jwks_is_refreshed_in_the_background() {
    let idp_dir = tempfile::tempdir().unwrap();
    let key = idp_key(idp_dir.path());
    let (url, _served, hits) = jwks_server(vec![key.jwk.clone()]).await;
    let e = common::env_with(|c| {
        c.tokens.trusted_issuers.push(TrustedIssuer {
            issuer: "https://idp.example".into(),
            audiences: vec!["sip".into()],
            public_key_file: None,
            jwks_url: Some(url.clone()),
            jwks_refresh_secs: 1,
            jwks_min_refetch_secs: 1,
            provision: Provision::Auto,
            ..Default::default()
        })
    })
    .await;
    let v = e.svc.validator();
    let iss = "https://idp.example";
    v.validate(&token(&key, Some(&key.kid), iss, "sip"))
        .await
        .unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // Answered from the known keys at once; the refresh happens behind it.
    v.validate(&token(&key, Some(&key.kid), iss, "sip"))
        .await
        .unwrap();
    for _ in 0..100 {
        if hits.load(Ordering::SeqCst) >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(hits.load(Ordering::SeqCst), 2, "one background refresh");
}

/// An OpenID provider's two documents on loopback: discovery and JWKS, both counted,
/// both answering 503 while `up` is false.
struct Idp {
    base: String,
    served: Served,
    hits: Arc<AtomicUsize>,
    up: Arc<std::sync::atomic::AtomicBool>,
}

async fn discovery_server(keys: Vec<jsonwebtoken::jwk::Jwk>, lie_about_issuer: bool) -> Idp {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use std::sync::atomic::AtomicBool;
    let served = Arc::new(std::sync::Mutex::new(JwkSet { keys }));
    let hits = Arc::new(AtomicUsize::new(0));
    let up = Arc::new(AtomicBool::new(true));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let doc = json!({
        "issuer": if lie_about_issuer { "https://someone-else.example".to_string() } else { base.clone() },
        "jwks_uri": format!("{base}/keys"),
    });
    let app = {
        let (served, hits, up, hits2, up2) = (
            served.clone(),
            hits.clone(),
            up.clone(),
            hits.clone(),
            up.clone(),
        );
        axum::Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(move || {
                    let (doc, hits, up) = (doc.clone(), hits2.clone(), up2.clone());
                    async move {
                        hits.fetch_add(1, Ordering::SeqCst);
                        if !up.load(Ordering::SeqCst) {
                            return StatusCode::SERVICE_UNAVAILABLE.into_response();
                        }
                        axum::Json(doc).into_response()
                    }
                }),
            )
            .route(
                "/keys",
                get(move || {
                    let (served, hits, up) = (served.clone(), hits.clone(), up.clone());
                    async move {
                        hits.fetch_add(1, Ordering::SeqCst);
                        if !up.load(Ordering::SeqCst) {
                            return StatusCode::SERVICE_UNAVAILABLE.into_response();
                        }
                        axum::Json(served.lock().unwrap().clone()).into_response()
                    }
                }),
            )
    };
    tokio::spawn(async move { axum::serve(listener, app).await });
    Idp {
        base,
        served,
        hits,
        up,
    }
}

#[tokio::test]
async fn discovery_finds_the_keys_and_an_outage_keeps_the_last_good_ones() {
    let idp_dir = tempfile::tempdir().unwrap();
    let key = idp_key(idp_dir.path());
    let idp = discovery_server(vec![key.jwk.clone()], false).await;
    let iss = idp.base.clone();
    let e = common::env_with(|c| {
        c.tokens.trusted_issuers.push(TrustedIssuer {
            issuer: iss.clone(),
            audiences: vec!["sip".into()],
            // The scheduled refresh at its shortest period (5 s).
            jwks_refresh_secs: 0,
            jwks_min_refetch_secs: 0,
            ..Default::default()
        })
    })
    .await;
    let user = common::add_user(&e.svc, "ext-user", &[]).await;
    let v = e.svc.validator();
    let c = v
        .validate(&token(&key, Some(&key.kid), &iss, "sip"))
        .await
        .unwrap();
    assert_eq!(
        (c.sub.as_str(), c.username.as_str()),
        (user.id.as_str(), "ext-user")
    );
    assert_eq!(
        idp.hits.load(Ordering::SeqCst),
        2,
        "discovery, then the JWKS"
    );

    // The provider goes down: an unknown kid makes sipreg try (and fail) to refetch...
    idp.up.store(false, Ordering::SeqCst);
    let t = token(&key, Some("rotated-kid"), &iss, "sip");
    assert_eq!(v.validate(&t).await.unwrap_err(), AuthError::UnknownKey);
    assert!(idp.hits.load(Ordering::SeqCst) > 2, "a refetch was tried");
    // ...and the keys it had keep verifying.
    v.validate(&token(&key, Some(&key.kid), &iss, "sip"))
        .await
        .unwrap();

    // Back up with a new key: discovered again, the new kid verifies.
    let second = idp_key(idp_dir.path());
    idp.served.lock().unwrap().keys = vec![second.jwk.clone()];
    idp.up.store(true, Ordering::SeqCst);
    v.validate(&token(&second, Some(&second.kid), &iss, "sip"))
        .await
        .unwrap();

    // With no token arriving, the scheduled refresh still fetches the keys.
    let seen = idp.hits.load(Ordering::SeqCst);
    for _ in 0..300 {
        if idp.hits.load(Ordering::SeqCst) > seen {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        idp.hits.load(Ordering::SeqCst) > seen,
        "a scheduled refresh"
    );
}

#[tokio::test]
async fn a_discovery_document_naming_another_issuer_is_not_trusted() {
    let idp_dir = tempfile::tempdir().unwrap();
    let key = idp_key(idp_dir.path());
    let idp = discovery_server(vec![key.jwk.clone()], true).await;
    let iss = idp.base.clone();
    let e = common::env_with(|c| {
        c.tokens.trusted_issuers.push(TrustedIssuer {
            issuer: iss.clone(),
            audiences: vec!["sip".into()],
            provision: Provision::Auto,
            ..Default::default()
        })
    })
    .await;
    let t = token(&key, Some(&key.kid), &iss, "sip");
    assert_eq!(
        e.svc.validator().validate(&t).await.unwrap_err(),
        AuthError::UnknownKey
    );
    assert_eq!(
        idp.hits.load(Ordering::SeqCst),
        1,
        "the JWKS was never fetched"
    );
}

#[tokio::test]
async fn plain_http_keys_are_refused_unless_on_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config_in(dir.path());
    config.tokens.trusted_issuers.push(TrustedIssuer {
        issuer: "http://idp.example".into(),
        audiences: vec!["sip".into()],
        ..Default::default()
    });
    let err = sipreg::users::UsersService::open(&config)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("must be https"), "{err}");
}

#[tokio::test]
async fn unknown_users_are_refused_or_provisioned_without_a_password() {
    let idp_dir = tempfile::tempdir().unwrap();
    let key = idp_key(idp_dir.path());
    let pem_path = idp_dir.path().join("idp-public.pem");
    std::fs::write(&pem_path, &key.public_pem).unwrap();
    let issuer = |iss: &str, provision| TrustedIssuer {
        issuer: iss.into(),
        audiences: vec!["sip".into()],
        public_key_file: Some(pem_path.clone()),
        provision,
        ..Default::default()
    };
    let e = common::env_with(|c| {
        c.tokens
            .trusted_issuers
            .push(issuer("https://strict.example", Provision::Refuse));
        c.tokens
            .trusted_issuers
            .push(issuer("https://open.example", Provision::Auto));
    })
    .await;
    let v = e.svc.validator();
    // The token names ext-user, whom sipreg does not know.
    let strict = token(&key, None, "https://strict.example", "sip");
    assert_eq!(
        v.validate(&strict).await.unwrap_err(),
        AuthError::UnknownUser
    );
    assert!(
        e.svc.get_user_by_name("ext-user").await.is_err(),
        "not created"
    );

    let open = token(&key, None, "https://open.example", "sip");
    let c = v.validate(&open).await.unwrap();
    let user = e.svc.get_user_by_name("ext-user").await.unwrap();
    assert_eq!(c.sub, user.id);
    assert!(user.scopes.is_empty(), "its scopes come from its tokens");
    assert_eq!(
        e.svc.digest_ha1("ext-user", "SHA-256").await.unwrap(),
        None,
        "no password"
    );
    assert!(c.has_scope("presence.read"));
    // Now known, the strict issuer accepts it too; a second token finds the same user.
    let c2 = v
        .validate(&token(&key, None, "https://strict.example", "sip"))
        .await
        .unwrap();
    assert_eq!(c2.sub, user.id);
    // A disabled user is refused.
    e.svc.disable_user(&user.id).await.unwrap();
    assert_eq!(
        v.validate(&token(&key, None, "https://open.example", "sip"))
            .await
            .unwrap_err(),
        AuthError::UserDisabled
    );
}
