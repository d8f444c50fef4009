//! Authorization server metadata (RFC 8414), so a client that knows only the 401's
//! `authz_server` (the issuer) finds every endpoint. Lists only what is served.

use serde::Serialize;

use super::grant::GrantType;

/// The endpoints' paths below the issuer.
pub const TOKEN_PATH: &str = "/oauth/token";
/// The authorization endpoint: the login and consent page (RFC 6749 §3.1).
pub const AUTHORIZE_PATH: &str = "/oauth/authorize";
pub const REVOCATION_PATH: &str = "/oauth/revoke";
pub const INTROSPECTION_PATH: &str = "/oauth/introspect";
pub const JWKS_PATH: &str = "/.well-known/jwks.json";
pub const METADATA_PATH: &str = "/.well-known/oauth-authorization-server";
pub const DEVICE_AUTHORIZATION_PATH: &str = "/oauth/device_authorization";
/// The verification page a person opens to approve a device (RFC 8628 §3.3).
pub const DEVICE_PAGE_PATH: &str = "/device";

/// The scopes sipreg's SIP and HTTP sides understand.
pub const SCOPES: [&str; 4] = ["sip.register", "presence.read", "presence.write", "admin"];

/// The RFC 8414 §2 document.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Metadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    pub revocation_endpoint: String,
    pub introspection_endpoint: String,
    pub device_authorization_endpoint: String,
    pub scopes_supported: Vec<&'static str>,
    pub response_types_supported: Vec<&'static str>,
    pub code_challenge_methods_supported: Vec<&'static str>,
    /// RFC 9207: authorization responses carry `iss`.
    pub authorization_response_iss_parameter_supported: bool,
    pub grant_types_supported: Vec<&'static str>,
    pub token_endpoint_auth_methods_supported: Vec<&'static str>,
    pub revocation_endpoint_auth_methods_supported: Vec<&'static str>,
}

impl Metadata {
    /// The document for `issuer` (its trailing slash ignored).
    pub fn new(issuer: &str) -> Metadata {
        let base = issuer.trim_end_matches('/');
        let at = |path: &str| format!("{base}{path}");
        let auth_methods = vec!["client_secret_basic", "client_secret_post", "none"];
        Metadata {
            issuer: issuer.to_string(),
            authorization_endpoint: at(AUTHORIZE_PATH),
            token_endpoint: at(TOKEN_PATH),
            jwks_uri: at(JWKS_PATH),
            revocation_endpoint: at(REVOCATION_PATH),
            introspection_endpoint: at(INTROSPECTION_PATH),
            device_authorization_endpoint: at(DEVICE_AUTHORIZATION_PATH),
            scopes_supported: SCOPES.to_vec(),
            response_types_supported: vec!["code"],
            code_challenge_methods_supported: vec![super::pkce::S256],
            authorization_response_iss_parameter_supported: true,
            grant_types_supported: GrantType::ALL.iter().map(|g| g.as_str()).collect(),
            token_endpoint_auth_methods_supported: auth_methods.clone(),
            revocation_endpoint_auth_methods_supported: auth_methods,
        }
    }

    /// Where RFC 8414 §3.1 puts the document for `issuer`: the well-known path,
    /// followed by the issuer's own path when it has one.
    pub fn path_for(issuer: &str) -> String {
        format!("{METADATA_PATH}{}", issuer_path(issuer))
    }
}

/// The path of an issuer URL, without its trailing slash ("" when it has none): where
/// both discovery documents put it (RFC 8414 §3.1 after, OpenID Discovery §4 before
/// the well-known path).
pub fn issuer_path(issuer: &str) -> &str {
    let after_scheme = issuer.split_once("://").map_or(issuer, |(_, r)| r);
    after_scheme
        .find('/')
        .map_or("", |i| &after_scheme[i..])
        .trim_end_matches('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_hang_from_the_issuer() {
        let m = Metadata::new("https://sip.example.com/");
        assert_eq!(m.token_endpoint, "https://sip.example.com/oauth/token");
        assert_eq!(m.jwks_uri, "https://sip.example.com/.well-known/jwks.json");
        assert!(m.grant_types_supported.contains(&"password"));
    }

    #[test]
    fn metadata_path_keeps_the_issuer_path() {
        assert_eq!(
            Metadata::path_for("https://sip.example.com"),
            "/.well-known/oauth-authorization-server"
        );
        assert_eq!(
            Metadata::path_for("https://example.com/sipreg/"),
            "/.well-known/oauth-authorization-server/sipreg"
        );
    }
}
