//! OpenID Connect on top of the authorization-code grant: the ID token a client gets
//! with the `openid` scope (Core §2, §3.1.3.6), and the discovery document
//! (Discovery §3, served at `{issuer}/.well-known/openid-configuration`).

use serde::Serialize;

use super::metadata::{Metadata, SCOPES, issuer_path};
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
    /// The endpoints and capabilities RFC 8414's document lists, plus OpenID's own.
    pub fn new(issuer: &str) -> Configuration {
        let m = Metadata::new(issuer);
        let mut scopes = vec![super::authorize::OPENID];
        scopes.extend(SCOPES);
        Configuration {
            issuer: m.issuer,
            authorization_endpoint: m.authorization_endpoint,
            token_endpoint: m.token_endpoint,
            jwks_uri: m.jwks_uri,
            response_types_supported: m.response_types_supported,
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
            code_challenge_methods_supported: m.code_challenge_methods_supported,
            authorization_response_iss_parameter_supported: m
                .authorization_response_iss_parameter_supported,
            grant_types_supported: m.grant_types_supported,
            token_endpoint_auth_methods_supported: m.token_endpoint_auth_methods_supported,
        }
    }

    /// Discovery §4: the issuer's URL (its path kept) followed by the well-known path.
    pub fn path_for(issuer: &str) -> String {
        format!("{}{CONFIGURATION_PATH}", issuer_path(issuer))
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
