//! The admin HTTP API over a real loopback socket: status codes, challenges, and
//! that no user can act on another user's resources.

mod common;

use common::{PASSWORD, add_user, env};
use reqwest::StatusCode;
use serde_json::{Value, json};

struct Api {
    base: String,
    client: reqwest::Client,
    _stop: tokio::sync::oneshot::Sender<()>,
    _env: common::Env,
}

async fn start() -> Api {
    let env = env().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let svc = env.svc.clone();
    tokio::spawn(sipreg::http::serve(listener, svc, async {
        let _ = rx.await;
    }));
    Api {
        base,
        // Loopback only: never route through a proxy from the environment.
        client: reqwest::Client::builder().no_proxy().build().unwrap(),
        _stop: tx,
        _env: env,
    }
}

impl Api {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn login(&self, user: &str) -> Value {
        let r = self
            .client
            .post(self.url("/auth/login"))
            .json(&json!({"username": user, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        r.json().await.unwrap()
    }

    async fn token(&self, user: &str) -> String {
        self.login(user).await["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

#[tokio::test]
async fn health_and_jwks() {
    let api = start().await;
    let r = api.client.get(api.url("/health")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let jwks: Value = api
        .client
        .get(api.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "RSA");
    assert_eq!(
        key["kid"].as_str().unwrap().len(),
        43,
        "RFC 7638 SHA-256 thumbprint"
    );
    assert!(key.get("d").is_none(), "private part leaked");
}

#[tokio::test]
async fn login_refresh_logout() {
    let api = start().await;
    add_user(&api._env.svc, "alice", &[]).await;
    let pair = api.login("alice").await;
    assert_eq!(pair["token_type"], "Bearer");
    assert_eq!(pair["expires_in"], 900);
    let r = api
        .client
        .post(api.url("/auth/refresh"))
        .json(&json!({"refresh_token": pair["refresh_token"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let pair2: Value = r.json().await.unwrap();
    // The rotated token is refused now.
    let r = api
        .client
        .post(api.url("/auth/refresh"))
        .json(&json!({"refresh_token": pair["refresh_token"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // That reuse revoked the whole family, the access token it issued last included.
    let id = api._env.svc.get_user_by_name("alice").await.unwrap().id;
    let r = api
        .client
        .get(api.url(&format!("/users/{id}")))
        .bearer_auth(pair2["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Logout revokes the access token given as Bearer.
    let pair2 = api.login("alice").await;
    let access = pair2["access_token"].as_str().unwrap();
    let r = api
        .client
        .post(api.url("/auth/logout"))
        .bearer_auth(access)
        .json(&json!({"refresh_token": pair2["refresh_token"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let me = pair2["access_token"].as_str().unwrap();
    let r = api
        .client
        .get(api.url(&format!("/users/{id}")))
        .bearer_auth(me)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn status_codes() {
    let api = start().await;
    add_user(&api._env.svc, "root", &["admin"]).await;
    add_user(&api._env.svc, "bob", &[]).await;
    let admin = api.token("root").await;
    let bob = api.token("bob").await;

    // 401 without or with a bad token, with a Bearer challenge.
    let r = api.client.get(api.url("/users")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let r = api
        .client
        .get(api.url("/users"))
        .bearer_auth("garbage.token.here")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    // 403 for a non-admin.
    let r = api
        .client
        .get(api.url("/users"))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // 201, then 409 on the same name.
    let body = json!({"username": "carol", "password": PASSWORD});
    let r = api
        .client
        .post(api.url("/users"))
        .bearer_auth(&admin)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = api
        .client
        .post(api.url("/users"))
        .bearer_auth(&admin)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let err: Value = r.json().await.unwrap();
    assert_eq!(err["message"], "username 'carol' already exists");
    // 422 for a weak password, listing the rules.
    let r = api
        .client
        .post(api.url("/users"))
        .bearer_auth(&admin)
        .json(&json!({"username": "dan", "password": "dan"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let err: Value = r.json().await.unwrap();
    assert!(err["details"].as_array().unwrap().len() >= 3);
    // 400 for malformed JSON, 422 for a wrong shape.
    let r = api
        .client
        .post(api.url("/users"))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.json::<Value>().await.unwrap()["error"].is_string());
    let r = api
        .client
        .post(api.url("/users"))
        .bearer_auth(&admin)
        .json(&json!({"username": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // 404.
    let r = api
        .client
        .get(api.url("/users/00000000-0000-0000-0000-000000000000"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // Paging and filter.
    let page: Value = api
        .client
        .get(api.url("/users?filter=o&limit=1&offset=1"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["users"].as_array().unwrap().len(), 1);
    assert_eq!(page["users"][0]["username"], "carol");
}

#[tokio::test]
async fn throttled_login_is_429_with_retry_after() {
    let api = start().await;
    add_user(&api._env.svc, "eve", &[]).await;
    for _ in 0..5 {
        let r = api
            .client
            .post(api.url("/auth/login"))
            .json(&json!({"username": "eve", "password": "wrong"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = api
        .client
        .post(api.url("/auth/login"))
        .json(&json!({"username": "eve", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(wait > 0 && wait <= 900);
}

#[tokio::test]
async fn no_user_acts_on_another_users_resources() {
    let api = start().await;
    let svc = &api._env.svc;
    let alice = add_user(svc, "alice", &[]).await;
    let bob = add_user(svc, "bob", &[]).await;
    let (bob_key, _) = svc.create_api_key(&bob.id, "k", None, None).await.unwrap();
    let tok = api.token("alice").await;
    let c = &api.client;
    let other = |p: &str| api.url(&p.replace("{bob}", &bob.id).replace("{key}", &bob_key.id));
    let cases = [
        c.get(other("/users/{bob}")),
        c.patch(other("/users/{bob}"))
            .json(&json!({"display_name": "x"})),
        c.delete(other("/users/{bob}")),
        c.post(other("/users/{bob}/disable")),
        c.post(other("/users/{bob}/password"))
            .json(&json!({"password": "Pwned-Password-99", "current_password": PASSWORD})),
        c.get(other("/users/{bob}/api-keys")),
        c.post(other("/users/{bob}/api-keys"))
            .json(&json!({"name": "mine"})),
        c.get(other("/api-keys/{key}")),
        c.delete(other("/api-keys/{key}")),
        c.post(other("/api-keys/{key}/rotate")),
        c.post(api.url("/oauth/introspect"))
            .form(&[("token", tok.as_str())]),
    ];
    for req in cases {
        let r = req.bearer_auth(&tok).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{:?}", r.url());
    }
    // Bob is untouched; Alice may read herself and change her own password.
    assert!(svc.login("bob", PASSWORD, None).await.is_ok());
    let r = c
        .get(api.url(&format!("/users/{}", alice.id)))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = c
        .post(api.url(&format!("/users/{}/password", alice.id)))
        .bearer_auth(&tok)
        .json(&json!({"password": "Brand-New-Secret-51", "current_password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(
        svc.login("alice", "Brand-New-Secret-51", None)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn api_keys_introspection_and_exchange() {
    let api = start().await;
    let svc = &api._env.svc;
    add_user(svc, "root", &["admin"]).await;
    let robot = add_user(svc, "robot", &[]).await;
    let admin = api.token("root").await;
    let r = api
        .client
        .post(api.url(&format!("/users/{}/api-keys", robot.id)))
        .bearer_auth(&admin)
        .json(&json!({"name": "presence", "scopes": ["presence.read"], "expires_in_days": 7}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    let key = created["key"].as_str().unwrap();
    let listed: Value = api
        .client
        .get(api.url(&format!("/users/{}/api-keys", robot.id)))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        !listed.to_string().contains(key),
        "key listed after creation"
    );

    let r = api
        .client
        .post(api.url("/auth/token"))
        .json(&json!({"api_key": key}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let t: Value = r.json().await.unwrap();
    assert_eq!(t["scope"], "presence.read");

    let intro: Value = api
        .client
        .post(api.url("/oauth/introspect"))
        .bearer_auth(&admin)
        .form(&[("token", t["access_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(intro["active"], true);
    assert_eq!(intro["username"], "robot");
    let intro: Value = api
        .client
        .post(api.url("/oauth/introspect"))
        .bearer_auth(&admin)
        .form(&[("token", "nonsense")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(intro, json!({"active": false}));

    // The key works directly as a Bearer credential, until revoked.
    let own = api
        .client
        .get(api.url(&format!("/users/{}", robot.id)))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), StatusCode::OK);
    let id = created["id"].as_str().unwrap();
    let r = api
        .client
        .delete(api.url(&format!("/api-keys/{id}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = api
        .client
        .post(api.url("/auth/token"))
        .json(&json!({"api_key": key}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn hostile_token_header_still_gets_a_bearer_challenge() {
    use base64::Engine;
    let api = start().await;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let token = format!(
        "{}.{}.sig",
        b64("{\"alg\":\"HS\\\"\\n\\u0001x\"}"),
        b64("{\"iss\":\"x\"}")
    );
    let r = api
        .client
        .get(api.url("/users"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("invalid_token"), "{challenge}");
}

#[tokio::test]
async fn admin_manages_users_and_keys() {
    let api = start().await;
    let svc = &api._env.svc;
    add_user(svc, "root", &["admin"]).await;
    let zed = add_user(svc, "zed", &[]).await;
    let admin = api.token("root").await;
    let zed_token = api.token("zed").await;
    let c = &api.client;
    let user_url = api.url(&format!("/users/{}", zed.id));

    let r = c
        .patch(&user_url)
        .bearer_auth(&admin)
        .json(&json!({"display_name": "Zed Z", "email": "z@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["display_name"], "Zed Z");
    assert!(body.get("password_hash").is_none(), "hash exposed");
    let r = c
        .patch(&user_url)
        .bearer_auth(&admin)
        .json(&json!({"nickname": "z"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown field"
    );

    let r = c
        .post(api.url(&format!("/users/{}/api-keys", zed.id)))
        .bearer_auth(&admin)
        .json(&json!({"name": "k"}))
        .send()
        .await
        .unwrap();
    let key: Value = r.json().await.unwrap();
    let key_id = key["id"].as_str().unwrap();
    let r = c
        .get(api.url(&format!("/api-keys/{key_id}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = c
        .post(api.url(&format!("/api-keys/{key_id}/rotate")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let rotated: Value = r.json().await.unwrap();
    assert_ne!(rotated["key"], key["key"]);

    let r = c
        .post(api.url(&format!("/users/{}/password", zed.id)))
        .bearer_auth(&admin)
        .json(&json!({"password": "Admin-Set-Pass-88"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::NO_CONTENT,
        "admin needs no current password"
    );

    let r = c
        .post(api.url(&format!("/users/{}/disable", zed.id)))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = c
        .get(&user_url)
        .bearer_auth(&zed_token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "disabled user's token still accepted"
    );

    let r = c
        .delete(&user_url)
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = c.get(&user_url).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = c
        .post(api.url("/auth/token"))
        .json(&json!({"api_key": rotated["key"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "keys go with their owner"
    );
}
