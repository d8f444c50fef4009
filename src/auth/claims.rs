//! The claims of a validated access token (or of an API key used directly).

use serde::{Deserialize, Deserializer, Serialize};

/// Claims sipreg signs and the validator returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    /// The user id (UUID) for local tokens.
    pub sub: String,
    #[serde(deserialize_with = "one_or_many")]
    pub aud: Vec<String>,
    pub exp: i64,
    #[serde(default)]
    pub iat: i64,
    #[serde(default)]
    pub nbf: i64,
    #[serde(default)]
    pub jti: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub roles: Vec<String>,
    /// Space-separated scopes (RFC 8693 §4.2).
    #[serde(default)]
    pub scope: String,
    /// The OAuth client the token was issued to (RFC 9068 §2.2); for a
    /// `client_credentials` token it is also `sub`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The refresh token family (session) the token was issued from, if any: revoking
    /// the family revokes its access tokens too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Set when the credential was an API key rather than a JWT.
    #[serde(skip)]
    pub api_key_id: Option<String>,
}

impl Claims {
    /// A token of user `sub` with id `jti`, expiring at `exp`, the rest neutral: the
    /// unit tests' starting point.
    #[cfg(test)]
    pub(crate) fn for_test(sub: &str, jti: &str, exp: i64) -> Claims {
        Claims {
            iss: "i".into(),
            sub: sub.into(),
            aud: vec![],
            exp,
            iat: 0,
            nbf: 0,
            jti: jti.into(),
            username: "u".into(),
            roles: vec![],
            scope: String::new(),
            client_id: None,
            sid: None,
            api_key_id: None,
        }
    }

    pub fn user_id(&self) -> &str {
        &self.sub
    }

    pub fn username(&self) -> &str {
        &self.username
    }

    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split_ascii_whitespace()
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes().any(|s| s == scope)
    }

    pub fn roles(&self) -> &[String] {
        &self.roles
    }

    pub fn exp(&self) -> i64 {
        self.exp
    }
}

/// `aud` may be a string or an array (RFC 7519 §4.1.3).
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}
