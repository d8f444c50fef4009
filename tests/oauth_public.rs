//! The two HTTP listeners: with `[http] public_listen`, phones and people reach the OAuth
//! endpoints, the device page and JWKS over HTTPS (the `[tls]` certificate), while the
//! admin API (users, clients registry) stays on its own listener and nothing public is
//! left on it.

mod common;

use std::path::Path;

use common::{AppServer, PASSWORD, add_user};
use reqwest::StatusCode;
use serde_json::Value;

/// sipreg with a lab certificate for 127.0.0.1 and the public listener on.
async fn start(dir: &Path) -> (AppServer, reqwest::Client) {
    let pair = sipreg::transport::tls::self_signed::self_signed("127.0.0.1").unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, &pair.cert_pem).unwrap();
    std::fs::write(&key, &pair.key_pem).unwrap();
    let app = AppServer::start(|c| {
        c.tls.listen = "127.0.0.1:0".parse().unwrap();
        c.tls.cert_file = cert;
        c.tls.key_file = key;
        c.http.public_listen = Some("127.0.0.1:0".parse().unwrap());
        c.tokens.issuer = "https://sip.example.com".to_string();
    })
    .await;
    let ca = reqwest::Certificate::from_pem(pair.cert_pem.as_bytes()).unwrap();
    let https = reqwest::Client::builder()
        .no_proxy()
        .add_root_certificate(ca)
        .build()
        .unwrap();
    (app, https)
}

#[tokio::test]
async fn oauth_endpoints_are_public_over_https_and_the_admin_api_stays_apart() {
    let dir = tempfile::tempdir().unwrap();
    let (app, https) = start(dir.path()).await;
    add_user(&app.users, "alice", &[]).await;
    let public = format!(
        "https://127.0.0.1:{}",
        app.public.expect("public listener").port()
    );
    let admin = format!("http://{}", app.http);
    let plain = reqwest::Client::builder().no_proxy().build().unwrap();

    // Discovery and a password grant over HTTPS.
    let r = https
        .get(format!("{public}/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let meta: Value = r.json().await.unwrap();
    assert_eq!(meta["issuer"], "https://sip.example.com");
    let r = https
        .post(format!("{public}/oauth/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = https
        .get(format!("{public}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = https.get(format!("{public}/device")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // Nothing of the admin API is public.
    for path in ["/clients", "/users", "/registrations", "/health"] {
        let r = https.get(format!("{public}{path}")).send().await.unwrap();
        assert_eq!(
            r.status(),
            StatusCode::NOT_FOUND,
            "{path} on the public listener"
        );
    }
    // Nor is anything public left on the admin listener, which keeps its own routes.
    let r = plain
        .get(format!("{admin}/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = plain
        .post(format!("{admin}/oauth/token"))
        .form(&[("grant_type", "password")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let root = add_user(&app.users, "root", &["admin"]).await;
    let t = app
        .users
        .issue_token(&root, None, None)
        .unwrap()
        .access_token;
    let r = plain
        .get(format!("{admin}/clients"))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // The public port speaks only TLS.
    let r = plain
        .get(format!(
            "http://127.0.0.1:{}/.well-known/jwks.json",
            app.public.unwrap().port()
        ))
        .send()
        .await;
    assert!(r.is_err(), "plain HTTP is not served on the HTTPS port");
    // And still serves TLS clients afterwards.
    let r = https.get(format!("{public}/device")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_device_code_asked_for_publicly_is_approved_on_the_public_page() {
    let dir = tempfile::tempdir().unwrap();
    let (app, https) = start(dir.path()).await;
    let public = format!("https://127.0.0.1:{}", app.public.unwrap().port());
    let r = https
        .post(format!("{public}/oauth/device_authorization"))
        .form(&[("scope", "sip.register")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let d: Value = r.json().await.unwrap();
    assert_eq!(d["verification_uri"], "https://sip.example.com/device");
    // The page knows the code (one OAuth server behind both listeners' routes).
    let page = https.get(format!("{public}/device")).send().await.unwrap();
    let cookie = page.headers()["set-cookie"].to_str().unwrap().to_string();
    let token = cookie
        .split(';')
        .next()
        .and_then(|kv| kv.split_once('='))
        .map(|(_, v)| v.to_string())
        .unwrap();
    let r = https
        .post(format!("{public}/device"))
        .header("cookie", format!("sipreg_csrf={token}"))
        .form(&[
            ("user_code", d["user_code"].as_str().unwrap()),
            ("csrf", &token),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("Approve this device?"));
}

#[tokio::test]
async fn the_public_listener_needs_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::app_config(dir.path());
    config.http.public_listen = Some("127.0.0.1:0".parse().unwrap());
    let err = sipreg::server::app::App::build(config)
        .await
        .err()
        .expect("refused without a certificate");
    assert!(
        err.contains("public_listen") && err.contains("[tls]"),
        "{err}"
    );
}
