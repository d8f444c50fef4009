//! OpenID Connect on top of the authorization-code grant: the ID token a client gets
//! with the `openid` scope (Core §2, §3.1.3.6), and the discovery document
//! (Discovery §3, served at `{issuer}/.well-known/openid-configuration`).

use serde::Serialize;

use super::grant::GrantType;
use super::metadata::{AUTHORIZE_PATH, JWKS_PATH, SCOPES, TOKEN_PATH};
use crate::auth::{now, secs};
use crate::users::{User, UsersError, UsersService};

pub const CONFIGURATION_PATH: &str = "/.well-known/openid-configuration";

/// The claims of an ID token.
#[derive(Debug, Serialize)]
pub struct IdToken<'a> {
    pub iss: &'a str,
    pub sub: &'a str,
    /// The client the token is for (Core §2: `aud` contains the client_id).
    pub aud: &'a str,
    pub exp: i64,
    pub iat: i64,
    pub auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<&'a str>,
    pub preferred_username: &'a str,
}

/// An ID token for `user` to `client_id`, signed with sipreg's current key; it
/// lives as long as an access token.
pub async fn id_token(
    users: &UsersService,
    user: &User,
    client_id: &str,
    nonce: Option<&str>,
    auth_time: i64,
) -> Result<String, UsersError> {
    let cfg = &users.config().tokens;
    let iat = now();
    let claims = IdToken {
        iss: &cfg.issuer,
        sub: &user.id,
        aud: client_id,
        exp: iat.saturating_add(secs(cfg.access_ttl_secs.clamp(1, 86_400))),
        iat,
        auth_time,
        nonce,
        preferred_username: &user.username,
    };
    users.sign_jwt("JWT", &claims).await
}

/// The OpenID Provider metadata (Discovery §3): the required fields and what sipreg
/// serves.
#[derive(Debug, Serialize)]
pub struct Configuration {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    pub response_types_supported: Vec<&'static str>,
    pub subject_types_supported: Vec<&'static str>,
    pub id_token_signing_alg_values_supported: Vec<&'static str>,
    pub scopes_supported: Vec<&'static str>,
    pub claims_supported: Vec<&'static str>,
    pub code_challenge_methods_supported: Vec<&'static str>,
    /// RFC 9207: authorization responses carry `iss`.
    pub authorization_response_iss_parameter_supported: bool,
    pub grant_types_supported: Vec<&'static str>,
    pub token_endpoint_auth_methods_supported: Vec<&'static str>,
}

impl Configuration {
    pub fn new(issuer: &str) -> Configuration {
        let base = issuer.trim_end_matches('/');
        let at = |path: &str| format!("{base}{path}");
        let mut scopes = vec![super::authorize::OPENID];
        scopes.extend(SCOPES);
        Configuration {
            issuer: issuer.to_string(),
            authorization_endpoint: at(AUTHORIZE_PATH),
            token_endpoint: at(TOKEN_PATH),
            jwks_uri: at(JWKS_PATH),
            response_types_supported: vec!["code"],
            subject_types_supported: vec!["public"],
            id_token_signing_alg_values_supported: vec!["RS256"],
            scopes_supported: scopes,
            claims_supported: vec![
                "iss",
                "sub",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "nonce",
                "preferred_username",
            ],
            code_challenge_methods_supported: vec![super::pkce::S256],
            authorization_response_iss_parameter_supported: true,
            grant_types_supported: GrantType::ALL.iter().map(|g| g.as_str()).collect(),
            token_endpoint_auth_methods_supported: vec![
                "client_secret_basic",
                "client_secret_post",
                "none",
            ],
        }
    }

    /// Discovery §4: the issuer's URL (its path kept) followed by the well-known path.
    pub fn path_for(issuer: &str) -> String {
        let after_scheme = issuer.split_once("://").map_or(issuer, |(_, r)| r);
        let path = after_scheme
            .find('/')
            .map_or("", |i| &after_scheme[i..])
            .trim_end_matches('/');
        format!("{path}{CONFIGURATION_PATH}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_hangs_from_the_issuer() {
        let c = Configuration::new("https://sip.example.com");
        assert_eq!(
            c.authorization_endpoint,
            "https://sip.example.com/oauth/authorize"
        );
        assert!(c.scopes_supported.contains(&"openid"));
        assert_eq!(
            Configuration::path_for("https://example.com/sipreg/"),
            "/sipreg/.well-known/openid-configuration"
        );
        assert_eq!(
            Configuration::path_for("https://example.com"),
            CONFIGURATION_PATH
        );
    }
}
