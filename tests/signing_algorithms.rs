//! `[tokens] algorithm`: sipreg's own keys as RS256 (default), ES256 or EdDSA. Tokens
//! carry the key's `alg`, JWKS publishes the right `kty`/`crv`, the validator (the SIP
//! side's and `/introspect`'s) accepts them, and a change of algorithm keeps the old
//! key's tokens valid.

mod common;

use common::{add_user, config_in, env_with};
use jsonwebtoken::jwk::AlgorithmParameters;
use sipreg::auth::{AuthError, SigningAlgorithm};
use sipreg::users::UsersService;

fn header_alg(token: &str) -> String {
    format!(
        "{:?}",
        jsonwebtoken::decode_header(token).expect("header").alg
    )
}

#[tokio::test]
async fn each_algorithm_signs_publishes_and_validates() {
    for (alg, name, kty) in [
        (SigningAlgorithm::Rs256, "RS256", "RSA"),
        (SigningAlgorithm::Es256, "ES256", "EC P256"),
        (SigningAlgorithm::EdDsa, "EdDSA", "OKP Ed25519"),
    ] {
        let e = env_with(|c| c.tokens.algorithm = alg).await;
        let u = add_user(&e.svc, "ana", &[]).await;
        // Signed off the runtime (HTTP paths) and on the caller's thread (CLI).
        let pooled = e
            .svc
            .issue_token_for(&u, None, None, "")
            .await
            .expect("token")
            .access_token;
        let direct = e
            .svc
            .issue_token(&u, None, None)
            .expect("token")
            .access_token;
        for token in [&pooled, &direct] {
            assert_eq!(header_alg(token), name);
            let claims = e.svc.validate(token).await.expect("valid");
            assert_eq!(claims.username, "ana");
            let intro = e.svc.introspect(token).await;
            assert_eq!(intro["active"], true, "{name}: {intro}");
        }
        let jwks = e.svc.jwks();
        assert_eq!(jwks.keys.len(), 1);
        let published = match &jwks.keys[0].algorithm {
            AlgorithmParameters::RSA(_) => "RSA".to_string(),
            AlgorithmParameters::EllipticCurve(p) => format!("EC {:?}", p.curve),
            AlgorithmParameters::OctetKeyPair(p) => format!("OKP {:?}", p.curve),
            other => format!("{other:?}"),
        };
        assert_eq!(published, kty);
        // A flipped signature byte is refused.
        let mut bad = pooled.clone().into_bytes();
        let i = bad.len() - 3;
        bad[i] = if bad[i] == b'A' { b'B' } else { b'A' };
        let bad = String::from_utf8(bad).expect("ascii");
        assert_eq!(
            e.svc.validate(&bad).await.unwrap_err(),
            AuthError::BadSignature,
            "{name}"
        );
    }
}

#[tokio::test]
async fn a_token_claiming_another_algorithm_than_its_key_is_refused() {
    let e = env_with(|c| c.tokens.algorithm = SigningAlgorithm::Es256).await;
    let u = add_user(&e.svc, "ana", &[]).await;
    let token = e
        .svc
        .issue_token(&u, None, None)
        .expect("token")
        .access_token;
    // Same kid and signature, header rewritten to claim EdDSA then RS256.
    let (_, rest) = token.split_once('.').expect("jwt");
    let header = jsonwebtoken::decode_header(&token).expect("header");
    for alg in [
        jsonwebtoken::Algorithm::EdDSA,
        jsonwebtoken::Algorithm::RS256,
    ] {
        let mut h = header.clone();
        h.alg = alg;
        let b64 = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            serde_json::to_vec(&h).expect("json"),
        );
        let forged = format!("{b64}.{rest}");
        assert!(matches!(
            e.svc.validate(&forged).await.unwrap_err(),
            AuthError::AlgorithmNotAllowed(_)
        ));
    }
}

#[tokio::test]
async fn changing_the_algorithm_adds_a_key_and_keeps_old_tokens_valid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = config_in(dir.path());
    let svc = UsersService::open(&config).await.expect("open");
    let u = add_user(&svc, "ana", &[]).await;
    let old = svc.issue_token(&u, None, None).expect("token").access_token;
    assert_eq!(header_alg(&old), "RS256");
    drop(svc);

    config.tokens.algorithm = SigningAlgorithm::EdDsa;
    let svc = UsersService::open(&config).await.expect("reopen");
    let new = svc.issue_token(&u, None, None).expect("token").access_token;
    assert_eq!(header_alg(&new), "EdDSA");
    assert_eq!(svc.jwks().keys.len(), 2, "the RSA key stays published");
    assert!(svc.validate(&old).await.is_ok(), "RS256 token still valid");
    assert!(svc.validate(&new).await.is_ok());
    drop(svc);
    // Same algorithm again: no further key.
    let svc = UsersService::open(&config).await.expect("reopen");
    assert_eq!(svc.jwks().keys.len(), 2);
}
