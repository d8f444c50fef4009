//! sipreg's OAuth 2.0 authorization server over real sockets: discovery from the 401's
//! `authz_server`, the token endpoint's grants (RFC 6749), client authentication,
//! revocation (RFC 7009), the clients registry, and a token from the token endpoint
//! registering over SIP.

mod common;

use std::time::Duration;

use common::presence::{Peer, bearer, register};
use common::{AppServer, status};
use common::{PASSWORD, add_user};
use reqwest::StatusCode;
use serde_json::{Value, json};

struct Oauth {
    app: AppServer,
    http: reqwest::Client,
    base: String,
}

async fn start() -> Oauth {
    let app = AppServer::start(|c| {
        c.tokens.issuer = "https://sip.example.com".to_string();
        c.tokens.audiences = vec!["sipreg".to_string()];
    })
    .await;
    let base = format!("http://{}", app.http);
    Oauth {
        app,
        http: reqwest::Client::builder().no_proxy().build().unwrap(),
        base,
    }
}

impl Oauth {
    async fn post_form(
        &self,
        path: &str,
        form: &[(&str, &str)],
    ) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        self.send(self.http.post(format!("{}{path}", self.base)).form(form))
            .await
    }

    async fn send(
        &self,
        req: reqwest::RequestBuilder,
    ) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        let r = req.send().await.unwrap();
        let status = r.status();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        (status, body, headers)
    }

    async fn admin_token(&self) -> String {
        let root = add_user(&self.app.users, "root", &["admin"]).await;
        self.app
            .users
            .issue_token(&root, None, None)
            .unwrap()
            .access_token
    }

    /// Registers a client over the admin API; returns its JSON (with the secret).
    async fn add_client(&self, admin: &str, body: Value) -> Value {
        let (s, v, _) = self
            .send(
                self.http
                    .post(format!("{}/clients", self.base))
                    .bearer_auth(admin)
                    .json(&body),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v
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

fn claims_of(jwt: &str) -> Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).unwrap();
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&raw).unwrap()
}

fn header_of(jwt: &str) -> Value {
    use base64::Engine;
    let h = jwt.split('.').next().unwrap();
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(h)
        .unwrap();
    serde_json::from_slice(&raw).unwrap()
}

#[tokio::test]
async fn a_phone_goes_from_the_401_to_a_200_with_nothing_configured() {
    let o = start().await;
    add_user(&o.app.users, "alice", &[]).await;
    // The 401 names the authorization server.
    let peer = Peer::new().await;
    let msg = register("alice", "d1", 1, &format!("<sip:alice@{}>", peer.addr), "");
    peer.send(o.app.sip, &msg).await;
    let mut seen = Vec::new();
    let challenge = peer.response(Duration::from_secs(5), &mut seen).await;
    assert_eq!(status(&challenge), 401);
    let www: Vec<String> = challenge
        .headers
        .iter()
        .filter(|h| h.raw_name.eq_ignore_ascii_case("WWW-Authenticate"))
        .map(|h| h.value.to_string())
        .collect();
    let bearer_challenge = www
        .iter()
        .find(|v| v.starts_with("Bearer"))
        .expect("a Bearer challenge");
    let authz = bearer_challenge
        .split("authz_server=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap();
    assert_eq!(authz, "https://sip.example.com");
    // RFC 8414 discovery at the issuer's well-known path (served here on loopback HTTP:
    // the issuer's host is only a name in this test).
    let (s, meta, _) = o
        .send(
            o.http
                .get(format!("{}/.well-known/oauth-authorization-server", o.base)),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(meta["issuer"], authz);
    assert_eq!(
        meta["token_endpoint"],
        "https://sip.example.com/oauth/token"
    );
    let grants: Vec<&str> = meta["grant_types_supported"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(grants.contains(&"password") && grants.contains(&"refresh_token"));
    // The token endpoint's path from the metadata, password grant, no client id.
    let path = meta["token_endpoint"]
        .as_str()
        .unwrap()
        .trim_start_matches("https://sip.example.com");
    let (s, tok, headers) = o
        .post_form(
            path,
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", PASSWORD),
                ("scope", "sip.register"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{tok}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(tok["token_type"], "Bearer");
    assert_eq!(tok["scope"], "sip.register");
    assert!(tok["refresh_token"].as_str().is_some());
    let access = tok["access_token"].as_str().unwrap();
    // RFC 9068 profile.
    assert_eq!(header_of(access)["typ"], "at+jwt");
    let c = claims_of(access);
    assert_eq!(c["client_id"], "sip-client");
    assert_eq!(c["scope"], "sip.register");
    assert_eq!(c["iss"], "https://sip.example.com");
    // And the phone registers with it.
    assert_eq!(o.register_with(access, "d2").await, 200);
    let aor = sipreg::registrar::aor::Aor::parse("sip:alice@example.com").unwrap();
    let bindings = o.app.registrar.table.get(&aor, sipreg::clock::unix_now());
    assert_eq!(bindings.len(), 1, "alice's phone is in the binding table");
}

#[tokio::test]
async fn token_endpoint_errors_follow_rfc_6749() {
    let o = start().await;
    add_user(&o.app.users, "alice", &[]).await;
    let t = "/oauth/token";
    // Wrong password: invalid_grant.
    let (s, v, _) = o
        .post_form(
            t,
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "nope"),
            ],
        )
        .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    // Unknown grant type.
    let (s, v, _) = o.post_form(t, &[("grant_type", "implicit")]).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unsupported_grant_type"))
    );
    // Missing grant type, repeated parameter.
    let (s, v, _) = o.post_form(t, &[("username", "alice")]).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
    let (s, v, _) = o
        .send(
            o.http
                .post(format!("{}{t}", o.base))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("grant_type=password&grant_type=password"),
        )
        .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
    // JSON is not a token request.
    let (s, v, _) = o
        .send(
            o.http
                .post(format!("{}{t}", o.base))
                .json(&json!({"grant_type": "password"})),
        )
        .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
    // A scope the user does not have.
    let (s, v, _) = o
        .post_form(
            t,
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", PASSWORD),
                ("scope", "admin"),
            ],
        )
        .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_scope"))
    );
    // The default client may not use client_credentials.
    let (s, v, _) = o
        .post_form(t, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unauthorized_client"))
    );
    // An unknown client: 401 invalid_client with a Basic challenge.
    let (s, v, h) = o
        .send(
            o.http
                .post(format!("{}{t}", o.base))
                .basic_auth("ghost", Some("x"))
                .form(&[("grant_type", "client_credentials")]),
        )
        .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    assert!(h["www-authenticate"].to_str().unwrap().starts_with("Basic"));
}

#[tokio::test]
async fn confidential_clients_authenticate_and_get_client_credentials_tokens() {
    let o = start().await;
    let admin = o.admin_token().await;
    let c = o
        .add_client(
            &admin,
            json!({"id": "presence-svc", "name": "presence dashboard",
                   "grants": ["client_credentials"], "scopes": ["presence.read"]}),
        )
        .await;
    let secret = c["client_secret"].as_str().unwrap().to_string();
    assert!(c.get("secret_hash").is_none(), "the hash is never shown");
    // client_secret_basic.
    let (s, v, _) = o
        .send(
            o.http
                .post(format!("{}/oauth/token", o.base))
                .basic_auth("presence-svc", Some(&secret))
                .form(&[("grant_type", "client_credentials")]),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v.get("refresh_token").is_none());
    let access = v["access_token"].as_str().unwrap().to_string();
    let claims = claims_of(&access);
    assert_eq!(
        (claims["sub"].as_str(), claims["client_id"].as_str()),
        (Some("presence-svc"), Some("presence-svc"))
    );
    assert_eq!(claims["scope"], "presence.read");
    // client_secret_post, and a wrong secret.
    let (s, _, _) = o
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "presence-svc"),
                ("client_secret", &secret),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, v, _) = o
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "presence-svc"),
                ("client_secret", "cs_wrong"),
            ],
        )
        .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    // Both methods at once: invalid_request.
    let (s, v, _) = o
        .send(
            o.http
                .post(format!("{}/oauth/token", o.base))
                .basic_auth("presence-svc", Some(&secret))
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_secret", secret.as_str()),
                ]),
        )
        .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
    // A scope the client may not have.
    let (s, v, _) = o
        .send(
            o.http
                .post(format!("{}/oauth/token", o.base))
                .basic_auth("presence-svc", Some(&secret))
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("scope", "sip.register"),
                ]),
        )
        .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_scope"))
    );
    // The token validates while the client exists (introspection), not after removal.
    let introspect = |tok: String| {
        o.http
            .post(format!("{}/oauth/introspect", o.base))
            .bearer_auth(&admin)
            .form(&[("token", tok)])
    };
    let (_, v, _) = o.send(introspect(access.clone())).await;
    assert_eq!(v["active"], true);
    assert_eq!(v["client_id"], "presence-svc");
    let (s, _, _) = o
        .send(
            o.http
                .delete(format!("{}/clients/presence-svc", o.base))
                .bearer_auth(&admin),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    // Validation results are cached for a while; a fresh server would refuse at once.
    // The registry no longer knows the client, so its secret no longer authenticates.
    let (s, _, _) = o
        .send(
            o.http
                .post(format!("{}/oauth/token", o.base))
                .basic_auth("presence-svc", Some(&secret))
                .form(&[("grant_type", "client_credentials")]),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn refresh_tokens_rotate_stay_with_their_client_and_can_be_revoked() {
    let o = start().await;
    add_user(&o.app.users, "alice", &[]).await;
    let admin = o.admin_token().await;
    o.add_client(
        &admin,
        json!({"id": "phone-a", "name": "phone A", "public": true,
               "grants": ["password", "refresh_token"], "scopes": ["sip.register", "presence.read"]}),
    )
    .await;
    o.add_client(
        &admin,
        json!({"id": "phone-b", "name": "phone B", "public": true,
               "grants": ["password", "refresh_token"], "scopes": ["sip.register"]}),
    )
    .await;
    let login = |client: &'static str| {
        [
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", PASSWORD),
            ("client_id", client),
        ]
    };
    let (s, first, _) = o.post_form("/oauth/token", &login("phone-a")).await;
    assert_eq!(s, StatusCode::OK, "{first}");
    assert_eq!(first["scope"], "sip.register presence.read");
    let r1 = first["refresh_token"].as_str().unwrap().to_string();
    // Another client cannot use it.
    let (s, v, _) = o
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &r1),
                ("client_id", "phone-b"),
            ],
        )
        .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    // Its own client can, narrowing the scope.
    let (s, second, _) = o
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &r1),
                ("client_id", "phone-a"),
                ("scope", "sip.register"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{second}");
    assert_eq!(second["scope"], "sip.register");
    assert_eq!(
        claims_of(second["access_token"].as_str().unwrap())["client_id"],
        "phone-a"
    );
    let r2 = second["refresh_token"].as_str().unwrap().to_string();
    // Reuse of the rotated token revokes the family: r2 dies with it.
    let (s, _, _) = o
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &r1),
                ("client_id", "phone-a"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _, _) = o
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &r2),
                ("client_id", "phone-a"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // RFC 7009: a fresh family revoked by its client; another client's attempt changes nothing.
    let (_, third, _) = o.post_form("/oauth/token", &login("phone-a")).await;
    let r3 = third["refresh_token"].as_str().unwrap().to_string();
    let (s, _, _) = o
        .post_form("/oauth/revoke", &[("token", &r3), ("client_id", "phone-b")])
        .await;
    assert_eq!(s, StatusCode::OK, "RFC 7009 §2.2: 200 whatever the token");
    let (s, v, _) = o
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &r3),
                ("client_id", "phone-a"),
            ],
        )
        .await;
    assert_eq!(
        s,
        StatusCode::OK,
        "phone-b could not revoke phone-a's token: {v}"
    );
    let r4 = v["refresh_token"].as_str().unwrap().to_string();
    let (s, _, _) = o
        .post_form(
            "/oauth/revoke",
            &[
                ("token", &r4),
                ("token_type_hint", "refresh_token"),
                ("client_id", "phone-a"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = o
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &r4),
                ("client_id", "phone-a"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // An access token revoked by its client stops registering.
    let (_, fifth, _) = o.post_form("/oauth/token", &login("phone-a")).await;
    let access = fifth["access_token"].as_str().unwrap().to_string();
    assert_eq!(o.register_with(&access, "r1").await, 200);
    let (s, _, _) = o
        .post_form(
            "/oauth/revoke",
            &[("token", &access), ("client_id", "phone-a")],
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(o.register_with(&access, "r2").await, 401);
}

#[tokio::test]
async fn clients_registry_is_admin_only_and_validates() {
    let o = start().await;
    let admin = o.admin_token().await;
    let plain = add_user(&o.app.users, "plain", &[]).await;
    let user_t = o
        .app
        .users
        .issue_token(&plain, None, None)
        .unwrap()
        .access_token;
    let body = json!({"name": "x", "grants": ["password"], "scopes": ["sip.register"]});
    let (s, _, _) = o
        .send(o.http.post(format!("{}/clients", o.base)).json(&body))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _, _) = o
        .send(
            o.http
                .post(format!("{}/clients", o.base))
                .bearer_auth(&user_t)
                .json(&body),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    for bad in [
        json!({"name": "x", "public": true, "grants": ["client_credentials"], "scopes": ["a"]}),
        json!({"name": "x", "grants": ["implicit"], "scopes": ["a"]}),
        json!({"name": "x", "grants": ["password"], "scopes": ["a"], "redirect_uris": ["http://evil.example.com/cb"]}),
        json!({"name": "x", "grants": ["password"], "scopes": ["a"], "redirect_uris": ["https://app.example.com/cb#f"]}),
        json!({"id": "sip-client", "name": "x", "grants": ["password"], "scopes": ["a"]}),
    ] {
        let (s, v, _) = o
            .send(
                o.http
                    .post(format!("{}/clients", o.base))
                    .bearer_auth(&admin)
                    .json(&bad),
            )
            .await;
        assert!(
            s == StatusCode::BAD_REQUEST || s == StatusCode::CONFLICT,
            "{bad}: {s} {v}"
        );
    }
    let c = o.add_client(&admin, body).await;
    let id = c["id"].as_str().unwrap();
    let (s, list, _) = o
        .send(
            o.http
                .get(format!("{}/clients", o.base))
                .bearer_auth(&admin),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], id);
    let (s, _, _) = o
        .send(
            o.http
                .delete(format!("{}/clients/{id}", o.base))
                .bearer_auth(&admin),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _, _) = o
        .send(
            o.http
                .get(format!("{}/clients/{id}", o.base))
                .bearer_auth(&admin),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}
