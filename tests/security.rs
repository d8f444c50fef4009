//! Hostile tokens and inputs: every one is rejected (with the expected reason) and
//! nothing panics; SQL metacharacters round-trip; the key file is private; secrets
//! never reach the logs.

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use common::{PASSWORD, add_user, env};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use sipreg::auth::{AuthError, now};
use sipreg::users::{NewUser, UserQuery, UsersService};

/// The service's own signing key, to forge tokens that differ in one claim only.
fn own_key(e: &common::Env) -> EncodingKey {
    let kid = e.svc.current_kid();
    let pem = std::fs::read(e.config.tokens.key_dir.join(format!("signing-{kid}.pem"))).unwrap();
    EncodingKey::from_rsa_pem(&pem).unwrap()
}

fn claims(svc: &UsersService, sub: &str) -> serde_json::Value {
    let now = now();
    json!({
        "iss": svc.config().tokens.issuer, "sub": sub, "aud": ["sip"],
        "exp": now + 600, "iat": now, "nbf": now, "jti": uuid::Uuid::new_v4().to_string(),
        "username": "mallory", "roles": [], "scope": "sip.register admin",
    })
}

fn sign(e: &common::Env, c: &serde_json::Value) -> String {
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some(e.svc.current_kid());
    jsonwebtoken::encode(&h, c, &own_key(e)).unwrap()
}

fn unsigned(header: serde_json::Value, c: &serde_json::Value) -> String {
    format!(
        "{}.{}.",
        B64.encode(header.to_string()),
        B64.encode(c.to_string())
    )
}

#[tokio::test]
async fn crafted_tokens_are_rejected_with_the_right_reason() {
    let e = env().await;
    let u = add_user(&e.svc, "mallory", &[]).await;
    let good = claims(&e.svc, &u.id);
    let v = e.svc.validator();
    assert!(
        v.validate(&sign(&e, &good)).await.is_ok(),
        "control token must pass"
    );
    let kid = e.svc.current_kid();

    let none = unsigned(json!({"alg": "none", "typ": "JWT", "kid": kid}), &good);
    assert_eq!(
        v.validate(&none).await.unwrap_err(),
        AuthError::AlgorithmNotAllowed("none".into())
    );

    // HS256 keyed with the public key (the classic RS/HS confusion).
    let public_pem = {
        use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey, LineEnding};
        let path = e.config.tokens.key_dir.join(format!("signing-{kid}.pem"));
        let private =
            rsa::PrivateKey::from_pkcs8_pem(&std::fs::read_to_string(path).unwrap()).unwrap();
        private
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap()
    };
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some(kid.clone());
    let hs_key = EncodingKey::from_secret(public_pem.as_bytes()).unwrap();
    let hs = jsonwebtoken::encode(&h, &good, &hs_key).unwrap();
    assert_eq!(
        v.validate(&hs).await.unwrap_err(),
        AuthError::AlgorithmNotAllowed("HS256".into())
    );

    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some("no-such-key".into());
    let unknown = jsonwebtoken::encode(&h, &good, &own_key(&e)).unwrap();
    assert_eq!(
        v.validate(&unknown).await.unwrap_err(),
        AuthError::UnknownKey
    );
    for evil in [
        "../../../../etc/passwd",
        "/dev/zero",
        "signing-x.pem\0",
        "' OR 1=1 --",
    ] {
        let mut h = Header::new(Algorithm::RS256);
        h.kid = Some(evil.into());
        let t = jsonwebtoken::encode(&h, &good, &own_key(&e)).unwrap();
        assert_eq!(
            v.validate(&t).await.unwrap_err(),
            AuthError::UnknownKey,
            "{evil}"
        );
    }
    let no_kid = jsonwebtoken::encode(&Header::new(Algorithm::RS256), &good, &own_key(&e)).unwrap();
    assert_eq!(
        v.validate(&no_kid).await.unwrap_err(),
        AuthError::UnknownKey
    );

    let with = |k: &str, val: serde_json::Value| {
        let mut c = good.clone();
        c[k] = val;
        c["jti"] = json!(uuid::Uuid::new_v4().to_string());
        sign(&e, &c)
    };
    assert_eq!(
        v.validate(&with("exp", json!(now() - 3600)))
            .await
            .unwrap_err(),
        AuthError::Expired
    );
    assert_eq!(
        v.validate(&with("nbf", json!(now() + 3600)))
            .await
            .unwrap_err(),
        AuthError::NotYetValid
    );
    assert_eq!(
        v.validate(&with("iss", json!("https://evil.example")))
            .await
            .unwrap_err(),
        AuthError::WrongIssuer
    );
    assert_eq!(
        v.validate(&with("aud", json!(["other"])))
            .await
            .unwrap_err(),
        AuthError::WrongAudience
    );
    assert_eq!(
        v.validate(&with("sub", json!("not-a-user")))
            .await
            .unwrap_err(),
        AuthError::UserDisabled
    );

    // Tampered payload: signature no longer matches.
    let t = sign(&e, &good);
    let mut parts: Vec<String> = t.split('.').map(str::to_string).collect();
    let mut forged = good.clone();
    forged["roles"] = json!(["admin"]);
    parts[1] = B64.encode(forged.to_string());
    assert_eq!(
        v.validate(&parts.join(".")).await.unwrap_err(),
        AuthError::BadSignature
    );
}

#[tokio::test]
async fn revoked_jti_and_disabled_user_beat_the_cache() {
    let e = env().await;
    let u = add_user(&e.svc, "trent", &[]).await;
    let t = e.svc.issue_token(&u, None, None).unwrap().access_token;
    let v = e.svc.validator();
    let c = v.validate(&t).await.unwrap();
    assert!(
        v.validate_cached(&t).is_some_and(|r| r.is_ok()),
        "cached after validation"
    );
    e.svc.revoke_access(&c).await.unwrap();
    assert!(
        v.validate_cached(&t).is_none(),
        "cache entry must be invalidated"
    );
    assert_eq!(v.validate(&t).await.unwrap_err(), AuthError::Revoked);

    let t2 = e.svc.issue_token(&u, None, None).unwrap().access_token;
    v.validate(&t2).await.unwrap();
    e.svc.disable_user(&u.id).await.unwrap();
    assert!(v.validate_cached(&t2).is_none());
    assert_eq!(v.validate(&t2).await.unwrap_err(), AuthError::UserDisabled);
}

#[tokio::test]
async fn garbage_truncated_and_huge_tokens_do_not_panic() {
    let e = env().await;
    let u = add_user(&e.svc, "oscar", &[]).await;
    let t = e.svc.issue_token(&u, None, None).unwrap().access_token;
    let v = e.svc.validator();
    let huge = "a".repeat(1 << 20);
    let huge_jwt = format!(
        "{}.{}.{}",
        &t.split('.').next().unwrap(),
        "A".repeat(1 << 20),
        "B"
    );
    let mut cases: Vec<String> = (1..t.len())
        .step_by(7)
        .map(|n| t[..n].to_string())
        .collect();
    cases.extend(
        [
            "",
            ".",
            "..",
            "...",
            "a.b.c",
            "a.b.c.d",
            "e30.e30.",
            "e30.e30.e30",
            "\u{0}\u{1}",
            "sipreg_",
            "sipreg_zz_zz",
            "ñ.ñ.ñ",
        ]
        .map(str::to_string),
    );
    cases.push(huge.clone());
    cases.push(huge_jwt);
    cases.push(format!("sipreg_{}", "a".repeat(1 << 20)));
    for c in &cases {
        assert!(
            v.validate(c).await.is_err(),
            "accepted {:?}",
            &c[..c.len().min(40)]
        );
    }
    assert_eq!(v.validate(&huge).await.unwrap_err(), AuthError::Malformed);
    assert_eq!(v.validate_cached(&huge), Some(Err(AuthError::Malformed)));
}

#[tokio::test]
async fn sql_metacharacters_round_trip_verbatim() {
    let e = env().await;
    let nasty = [
        "o'brien\"; DROP TABLE users; --",
        "x' OR '1'='1",
        "%_\\",
        "名前 ' \" ; --",
    ];
    for (i, s) in nasty.iter().enumerate() {
        let u = e
            .svc
            .create_user(NewUser {
                username: s.to_string(),
                password: Some(PASSWORD.into()),
                email: Some(format!("{s}@example.com")),
                display_name: Some(s.to_string()),
                roles: vec![format!("r'{i};--")],
                scopes: Some(vec![format!("s\"{i}%_")]),
            })
            .await
            .unwrap();
        let back = e.svc.get_user_by_name(s).await.unwrap();
        assert_eq!(back, u);
        assert_eq!(back.username, *s);
        assert_eq!(
            back.email.as_deref(),
            Some(format!("{s}@example.com").as_str())
        );
        assert_eq!(back.display_name.as_deref(), Some(*s));
        assert_eq!(back.roles, vec![format!("r'{i};--")]);
        assert_eq!(back.scopes, vec![format!("s\"{i}%_")]);
        let (k, _) = e.svc.create_api_key(&u.id, s, None, None).await.unwrap();
        assert_eq!(e.svc.get_api_key(&k.id).await.unwrap().name, *s);
        let found = e
            .svc
            .list_users(&UserQuery {
                filter: Some(s.to_string()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(found.len(), 1, "{s}");
        assert!(e.svc.login(s, PASSWORD, None).await.is_ok());
    }
    assert_eq!(
        e.svc.list_users(&UserQuery::default()).await.unwrap().len(),
        nasty.len()
    );
}

#[cfg(unix)]
#[tokio::test]
async fn generated_private_key_is_mode_0600() {
    use std::os::unix::fs::PermissionsExt;
    let e = env().await;
    let kid = e.svc.current_kid();
    let path = e.config.tokens.key_dir.join(format!("signing-{kid}.pem"));
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", path.display());
    // Reopening reuses the key instead of generating another.
    let again = UsersService::open(&e.config).await.unwrap();
    assert_eq!(again.current_kid(), kid);
    assert_eq!(
        std::fs::read_dir(&e.config.tokens.key_dir).unwrap().count(),
        1
    );
}

#[test]
fn default_argon2_parameters_are_used_and_verify() {
    let cfg = sipreg::users::UsersConfig::default();
    let h = sipreg::users::password::PasswordHasherArgon::new(&cfg).unwrap();
    let phc = h.hash(PASSWORD).unwrap();
    assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
    assert!(h.verify(PASSWORD, Some(&phc)));
    assert!(!h.verify("wrong", Some(&phc)));
    assert!(!h.verify(PASSWORD, None), "dummy hash must never match");
}
