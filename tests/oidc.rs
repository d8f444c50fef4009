//! Tokens from a real OpenID provider nobody here wrote: panva's `oidc-provider`
//! (npm, tests/oidc/provider.mjs) runs as a Node process on loopback, sipreg finds its
//! keys by OpenID discovery, and its JWT access tokens REGISTER over SIP UDP. Also:
//! wrong audience, missing scope, unknown user, Keycloak-style realm roles mapped to
//! scopes with users provisioned on first sight, key rotation followed without a
//! restart, and forged tokens (issuer swap, HS256 keyed with the public key, a sipreg
//! kid under the provider's `iss`, `alg: none`).
//!
//! Skips with `SKIPPED` when node or tests/oidc/node_modules is missing, unless
//! SIPREG_REQUIRE_TOOLS=1.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::presence::{Peer, bearer, header_named, register};
use common::{AppServer, add_user, status, tool};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sipreg::auth::TrustedIssuer;
use sipreg::auth::keys::generate_into;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The audience sipreg expects from this provider (the resource indicator).
const AUDIENCE: &str = "urn:sipreg";
/// The other trusted issuer, whose key the test holds (a PEM file).
const ISSUER_B: &str = "https://b.example";

/// tests/oidc, when node and the npm package are there.
fn provider_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oidc");
    if !tool("node") {
        return None;
    }
    if !dir.join("node_modules/oidc-provider").is_dir() {
        assert!(
            std::env::var("SIPREG_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "tests/oidc/node_modules is missing: run npm ci in tests/oidc"
        );
        eprintln!("SKIPPED: tests/oidc/node_modules is missing (npm ci in tests/oidc)");
        return None;
    }
    Some(dir)
}

/// The provider process (killed on drop) and what it announced.
struct Provider {
    child: Child,
    issuer: String,
    kid: String,
}

impl Provider {
    /// Starts provider.mjs on `port`; each start signs with a fresh key.
    async fn start(dir: &std::path::Path, port: u16) -> Provider {
        // Its warnings go to a file, shown if it does not come up.
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut child = Command::new("node")
            .arg(dir.join("provider.mjs"))
            .arg(port.to_string())
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(log.reopen().unwrap())
            .kill_on_drop(true)
            .spawn()
            .expect("node starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(90), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.strip_prefix("ready ") {
                    return Some(rest.to_string());
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| {
            let err = std::fs::read_to_string(log.path()).unwrap_or_default();
            panic!("the provider did not start on port {port}: {err}")
        });
        let (issuer, kid) = ready.split_once(' ').expect("ready ISSUER KID");
        Provider {
            child,
            issuer: issuer.to_string(),
            kid: kid.to_string(),
        }
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }

    /// An access token from the token endpoint (client_credentials, RFC 8707 resource).
    async fn token(&self, client: &str, resource: &str, scope: Option<&str>) -> String {
        let secret = format!("{client}-secret");
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_id", client),
            ("client_secret", &secret),
            ("resource", resource),
        ];
        if let Some(s) = scope {
            form.push(("scope", s));
        }
        let r: Value = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .post(format!("{}/token", self.issuer))
            .form(&form)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no access token: {r}"))
            .to_string()
    }
}

/// A loopback port nobody listens on right now (the provider restarts on it).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// sipreg trusting the provider (discovery only: no jwks_url, no key file) and
/// issuer B (a PEM key in `b_pem`), with alice and bob as local users.
async fn sipreg(provider: &Provider, b_pem: PathBuf) -> AppServer {
    let issuer = provider.issuer.clone();
    let app = AppServer::start(move |c| {
        c.tokens.trusted_issuers.push(TrustedIssuer {
            issuer,
            audiences: vec![AUDIENCE.into()],
            // Refresh on every use (in the background) and refetch on every unknown kid:
            // the outage and the rotation below are seen at once.
            jwks_refresh_secs: 0,
            jwks_min_refetch_secs: 0,
            ..Default::default()
        });
        c.tokens.trusted_issuers.push(TrustedIssuer {
            issuer: ISSUER_B.into(),
            audiences: vec![AUDIENCE.into()],
            public_key_file: Some(b_pem),
            ..Default::default()
        });
    })
    .await;
    add_user(&app.users, "alice", &[]).await;
    add_user(&app.users, "bob", &[]).await;
    app
}

/// REGISTERs `user` over UDP with `token`; the final response.
async fn register_with(app: &AppServer, user: &str, token: &str) -> sipreg::sip::Message {
    let peer = Peer::new().await;
    let call_id = uuid::Uuid::new_v4().simple().to_string();
    let msg = register(
        user,
        &call_id,
        1,
        &format!("<sip:{user}@{}>", peer.addr),
        &bearer(token),
    );
    peer.send(app.sip, &msg).await;
    let mut seen = Vec::new();
    peer.response(Duration::from_secs(5), &mut seen).await
}

/// The status and the Bearer challenge's `error`, if any.
async fn outcome(app: &AppServer, user: &str, token: &str) -> (u16, String) {
    let r = register_with(app, user, token).await;
    let error = r
        .headers
        .iter()
        .filter(|h| h.raw_name.eq_ignore_ascii_case("WWW-Authenticate"))
        .map(|h| h.value.to_string())
        .find(|v| v.starts_with("Bearer"))
        .and_then(|v| {
            v.split("error=\"")
                .nth(1)
                .map(|e| e.split('"').next().unwrap_or_default().to_string())
        })
        .unwrap_or_default();
    (status(&r), error)
}

fn bindings(app: &AppServer, user: &str) -> usize {
    let aor = sipreg::registrar::aor::Aor::parse(&format!("sip:{user}@example.com")).unwrap();
    app.registrar
        .table
        .get(&aor, sipreg::clock::unix_now())
        .len()
}

fn part(jwt: &str, i: usize) -> Value {
    let raw = URL_SAFE_NO_PAD
        .decode(jwt.split('.').nth(i).unwrap())
        .unwrap();
    serde_json::from_slice(&raw).unwrap()
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

/// A key the test signs issuer B's tokens with, and its public PEM file.
fn issuer_b_key(dir: &std::path::Path) -> (EncodingKey, PathBuf) {
    use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey, LineEnding};
    let (path, _kid) = generate_into(dir).unwrap();
    let pem = std::fs::read_to_string(&path).unwrap();
    let public = rsa::PrivateKey::from_pkcs8_pem(&pem)
        .unwrap()
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    let public_path = dir.join("b-public.pem");
    std::fs::write(&public_path, public).unwrap();
    (
        EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
        public_path,
    )
}

#[tokio::test]
async fn provider_tokens_register_over_sip_and_key_rotation_is_followed() {
    let Some(dir) = provider_dir() else { return };
    let port = free_port();
    let provider = Provider::start(&dir, port).await;
    let keys = tempfile::tempdir().unwrap();
    let (_b, b_pem) = issuer_b_key(keys.path());
    let app = sipreg(&provider, b_pem).await;

    // A token for alice (preferred_username) with sip.register: 200, and the binding.
    let t = provider
        .token("alice-phone", AUDIENCE, Some("sip.register presence.read"))
        .await;
    assert_eq!(part(&t, 0)["kid"], json!(provider.kid));
    assert_eq!(part(&t, 1)["preferred_username"], json!("alice"));
    assert_eq!(outcome(&app, "alice", &t).await, (200, String::new()));
    assert_eq!(bindings(&app, "alice"), 1);
    // The token speaks for alice only (a user registers only its own AOR).
    assert_eq!(status(&register_with(&app, "bob", &t).await), 403);
    assert_eq!(bindings(&app, "bob"), 0);

    // Another audience: 401 invalid_token.
    let t = provider
        .token("alice-phone", "urn:elsewhere", Some("sip.register"))
        .await;
    assert_eq!(
        outcome(&app, "alice", &t).await,
        (401, "invalid_token".into())
    );
    // No SIP scope: 403 insufficient_scope.
    let t = provider.token("bob-phone", AUDIENCE, None).await;
    assert_eq!(
        outcome(&app, "bob", &t).await,
        (403, "insufficient_scope".into())
    );
    assert_eq!(bindings(&app, "bob"), 0);
    // A user sipreg does not know (provision = "refuse", the default): 401.
    let t = provider
        .token("mallory-phone", AUDIENCE, Some("sip.register"))
        .await;
    assert_eq!(
        outcome(&app, "mallory", &t).await,
        (401, "invalid_token".into())
    );
    assert!(app.users.get_user_by_name("mallory").await.is_err());

    // The provider goes away: a token it issued before still works (last good keys).
    let before = provider
        .token("bob-phone", AUDIENCE, Some("sip.register"))
        .await;
    let old_kid = provider.kid.clone();
    provider.stop().await;
    assert_eq!(outcome(&app, "bob", &before).await, (200, String::new()));
    assert_eq!(bindings(&app, "bob"), 1);

    // It comes back with a new key: sipreg follows (unknown kid → refetch), no restart.
    let provider = Provider::start(&dir, port).await;
    assert_ne!(provider.kid, old_kid, "the provider rotated its key");
    let t = provider
        .token("alice-phone", AUDIENCE, Some("sip.register"))
        .await;
    assert_eq!(part(&t, 0)["kid"], json!(provider.kid));
    let r = register_with(&app, "alice", &t).await;
    assert_eq!(
        status(&r),
        200,
        "{:?}",
        header_named(&r, "WWW-Authenticate")
    );
    assert_eq!(bindings(&app, "alice"), 2);
    provider.stop().await;
}

#[tokio::test]
async fn forged_and_confused_tokens_are_refused() {
    let Some(dir) = provider_dir() else { return };
    let provider = Provider::start(&dir, free_port()).await;
    let keys = tempfile::tempdir().unwrap();
    let (b_key, b_pem) = issuer_b_key(keys.path());
    let app = sipreg(&provider, b_pem).await;
    let genuine = provider
        .token("alice-phone", AUDIENCE, Some("sip.register"))
        .await;
    let (header, claims) = (part(&genuine, 0), part(&genuine, 1));
    let signature = genuine.rsplit('.').next().unwrap();
    let refused = (401, "invalid_token".to_string());

    // The provider's token with issuer B's `iss` (its signature kept): refused.
    let mut swapped = claims.clone();
    swapped["iss"] = json!(ISSUER_B);
    let t = format!("{}.{}.{signature}", b64(&header), b64(&swapped));
    assert_eq!(outcome(&app, "alice", &t).await, refused);
    // Issuer B's key signing for the provider (its kid and iss): refused.
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some(provider.kid.clone());
    let t = jsonwebtoken::encode(&h, &claims, &b_key).unwrap();
    assert_eq!(outcome(&app, "alice", &t).await, refused);
    // Issuer B's own token is fine (the same claims under B's iss): the mapping works
    // for a PEM-configured issuer too.
    let t = jsonwebtoken::encode(&Header::new(Algorithm::RS256), &swapped, &b_key).unwrap();
    assert_eq!(outcome(&app, "alice", &t).await, (200, String::new()));

    // HS256 "signed" with the provider's public key (its JWKS as the HMAC secret).
    let jwks = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{}/jwks", provider.issuer))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some(provider.kid.clone());
    let t = jsonwebtoken::encode(&h, &claims, &EncodingKey::from_secret(&jwks).unwrap()).unwrap();
    assert_eq!(outcome(&app, "alice", &t).await, refused);

    // RS256 under sipreg's own kid and key, but the provider's iss: refused.
    let own = app
        .users
        .issue_token(
            &app.users.get_user_by_name("alice").await.unwrap(),
            None,
            None,
        )
        .unwrap()
        .access_token;
    let own_kid = part(&own, 0)["kid"].as_str().unwrap().to_string();
    let own_pem = std::fs::read(
        app.dir
            .path()
            .join("keys")
            .join(format!("signing-{own_kid}.pem")),
    )
    .expect("sipreg's signing key file");
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some(own_kid);
    let t =
        jsonwebtoken::encode(&h, &claims, &EncodingKey::from_rsa_pem(&own_pem).unwrap()).unwrap();
    assert_eq!(outcome(&app, "alice", &t).await, refused);

    // alg none, no signature.
    let t = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "at+jwt"})),
        b64(&claims)
    );
    assert_eq!(outcome(&app, "alice", &t).await, refused);

    // The genuine token, for contrast: 200, one binding (B's registration is the other).
    assert_eq!(outcome(&app, "alice", &genuine).await, (200, String::new()));
    assert_eq!(bindings(&app, "alice"), 2);
    provider.stop().await;
}

#[tokio::test]
async fn provider_roles_map_to_scopes_and_new_users_are_provisioned() {
    let Some(dir) = provider_dir() else { return };
    let provider = Provider::start(&dir, free_port()).await;
    let issuer = provider.issuer.clone();
    // Keycloak-style: scopes from realm roles, users created on first sight.
    let app = AppServer::start(move |c| {
        c.tokens.trusted_issuers.push(TrustedIssuer {
            issuer,
            audiences: vec![AUDIENCE.into()],
            roles_claim: Some("realm_access.roles".into()),
            role_scopes: [
                ("sip-user".to_string(), vec!["sip.register".to_string()]),
                ("watcher".to_string(), vec!["presence.read".to_string()]),
            ]
            .into(),
            provision: sipreg::auth::Provision::Auto,
            ..Default::default()
        });
    })
    .await;
    assert!(app.users.get_user_by_name("alice").await.is_err());

    // alice's token asks for no scope at all: her role sip-user grants sip.register.
    let t = provider.token("alice-phone", AUDIENCE, None).await;
    assert_eq!(part(&t, 1).get("scope"), None);
    assert_eq!(outcome(&app, "alice", &t).await, (200, String::new()));
    assert_eq!(bindings(&app, "alice"), 1);
    let alice = app.users.get_user_by_name("alice").await.unwrap();
    assert!(alice.active && alice.scopes.is_empty());

    // bob's role watcher grants presence.read only, whatever scope the token carries.
    let t = provider
        .token("bob-phone", AUDIENCE, Some("sip.register"))
        .await;
    assert_eq!(
        outcome(&app, "bob", &t).await,
        (403, "insufficient_scope".into())
    );
    assert_eq!(bindings(&app, "bob"), 0);
    provider.stop().await;
}
