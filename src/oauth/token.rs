//! The token endpoint (RFC 6749 §3.2) and revocation (RFC 7009): form parameters in,
//! a token response or an RFC 6749 §5.2 error out. Transport-free, so the HTTP layer
//! only decodes the request and encodes the answer.

use std::collections::HashMap;
use std::net::IpAddr;

use serde::Serialize;

use super::OAuthServer;
use super::clients::{ClientAuth, allows};
use super::error::{ErrorCode, OAuthError};
use super::grant::GrantType;
use crate::users::store::ClientRecord;

/// Parameters of a request, each present at most once (RFC 6749 §3.1, §3.2).
#[derive(Debug, Default)]
pub struct Params(HashMap<String, String>);

impl Params {
    /// Decodes an `application/x-www-form-urlencoded` body.
    pub fn parse(body: &[u8]) -> Result<Params, OAuthError> {
        let mut map = HashMap::new();
        for (k, v) in form_urlencoded::parse(body) {
            if map.insert(k.to_string(), v.to_string()).is_some() {
                return Err(OAuthError::invalid_request(format!(
                    "parameter '{k}' given more than once"
                )));
            }
        }
        Ok(Params(map))
    }

    /// A parameter; an empty value counts as absent (RFC 6749 §3.1).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("missing parameter '{name}'")))
    }
}

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// OpenID Connect: with the `openid` scope of an authorization-code grant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

/// The client identification of a request: `Authorization: Basic` (already split into
/// its decoded id and secret) or `client_id`/`client_secret` in the body, never both
/// (RFC 6749 §2.3: one method per request).
pub fn client_auth(
    basic: Option<(String, String)>,
    params: &Params,
) -> Result<ClientAuth, OAuthError> {
    match basic {
        Some((id, secret)) => {
            if params.get("client_secret").is_some() {
                return Err(OAuthError::invalid_request(
                    "client credentials given both in Authorization and in the body",
                ));
            }
            if params.get("client_id").is_some_and(|b| b != id) {
                return Err(OAuthError::invalid_request(
                    "client_id differs from the authenticated client",
                ));
            }
            Ok(ClientAuth {
                id: Some(id),
                secret: Some(secret),
                basic: true,
            })
        }
        None => Ok(ClientAuth {
            id: params.get("client_id").map(str::to_string),
            secret: params.get("client_secret").map(str::to_string),
            basic: false,
        }),
    }
}

/// The scopes to grant: those asked for (space-separated), each within `allowed`; or,
/// when none are asked for, all of `allowed`. An empty grant is `invalid_scope`.
pub fn grant_scopes(asked: Option<&str>, allowed: &[String]) -> Result<Vec<String>, OAuthError> {
    let out: Vec<String> = match asked {
        Some(a) => {
            let mut out = Vec::new();
            for s in a.split(' ').filter(|s| !s.is_empty()) {
                if !allowed.iter().any(|x| x == s) {
                    return Err(OAuthError::invalid_scope(format!(
                        "scope '{s}' is not available to this client and user"
                    )));
                }
                if !out.iter().any(|x| x == s) {
                    out.push(s.to_string());
                }
            }
            out
        }
        None => allowed.to_vec(),
    };
    if out.is_empty() {
        return Err(OAuthError::invalid_scope("no scope can be granted"));
    }
    Ok(out)
}

impl OAuthServer {
    /// Serves one token request from an authenticated (or public) client.
    pub async fn token(
        &self,
        params: &Params,
        auth: &ClientAuth,
        source: Option<IpAddr>,
    ) -> Result<TokenResponse, OAuthError> {
        let grant_name = params.require("grant_type")?;
        let grant = GrantType::parse(grant_name).ok_or_else(|| {
            OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                format!("grant_type '{grant_name}' is not supported"),
            )
        })?;
        let client = self.authenticate_client(auth).await?;
        allows(&client, grant)?;
        match grant {
            GrantType::Password => self.password_grant(params, &client, source).await,
            GrantType::RefreshToken => self.refresh_grant(params, &client).await,
            GrantType::ClientCredentials => self.client_credentials_grant(params, &client).await,
            GrantType::DeviceCode => self.device_code_grant(params, &client).await,
            GrantType::AuthorizationCode => self.authorization_code_grant(params, &client).await,
        }
    }

    async fn password_grant(
        &self,
        params: &Params,
        client: &ClientRecord,
        source: Option<IpAddr>,
    ) -> Result<TokenResponse, OAuthError> {
        let username = params.require("username")?;
        let password = params.require("password")?;
        let user = self
            .users
            .check_password(username, password, source)
            .await?;
        let allowed: Vec<String> = client
            .scopes
            .iter()
            .filter(|s| user.scopes.contains(s))
            .cloned()
            .collect();
        let scopes = grant_scopes(params.get("scope"), &allowed)?;
        self.users.touch_login(&user.id).await?;
        tracing::info!(user_id = %user.id, client_id = %client.id, "token issued (password grant)");
        self.session_tokens(&user, client, &scopes).await
    }

    /// The tokens of a user's grant: an access token, and a refresh token family when
    /// the client may use the refresh grant.
    pub(super) async fn session_tokens(
        &self,
        user: &crate::users::User,
        client: &ClientRecord,
        scopes: &[String],
    ) -> Result<TokenResponse, OAuthError> {
        if allows(client, GrantType::RefreshToken).is_ok() {
            let pair = self
                .users
                .open_session(user, &client.id, Some(scopes))
                .await?;
            Ok(TokenResponse::from_access(
                pair.access,
                Some(pair.refresh_token),
            ))
        } else {
            let access = self
                .users
                .issue_token_for(user, Some(scopes), None, &client.id)
                .await?;
            Ok(TokenResponse::from_access(access, None))
        }
    }

    async fn refresh_grant(
        &self,
        params: &Params,
        client: &ClientRecord,
    ) -> Result<TokenResponse, OAuthError> {
        let token = params.require("refresh_token")?;
        let narrow: Option<Vec<String>> = params.get("scope").map(|s| {
            s.split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        });
        let pair = self
            .users
            .refresh_for(token, &client.id, narrow.as_deref())
            .await?;
        Ok(TokenResponse::from_access(
            pair.access,
            Some(pair.refresh_token),
        ))
    }

    async fn client_credentials_grant(
        &self,
        params: &Params,
        client: &ClientRecord,
    ) -> Result<TokenResponse, OAuthError> {
        if client.is_public() {
            return Err(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                "a public client cannot use client_credentials",
            ));
        }
        let scopes = grant_scopes(params.get("scope"), &client.scopes)?;
        let access = self.users.issue_client_token(&client.id, &scopes).await?;
        tracing::info!(client_id = %client.id, "token issued (client_credentials grant)");
        Ok(TokenResponse::from_access(access, None))
    }

    /// RFC 7009: revokes a refresh token's family or an access token issued to the
    /// authenticated client. An unknown, invalid or foreign token is not an error
    /// (§2.2: the answer is 200 either way, so it tells nothing).
    pub async fn revoke(&self, params: &Params, auth: &ClientAuth) -> Result<(), OAuthError> {
        let token = params.require("token")?;
        let client = self.authenticate_client(auth).await?;
        let hint = params.get("token_type_hint");
        if let Some(h) = hint
            && h != "access_token"
            && h != "refresh_token"
        {
            return Err(OAuthError::new(
                ErrorCode::UnsupportedTokenType,
                format!("token_type_hint '{h}' is not supported"),
            ));
        }
        // Refresh tokens are opaque hex and access tokens JWTs: the shape decides, the
        // hint only orders the look-ups (§2.1).
        if !token.contains('.') {
            self.users.revoke_refresh(token, &client.id).await?;
            return Ok(());
        }
        if let Ok(claims) = self.users.validate(token).await
            && claims.client_id.as_deref() == Some(client.id.as_str())
        {
            self.users.revoke_access(&claims).await?;
        }
        Ok(())
    }
}

impl TokenResponse {
    pub(super) fn from_access(
        a: crate::users::AccessToken,
        refresh_token: Option<String>,
    ) -> TokenResponse {
        TokenResponse {
            access_token: a.access_token,
            token_type: a.token_type,
            expires_in: a.expires_in,
            scope: a.scope,
            refresh_token,
            id_token: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_are_refused() {
        let e = Params::parse(b"grant_type=password&grant_type=password").unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest);
        let p = Params::parse(b"grant_type=password&scope=&username=a%20b+c").unwrap();
        assert_eq!(p.get("scope"), None);
        assert_eq!(p.get("username"), Some("a b c"));
    }

    #[test]
    fn scopes_are_granted_within_what_is_allowed() {
        let allowed = vec!["sip.register".to_string(), "presence.read".to_string()];
        assert_eq!(grant_scopes(None, &allowed).unwrap(), allowed);
        assert_eq!(
            grant_scopes(Some("presence.read  presence.read"), &allowed).unwrap(),
            vec!["presence.read".to_string()]
        );
        assert_eq!(
            grant_scopes(Some("admin"), &allowed).unwrap_err().code,
            ErrorCode::InvalidScope
        );
        assert_eq!(
            grant_scopes(None, &[]).unwrap_err().code,
            ErrorCode::InvalidScope
        );
    }

    #[test]
    fn one_client_authentication_method_per_request() {
        let p = Params::parse(b"client_secret=x").unwrap();
        assert!(client_auth(Some(("a".into(), "s".into())), &p).is_err());
        let p = Params::parse(b"client_id=b").unwrap();
        assert!(client_auth(Some(("a".into(), "s".into())), &p).is_err());
        let p = Params::parse(b"client_id=a").unwrap();
        let a = client_auth(Some(("a".into(), "s".into())), &p).unwrap();
        assert!(a.basic && a.secret.as_deref() == Some("s"));
    }
}
