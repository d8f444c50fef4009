//! Token validation walkthrough, through sipreg's HTTP endpoints over real sockets (an
//! in-process sipreg, store in a temporary folder):
//! 1. a token from the token endpoint (RFC 6749 password grant), verified by anyone with
//!    the public key the JWKS endpoint publishes (the issuer from RFC 8414 discovery);
//! 2. introspection (RFC 7662) by an administrator;
//! 3. a tampered, an expired, a wrong-audience and an `alg: none` token, each refused by
//!    the API with `401` and its own `error_description`, and refused over SIP too;
//! 4. revocation by the client (RFC 7009): the token is refused at once.
//!
//! Run: `cargo run --example token_validation` (exits non-zero on any surprise).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::Value;
use sipreg::auth::{Claims, now};
use sipreg::config::Config;
use sipreg::server::app::App;
use sipreg::users::NewUser;

type Res<T> = Result<T, String>;

const PASSWORD: &str = "Lantern-Meadow-29";

fn check(ok: bool, what: &str) -> Res<()> {
    if ok {
        Ok(())
    } else {
        Err(format!("unexpected: {what}"))
    }
}

fn e(x: impl std::fmt::Display) -> String {
    x.to_string()
}

/// A password-grant token for `user` from the token endpoint.
async fn token_for(http: &reqwest::Client, base: &str, user: &str, scope: &str) -> Res<String> {
    let v: Value = http
        .post(format!("{base}/oauth/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", user),
            ("password", PASSWORD),
            ("scope", scope),
            ("client_id", "walkthrough"),
        ])
        .send()
        .await
        .map_err(e)?
        .json()
        .await
        .map_err(e)?;
    v["access_token"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("no token for {user}: {v}"))
}

/// A REGISTER of carol with `token` over UDP; the status line of the answer.
async fn register(sip: SocketAddr, token: &str, cseq: u32) -> Res<String> {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .map_err(e)?;
    let msg = format!(
        "REGISTER sip:example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5996;branch=z9hG4bKtv{cseq};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:carol@example.com>;tag=tv\r\nTo: <sip:carol@example.com>\r\n\
         Call-ID: token-validation\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:carol@127.0.0.1:5996>\r\n\
         Authorization: Bearer {token}\r\nContent-Length: 0\r\n\r\n"
    );
    sock.send_to(msg.as_bytes(), sip).await.map_err(e)?;
    let mut buf = vec![0u8; 65_535];
    let (n, _) = tokio::time::timeout(Duration::from_secs(3), sock.recv_from(&mut buf))
        .await
        .map_err(|_| "no SIP answer within 3 s".to_string())?
        .map_err(e)?;
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    Ok(text.lines().next().unwrap_or_default().to_string())
}

async fn run() -> Res<()> {
    let dir = tempfile::tempdir().map_err(e)?;
    let mut config = Config::default();
    config.sip.listen = "127.0.0.1:0".parse().map_err(e)?;
    config.http.listen = "127.0.0.1:0".parse().map_err(e)?;
    config.database.url = format!("sqlite://{}/sipreg.db?mode=rwc", dir.path().display());
    config.tokens.key_dir = dir.path().join("keys");
    let key_dir = config.tokens.key_dir.clone();
    let app = App::build(config).await?;
    let (sip, http_addr) = (app.sip_addr(), app.http_addr().ok_or("no HTTP address")?);
    let base = format!("http://{http_addr}");
    for (name, roles) in [("carol", vec![]), ("root", vec!["admin".to_string()])] {
        app.users
            .create_user(NewUser {
                username: name.into(),
                password: Some(PASSWORD.into()),
                roles,
                ..Default::default()
            })
            .await
            .map_err(e)?;
    }
    // A public client that may ask for every scope (the built-in one has no admin scope).
    let oauth = sipreg::oauth::OAuthServer::new(app.users.clone());
    oauth
        .add_client(sipreg::oauth::NewClient {
            id: Some("walkthrough".into()),
            name: "token walkthrough".into(),
            public: true,
            grants: vec!["password".into()],
            redirect_uris: vec![],
            scopes: ["sip.register", "presence.read", "admin"]
                .map(String::from)
                .to_vec(),
        })
        .await
        .map_err(e)?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(app.run(async {
        let _ = stop_rx.await;
    }));
    let http = reqwest::Client::builder().no_proxy().build().map_err(e)?;

    let token = token_for(&http, &base, "carol", "sip.register presence.read").await?;
    println!(
        "carol's access token from POST /oauth/token ({} octets)",
        token.len()
    );

    // 1. Anyone verifies it with the public key the JWKS endpoint publishes.
    let meta: Value = http
        .get(format!("{base}/.well-known/oauth-authorization-server"))
        .send()
        .await
        .map_err(e)?
        .json()
        .await
        .map_err(e)?;
    let issuer = meta["issuer"].as_str().ok_or("no issuer")?.to_string();
    let jwks: jsonwebtoken::jwk::JwkSet = http
        .get(format!("{base}/.well-known/jwks.json"))
        .send()
        .await
        .map_err(e)?
        .json()
        .await
        .map_err(e)?;
    let header = jsonwebtoken::decode_header(&token).map_err(e)?;
    let kid = header.kid.ok_or("no kid")?;
    let jwk = jwks.find(&kid).ok_or("kid not in JWKS")?;
    let mut v = Validation::new(Algorithm::RS256);
    v.set_audience(&["sip"]);
    v.set_issuer(&[&issuer]);
    let key = DecodingKey::from_jwk(jwk).map_err(e)?;
    let data = jsonwebtoken::decode::<Claims>(&token, &key, &v).map_err(e)?;
    println!(
        "verified with JWKS key {kid} (typ {:?}): sub={} scope={:?} client_id={:?}",
        header.typ, data.claims.sub, data.claims.scope, data.claims.client_id
    );
    check(header.typ.as_deref() == Some("at+jwt"), "RFC 9068 typ")?;

    // 2. Introspection by an administrator.
    let admin = token_for(&http, &base, "root", "admin").await?;
    let introspect = |t: String| {
        http.post(format!("{base}/oauth/introspect"))
            .bearer_auth(&admin)
            .form(&[("token", t)])
    };
    let intro: Value = introspect(token.clone())
        .send()
        .await
        .map_err(e)?
        .json()
        .await
        .map_err(e)?;
    println!("introspection: {intro}");
    check(
        intro["active"] == true && intro["username"] == "carol",
        "active introspection",
    )?;

    // 3. Bad tokens. The expired and wrong-audience ones are signed with sipreg's own key
    // (read from its key folder, as only an insider could), so only the claims are wrong.
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    let mut forged = data.claims.clone();
    forged.scope = "admin".into();
    parts[1] = B64.encode(serde_json::to_vec(&forged).map_err(e)?);
    let tampered = parts.join(".");
    let pem = std::fs::read(key_dir.join(format!("signing-{kid}.pem"))).map_err(e)?;
    let signer = EncodingKey::from_rsa_pem(&pem).map_err(e)?;
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some(kid.clone());
    let sign = |c: &Claims| jsonwebtoken::encode(&h, c, &signer).map_err(e);
    let mut c = data.claims.clone();
    c.exp = now() - 3600;
    let expired = sign(&c)?;
    let mut c = data.claims.clone();
    c.aud = vec!["billing".into()];
    let wrong_aud = sign(&c)?;
    let none = format!(
        "{}.{}.",
        B64.encode(format!(r#"{{"alg":"none","typ":"JWT","kid":"{kid}"}}"#)),
        B64.encode(serde_json::to_vec(&data.claims).map_err(e)?)
    );
    let cases = [
        ("tampered", tampered, "signature"),
        ("expired", expired, "expired"),
        ("wrong audience", wrong_aud, "audience"),
        ("alg none", none, "algorithm"),
    ];
    for (i, (name, t, word)) in cases.into_iter().enumerate() {
        // Any Bearer-protected route: carol's own record.
        let r = http
            .get(format!("{base}/users/{}", data.claims.sub))
            .bearer_auth(&t)
            .send()
            .await
            .map_err(e)?;
        let status = r.status().as_u16();
        let www = r
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let sip_status = register(sip, &t, 10 + i as u32).await?;
        println!(
            "{name:>15}: HTTP {status} {www}\n{:>15}  SIP  {sip_status}",
            ""
        );
        check(
            status == 401 && www.contains("invalid_token") && www.to_lowercase().contains(word),
            name,
        )?;
        check(sip_status.starts_with("SIP/2.0 401"), name)?;
    }
    check(
        register(sip, &token, 20).await?.starts_with("SIP/2.0 200"),
        "the good token registers",
    )?;

    // 4. Revocation by the client that got the token.
    let r = http
        .post(format!("{base}/oauth/revoke"))
        .form(&[("token", token.as_str()), ("client_id", "walkthrough")])
        .send()
        .await
        .map_err(e)?;
    check(r.status().as_u16() == 200, "revocation answered 200")?;
    let intro: Value = introspect(token.clone())
        .send()
        .await
        .map_err(e)?
        .json()
        .await
        .map_err(e)?;
    let sip_status = register(sip, &token, 21).await?;
    println!("after revocation: introspection {intro}, SIP {sip_status}");
    check(intro["active"] == false, "revoked token inactive")?;
    check(
        sip_status.starts_with("SIP/2.0 401"),
        "revoked token refused over SIP",
    )?;

    let _ = stop_tx.send(());
    running.await.map_err(e)?.map_err(e)?;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => {
            println!("token_validation: all as expected");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("token_validation: {err}");
            ExitCode::FAILURE
        }
    }
}
