//! The authorization-code grant with PKCE (RFC 6749 §4.1, RFC 7636) and OpenID Connect
//! over real sockets: a "browser" (reqwest, cookies by hand) signs in and consents on
//! sipreg's pages, the app redeems the code and registers over SIP with the token; the
//! security rules (PKCE, exact redirect URIs, single-use codes whose reuse revokes,
//! CSRF, `state`); and one run in a real browser (Debian's chromium through
//! playwright-core, `tests/pages/code_flow.mjs`) landing on a redirect URI this test
//! serves.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use common::presence::{Peer, bearer, register};
use common::{AppServer, PASSWORD, add_user, status, tool};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

const ISSUER: &str = "https://sip.example.com";
/// RFC 7636 appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

struct Flow {
    app: AppServer,
    /// Never follows redirects: where they point is what is checked.
    http: reqwest::Client,
    base: String,
    admin: String,
}

async fn start() -> Flow {
    let app = AppServer::start(|c| {
        c.tokens.issuer = ISSUER.to_string();
    })
    .await;
    let root = add_user(&app.users, "root", &["admin"]).await;
    let admin = app
        .users
        .issue_token(&root, None, None)
        .unwrap()
        .access_token;
    add_user(&app.users, "alice", &[]).await;
    Flow {
        base: format!("http://{}", app.http),
        app,
        http: reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        admin,
    }
}

/// A client's registration: its id, and secret when confidential.
struct Client {
    id: String,
    secret: Option<String>,
    redirect: String,
}

/// A page's answer.
struct Page {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Page {
    fn location(&self) -> Option<url::Url> {
        let l = self.headers.get("location")?.to_str().ok()?;
        url::Url::parse(l).ok()
    }

    fn query(&self) -> HashMap<String, String> {
        self.location()
            .map(|u| u.query_pairs().into_owned().collect())
            .unwrap_or_default()
    }

    /// The value of the hidden input `name`.
    fn hidden(&self, name: &str) -> Option<String> {
        let marker = format!("name=\"{name}\" value=\"");
        let rest = self.body.split(&marker).nth(1)?;
        rest.split('"').next().map(str::to_string)
    }
}

impl Flow {
    async fn add_client(&self, public: bool, redirect: &str) -> Client {
        let r = self
            .http
            .post(format!("{}/clients", self.base))
            .bearer_auth(&self.admin)
            .json(&json!({
                "name": "Softphone Web",
                "public": public,
                "grants": ["authorization_code", "refresh_token"],
                "redirect_uris": [redirect],
                "scopes": ["sip.register", "presence.read"],
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let v: Value = r.json().await.unwrap();
        Client {
            id: v["id"].as_str().unwrap().to_string(),
            secret: v["client_secret"].as_str().map(str::to_string),
            redirect: redirect.to_string(),
        }
    }

    async fn page(&self, req: reqwest::RequestBuilder) -> Page {
        let r = req.send().await.unwrap();
        Page {
            status: r.status(),
            headers: r.headers().clone(),
            body: r.text().await.unwrap(),
        }
    }

    async fn authorize(&self, query: &[(&str, &str)]) -> Page {
        self.page(
            self.http
                .get(format!("{}/oauth/authorize", self.base))
                .query(query),
        )
        .await
    }

    /// The usual request of `client`: PKCE S256, a state and a nonce.
    fn request<'a>(&self, client: &'a Client, scope: &'a str) -> Vec<(&'a str, &'a str)> {
        vec![
            ("response_type", "code"),
            ("client_id", &client.id),
            ("redirect_uri", &client.redirect),
            ("scope", scope),
            ("state", "st-42"),
            ("nonce", "n-7"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ]
    }

    /// Opens the sign-in page; returns its CSRF token (from the cookie it sets).
    async fn open(&self, query: &[(&str, &str)]) -> String {
        let p = self.authorize(query).await;
        assert_eq!(p.status, StatusCode::OK, "{}", p.body);
        assert!(p.body.contains("Sign in"));
        let cookie = p.headers["set-cookie"].to_str().unwrap().to_string();
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
        let token = p.hidden("csrf").expect("the form carries its token");
        assert!(cookie.starts_with(&format!("sipreg_csrf={token};")));
        token
    }

    /// Posts the sign-in form (the request's fields carried) with `csrf` and `cookie`.
    async fn sign_in(
        &self,
        query: &[(&str, &str)],
        password: &str,
        csrf: &str,
        cookie: &str,
    ) -> Page {
        let mut form: Vec<(&str, &str)> = query.to_vec();
        form.extend([
            ("csrf", csrf),
            ("username", "alice"),
            ("password", password),
        ]);
        self.page(
            self.http
                .post(format!("{}/oauth/authorize", self.base))
                .header("cookie", format!("sipreg_csrf={cookie}"))
                .form(&form),
        )
        .await
    }

    async fn decide(&self, ticket: &str, action: &str, csrf: &str, cookie: &str) -> Page {
        self.page(
            self.http
                .post(format!("{}/oauth/authorize/decide", self.base))
                .header("cookie", format!("sipreg_csrf={cookie}"))
                .form(&[("csrf", csrf), ("ticket", ticket), ("action", action)]),
        )
        .await
    }

    /// Sign-in and consent as a browser does it; returns the final redirect.
    async fn consent(&self, query: &[(&str, &str)], action: &str) -> Page {
        let csrf = self.open(query).await;
        let p = self.sign_in(query, PASSWORD, &csrf, &csrf).await;
        assert_eq!(p.status, StatusCode::OK, "{}", p.body);
        assert!(p.body.contains("Allow access?"), "{}", p.body);
        let ticket = p.hidden("ticket").expect("a consent ticket");
        let p = self.decide(&ticket, action, &csrf, &csrf).await;
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
        p
    }

    /// A code for `client` (approved by alice).
    async fn code(&self, client: &Client, scope: &str) -> String {
        let p = self.consent(&self.request(client, scope), "approve").await;
        p.query()["code"].clone()
    }

    async fn token(&self, client: &Client, form: &[(&str, &str)]) -> (StatusCode, Value) {
        let mut req = self.http.post(format!("{}/oauth/token", self.base));
        let mut form = form.to_vec();
        match &client.secret {
            Some(s) => req = req.basic_auth(&client.id, Some(s)),
            None => form.push(("client_id", &client.id)),
        }
        let r = req.form(&form).send().await.unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn redeem(&self, client: &Client, code: &str, verifier: &str) -> (StatusCode, Value) {
        self.token(
            client,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", &client.redirect),
                ("code_verifier", verifier),
            ],
        )
        .await
    }

    /// REGISTERs alice over UDP with `token`; returns the status.
    async fn register_with(&self, token: &str, call_id: &str) -> u16 {
        let peer = Peer::new().await;
        let msg = register(
            "alice",
            call_id,
            1,
            &format!("<sip:alice@{}>", peer.addr),
            &bearer(token),
        );
        peer.send(self.app.sip, &msg).await;
        let mut seen = Vec::new();
        status(&peer.response(Duration::from_secs(5), &mut seen).await)
    }
}

fn jwt_part(jwt: &str, i: usize) -> Value {
    let part = jwt.split('.').nth(i).unwrap();
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&raw).unwrap()
}

fn error_of(p: &Page) -> Option<String> {
    p.query().get("error").cloned()
}

#[tokio::test]
async fn an_app_gets_a_code_through_sign_in_and_consent_and_registers_with_its_token() {
    let f = start().await;
    let client = f.add_client(true, "http://127.0.0.1:9/cb").await;
    let p = f
        .consent(
            &f.request(&client, "openid sip.register presence.read"),
            "approve",
        )
        .await;
    // Back to the registered URI with the code, the state echoed, and the issuer.
    let loc = p.location().unwrap();
    assert_eq!(
        format!("{}://{}{}", loc.scheme(), loc.authority(), loc.path()),
        "http://127.0.0.1:9/cb"
    );
    let q = p.query();
    assert_eq!(q["state"], "st-42");
    assert_eq!(q["iss"], ISSUER);
    let code = &q["code"];
    assert!(code.len() >= 43, "{code}");
    let (s, tok) = f.redeem(&client, code, VERIFIER).await;
    assert_eq!(s, StatusCode::OK, "{tok}");
    assert_eq!(tok["token_type"], "Bearer");
    assert_eq!(tok["scope"], "openid sip.register presence.read");
    assert!(tok["refresh_token"].as_str().is_some());
    let access = tok["access_token"].as_str().unwrap();
    assert_eq!(jwt_part(access, 1)["client_id"], client.id.as_str());
    // The ID token: RS256 by sipreg's key ring, for this client, with the nonce.
    let id_token = tok["id_token"].as_str().expect("an ID token with openid");
    let header = jwt_part(id_token, 0);
    assert_eq!(header["alg"], "RS256");
    let jwks: jsonwebtoken::jwk::JwkSet = f
        .http
        .get(format!("{}/.well-known/jwks.json", f.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwk = jwks
        .find(header["kid"].as_str().unwrap())
        .expect("the kid is in the JWKS");
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    v.set_audience(&[client.id.as_str()]);
    v.set_issuer(&[ISSUER]);
    let claims = jsonwebtoken::decode::<Value>(
        id_token,
        &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(),
        &v,
    )
    .expect("the ID token verifies")
    .claims;
    let alice = f.app.users.get_user_by_name("alice").await.unwrap();
    assert_eq!(claims["sub"], alice.id.as_str());
    assert_eq!(claims["nonce"], "n-7");
    assert_eq!(claims["preferred_username"], "alice");
    assert!(claims["exp"].as_i64() > claims["iat"].as_i64());
    // The access token registers alice.
    assert_eq!(f.register_with(access, "c1").await, 200);
    let aor = sipreg::registrar::aor::Aor::parse("sip:alice@example.com").unwrap();
    assert_eq!(
        f.app
            .registrar
            .table
            .get(&aor, sipreg::clock::unix_now())
            .len(),
        1
    );
    // Without openid there is no ID token.
    let code = f.code(&client, "sip.register").await;
    let (s, tok) = f.redeem(&client, &code, VERIFIER).await;
    assert_eq!(s, StatusCode::OK, "{tok}");
    assert!(tok.get("id_token").is_none());
    assert_eq!(tok["scope"], "sip.register");
    // Sign-in only: an ID token, an access token that grants nothing, no refresh token
    // (whose empty scope would stand for all of alice's).
    let code = f.code(&client, "openid").await;
    let (s, tok) = f.redeem(&client, &code, VERIFIER).await;
    assert_eq!(s, StatusCode::OK, "{tok}");
    assert_eq!(tok["scope"], "openid");
    assert!(tok["id_token"].as_str().is_some());
    assert!(tok.get("refresh_token").is_none(), "{tok}");
    assert_eq!(
        f.register_with(tok["access_token"].as_str().unwrap(), "c2")
            .await,
        403
    );
}

#[tokio::test]
async fn discovery_names_the_authorization_endpoint_and_openid_configuration() {
    let f = start().await;
    let get = |path: &'static str| {
        let url = format!("{}{path}", f.base);
        let http = f.http.clone();
        async move {
            let r = http.get(url).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            r.json::<Value>().await.unwrap()
        }
    };
    let oidc = get("/.well-known/openid-configuration").await;
    assert_eq!(oidc["issuer"], ISSUER);
    assert_eq!(
        oidc["authorization_endpoint"],
        "https://sip.example.com/oauth/authorize"
    );
    assert_eq!(
        oidc["token_endpoint"],
        "https://sip.example.com/oauth/token"
    );
    assert_eq!(
        oidc["jwks_uri"],
        "https://sip.example.com/.well-known/jwks.json"
    );
    assert_eq!(oidc["response_types_supported"], json!(["code"]));
    assert_eq!(oidc["subject_types_supported"], json!(["public"]));
    assert_eq!(
        oidc["id_token_signing_alg_values_supported"],
        json!(["RS256"])
    );
    assert_eq!(oidc["code_challenge_methods_supported"], json!(["S256"]));
    let has = |doc: &Value, key: &str, item: &str| {
        doc[key]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v.as_str() == Some(item))
    };
    assert!(has(&oidc, "scopes_supported", "openid"));
    assert!(has(&oidc, "claims_supported", "preferred_username"));
    assert!(has(&oidc, "grant_types_supported", "authorization_code"));
    let meta = get("/.well-known/oauth-authorization-server").await;
    assert_eq!(
        meta["authorization_endpoint"],
        "https://sip.example.com/oauth/authorize"
    );
    assert_eq!(meta["response_types_supported"], json!(["code"]));
    assert_eq!(meta["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(meta["authorization_response_iss_parameter_supported"], true);
    assert!(has(&meta, "grant_types_supported", "authorization_code"));
}

#[tokio::test]
async fn pkce_is_required_for_public_clients_and_plain_is_refused() {
    let f = start().await;
    let public = f.add_client(true, "http://127.0.0.1:9/cb").await;
    let base = f.request(&public, "sip.register");
    // No challenge: back to the client with invalid_request and the state.
    let without: Vec<_> = base
        .iter()
        .filter(|(k, _)| !k.starts_with("code_challenge"))
        .cloned()
        .collect();
    let p = f.authorize(&without).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert_eq!(error_of(&p).as_deref(), Some("invalid_request"));
    assert_eq!(p.query()["state"], "st-42");
    // plain, or no method (which means plain), is refused too.
    for method in [Some("plain"), None] {
        let mut q: Vec<_> = without.clone();
        q.push(("code_challenge", VERIFIER));
        if let Some(m) = method {
            q.push(("code_challenge_method", m));
        }
        let p = f.authorize(&q).await;
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{method:?}");
        assert_eq!(error_of(&p).as_deref(), Some("invalid_request"));
    }
    // Other request errors go back to the client too.
    let mut q = base.clone();
    q[0] = ("response_type", "token");
    assert_eq!(
        error_of(&f.authorize(&q).await).as_deref(),
        Some("unsupported_response_type")
    );
    let mut q = base.clone();
    q[3] = ("scope", "admin");
    assert_eq!(
        error_of(&f.authorize(&q).await).as_deref(),
        Some("invalid_scope")
    );
    // A confidential client may go without PKCE: it proves itself with its secret.
    let confidential = f.add_client(false, "https://app.example.com/cb").await;
    let q: Vec<_> = f
        .request(&confidential, "sip.register")
        .into_iter()
        .filter(|(k, _)| !k.starts_with("code_challenge"))
        .collect();
    let p = f.consent(&q, "approve").await;
    let code = p.query()["code"].clone();
    let (s, tok) = f
        .token(
            &confidential,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", "https://app.example.com/cb"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{tok}");
}

#[tokio::test]
async fn a_code_needs_its_verifier_redirect_uri_and_client() {
    let f = start().await;
    let client = f.add_client(true, "http://127.0.0.1:9/cb").await;
    let other = f.add_client(true, "http://127.0.0.1:9/cb").await;
    let expect_invalid_grant = |(s, v): (StatusCode, Value)| {
        assert_eq!(
            (s, v["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_grant")),
            "{v}"
        );
    };
    // A wrong verifier.
    let code = f.code(&client, "sip.register").await;
    expect_invalid_grant(
        f.redeem(
            &client,
            &code,
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXx",
        )
        .await,
    );
    // The code was spent by the failed attempt.
    expect_invalid_grant(f.redeem(&client, &code, VERIFIER).await);
    // No verifier.
    let code = f.code(&client, "sip.register").await;
    expect_invalid_grant(
        f.token(
            &client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &client.redirect),
            ],
        )
        .await,
    );
    // Another redirect URI.
    let code = f.code(&client, "sip.register").await;
    expect_invalid_grant(
        f.token(
            &client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", "http://127.0.0.1:9/other"),
                ("code_verifier", VERIFIER),
            ],
        )
        .await,
    );
    // Another client.
    let code = f.code(&client, "sip.register").await;
    expect_invalid_grant(f.redeem(&other, &code, VERIFIER).await);
    // A made-up code.
    expect_invalid_grant(f.redeem(&client, "0123456789abcdef", VERIFIER).await);
}

#[tokio::test]
async fn a_reused_code_revokes_the_tokens_it_issued() {
    let f = start().await;
    let client = f.add_client(true, "http://127.0.0.1:9/cb").await;
    let code = f.code(&client, "sip.register").await;
    let (s, tok) = f.redeem(&client, &code, VERIFIER).await;
    assert_eq!(s, StatusCode::OK, "{tok}");
    let access = tok["access_token"].as_str().unwrap();
    let refresh = tok["refresh_token"].as_str().unwrap();
    assert_eq!(f.register_with(access, "r1").await, 200);
    // Someone presents the code again (an attacker who saw it, or a replay).
    let (s, v) = f.redeem(&client, &code, VERIFIER).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    // What the first redemption issued no longer works.
    assert_eq!(f.register_with(access, "r2").await, 401);
    let (s, v) = f
        .token(
            &client,
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        )
        .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant")),
        "{v}"
    );
}

#[tokio::test]
async fn an_untrusted_client_or_redirect_uri_gets_an_error_page_not_a_redirect() {
    let f = start().await;
    let client = f.add_client(true, "http://127.0.0.1:9/cb").await;
    let good = f.request(&client, "sip.register");
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("redirect URI", {
            let mut q = good.clone();
            q[2] = ("redirect_uri", "http://127.0.0.1:9/cb/../evil");
            q
        }),
        ("unregistered host", {
            let mut q = good.clone();
            q[2] = ("redirect_uri", "https://evil.example.net/cb");
            q
        }),
        (
            "no redirect URI",
            good.iter()
                .filter(|(k, _)| *k != "redirect_uri")
                .cloned()
                .collect(),
        ),
        ("unknown client", {
            let mut q = good.clone();
            q[1] = ("client_id", "nobody");
            q
        }),
    ];
    for (what, q) in cases {
        let p = f.authorize(&q).await;
        assert_eq!(p.status, StatusCode::BAD_REQUEST, "{what}");
        assert!(p.headers.get("location").is_none(), "{what}");
        assert!(
            p.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{what}"
        );
        assert!(p.body.contains("Cannot sign in"), "{what}: {}", p.body);
    }
    // A registration with the authorization_code grant needs a redirect URI.
    let r = f
        .http
        .post(format!("{}/clients", f.base))
        .bearer_auth(&f.admin)
        .json(
            &json!({"name": "x", "public": true, "grants": ["authorization_code"],
                      "scopes": ["sip.register"]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_forms_need_their_csrf_cookie_and_deny_sends_access_denied() {
    let f = start().await;
    let client = f.add_client(true, "http://127.0.0.1:9/cb").await;
    let q = f.request(&client, "sip.register");
    let csrf = f.open(&q).await;
    let forged = "0123456789abcdef0123456789abcdef";
    // A sign-in posted from elsewhere: no cookie, or a token that does not match it.
    let p = f
        .page(f.http.post(format!("{}/oauth/authorize", f.base)).form(&[
            ("csrf", csrf.as_str()),
            ("username", "alice"),
            ("password", PASSWORD),
        ]))
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    let p = f.sign_in(&q, PASSWORD, forged, &csrf).await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    // A wrong password stays on the sign-in page.
    let p = f.sign_in(&q, "wrong-password", &csrf, &csrf).await;
    assert_eq!(p.status, StatusCode::UNAUTHORIZED);
    assert!(p.body.contains("Wrong username or password."));
    // Signed in; a forged decision is refused and leaves the request as it was.
    let p = f.sign_in(&q, PASSWORD, &csrf, &csrf).await;
    assert_eq!(p.status, StatusCode::OK);
    let csp = p.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("form-action 'self' http://127.0.0.1:9;"),
        "{csp}"
    );
    let ticket = p.hidden("ticket").unwrap();
    let p = f.decide(&ticket, "approve", forged, &csrf).await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    assert!(p.headers.get("location").is_none());
    // The person denies: the client hears access_denied, with its state.
    let p = f.decide(&ticket, "deny", &csrf, &csrf).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert_eq!(error_of(&p).as_deref(), Some("access_denied"));
    assert_eq!(p.query()["state"], "st-42");
    assert!(!p.query().contains_key("code"));
    // The ticket was single-use.
    let p = f.decide(&ticket, "approve", &csrf, &csrf).await;
    assert_eq!(p.status, StatusCode::BAD_REQUEST);
    assert!(p.headers.get("location").is_none());
}

/// The browser driver, when chromium, node and the npm package are there.
fn browser_driver() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/pages");
    if !tool("chromium") || !tool("node") {
        return None;
    }
    if !dir.join("node_modules/playwright-core").is_dir() {
        assert!(
            std::env::var("SIPREG_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "tests/pages/node_modules is missing: run npm ci in tests/pages"
        );
        eprintln!("SKIPPED: tests/pages/node_modules is missing (npm ci in tests/pages)");
        return None;
    }
    Some(dir)
}

/// A one-shot redirect-URI listener: answers the first request with a small page and
/// hands back its query.
async fn redirect_listener() -> (String, tokio::task::JoinHandle<HashMap<String, String>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/callback", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 8192];
            let n = s.read(&mut buf).await.unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).to_string();
            let target = head.split(' ').nth(1).unwrap_or_default().to_string();
            // Browsers may ask for a favicon too; only the callback counts.
            if !target.starts_with("/callback") {
                let _ = s
                    .write_all(
                        b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    )
                    .await;
                continue;
            }
            let body = "<!doctype html><title>App signed in</title><p id=done>signed in</p>";
            let resp = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(resp.as_bytes()).await;
            let url = url::Url::parse(&format!("http://x{target}")).unwrap();
            return url.query_pairs().into_owned().collect();
        }
    });
    (url, task)
}

#[tokio::test]
async fn a_real_browser_signs_in_consents_and_lands_on_the_redirect_uri() {
    let Some(dir) = browser_driver() else { return };
    let f = start().await;
    let (callback, captured) = redirect_listener().await;
    let client = f.add_client(true, &callback).await;
    let mut authorize = url::Url::parse(&format!("{}/oauth/authorize", f.base)).unwrap();
    authorize
        .query_pairs_mut()
        .extend_pairs(f.request(&client, "openid sip.register"));
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(dir.join("code_flow.mjs"))
        .args([authorize.as_str(), "alice", PASSWORD])
        .kill_on_drop(true);
    if let Ok(shots) = std::env::var("SIPREG_SCREENSHOTS_DIR") {
        cmd.env("SHOTS", shots);
    }
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("the browser finished in time")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let seen: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|_| {
            panic!(
                "browser output: {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    assert!(seen.get("error").is_none(), "{seen}");
    assert_eq!(seen["steps"][0], "Sign in · sipreg", "{seen}");
    assert_eq!(seen["steps"][1], "Allow access? · sipreg", "{seen}");
    assert_eq!(seen["client"], "Softphone Web");
    assert_eq!(seen["scopes"].as_array().unwrap().len(), 2, "{seen}");
    assert_eq!(seen["steps"][2], "App signed in", "{seen}");
    let q = tokio::time::timeout(Duration::from_secs(5), captured)
        .await
        .expect("the redirect URI was reached")
        .unwrap();
    assert_eq!(q["state"], "st-42");
    // The code the browser brought works once.
    let (s, tok) = f.redeem(&client, &q["code"], VERIFIER).await;
    assert_eq!(s, StatusCode::OK, "{tok}");
    assert!(tok["id_token"].as_str().is_some());
    assert_eq!(
        f.register_with(tok["access_token"].as_str().unwrap(), "b1")
            .await,
        200
    );
}
