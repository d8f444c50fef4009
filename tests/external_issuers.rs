//! Tokens of trusted external issuers: a PEM public key, and a JWKS URL served on
//! loopback (fetched once, refetched on unknown kid at most once per interval).

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
