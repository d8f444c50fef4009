//! Token validation walkthrough: verify with the public key from JWKS, introspect,
//! then a tampered, an expired, a wrong-audience and an `alg: none` token, each
//! refused with its own error; finally the validation cache hit. Exits non-zero on
//! any surprise.

use std::process::ExitCode;
use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use sipreg::auth::{AuthError, Claims, now};
use sipreg::config::Config;
use sipreg::users::{NewUser, UsersService};

fn check(ok: bool, what: &str) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(format!("unexpected: {what}"))
    }
}

async fn run() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut config = Config::default();
    config.database.url = format!("sqlite://{}/sipreg.db?mode=rwc", dir.path().display());
    config.tokens.key_dir = dir.path().join("keys");
    let svc = UsersService::open(&config)
        .await
        .map_err(|e| e.to_string())?;
    let user = svc
        .create_user(NewUser {
            username: "carol".into(),
            password: Some("Lantern-Meadow-29".into()),
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?;
    let token = svc
        .issue_token(&user, None, None)
        .map_err(|e| e.to_string())?
        .access_token;
    println!("issued an RS256 access token for carol");

    // 1. Anyone can verify it with the public key published in JWKS.
    let jwks = svc.jwks();
    let header = jsonwebtoken::decode_header(&token).map_err(|e| e.to_string())?;
    let kid = header.kid.ok_or("no kid")?;
    let jwk = jwks.find(&kid).ok_or("kid not in JWKS")?;
    let mut v = Validation::new(Algorithm::RS256);
    v.set_audience(&["sip"]);
    v.set_issuer(&["https://sipreg.local"]);
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let data = jsonwebtoken::decode::<Claims>(&token, &key, &v).map_err(|e| e.to_string())?;
    println!(
        "verified with JWKS key {kid}: sub={} scope={:?}",
        data.claims.sub, data.claims.scope
    );

    // 2. Introspection (RFC 7662).
    let intro = svc.introspect(&token).await;
    println!("introspection: {intro}");
    check(
        intro["active"] == true && intro["username"] == "carol",
        "active introspection",
    )?;

    // 3. Bad tokens, each with a distinct error.
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    let mut forged = data.claims.clone();
    forged.scope = "admin".into();
    parts[1] = B64.encode(serde_json::to_vec(&forged).map_err(|e| e.to_string())?);
    let tampered = parts.join(".");

    let pem = std::fs::read(config.tokens.key_dir.join(format!("signing-{kid}.pem")))
        .map_err(|e| e.to_string())?;
    let signer = EncodingKey::from_rsa_pem(&pem).map_err(|e| e.to_string())?;
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some(kid.clone());
    let sign = |c: &Claims| jsonwebtoken::encode(&h, c, &signer).map_err(|e| e.to_string());
    let mut c = data.claims.clone();
    c.exp = now() - 3600;
    let expired = sign(&c)?;
    let mut c = data.claims.clone();
    c.aud = vec!["billing".into()];
    let wrong_aud = sign(&c)?;
    let none = format!(
        "{}.{}.",
        B64.encode(format!(r#"{{"alg":"none","typ":"JWT","kid":"{kid}"}}"#)),
        B64.encode(serde_json::to_vec(&data.claims).map_err(|e| e.to_string())?)
    );
    let cases = [
        ("tampered", tampered, AuthError::BadSignature),
        ("expired", expired, AuthError::Expired),
        ("wrong audience", wrong_aud, AuthError::WrongAudience),
        (
            "alg none",
            none,
            AuthError::AlgorithmNotAllowed("none".into()),
        ),
    ];
    for (name, t, want) in cases {
        let got = svc.validate(&t).await;
        println!(
            "{name:>15}: {}",
            got.as_ref()
                .err()
                .map_or("ACCEPTED".into(), |e| e.to_string())
        );
        check(got.as_ref().err() == Some(&want), name)?;
    }

    // 4. The cache: the second validation is answered without verifying again.
    let validator = svc.validator();
    let fresh = svc
        .issue_token(&user, None, None)
        .map_err(|e| e.to_string())?
        .access_token;
    check(
        validator.validate_cached(&fresh).is_none(),
        "not cached before first use",
    )?;
    let t0 = Instant::now();
    validator
        .validate(&fresh)
        .await
        .map_err(|e| e.to_string())?;
    let full = t0.elapsed();
    let t1 = Instant::now();
    let hit = validator.validate_cached(&fresh);
    let cached = t1.elapsed();
    check(matches!(hit, Some(Ok(_))), "cache hit")?;
    println!("full validation {full:?}, cached {cached:?}");
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => {
            println!("token_validation: all as expected");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("token_validation: {e}");
            ExitCode::FAILURE
        }
    }
}
