//! The authorization endpoint's logic (RFC 6749 §4.1.1, RFC 7636, OpenID Connect Core
//! §3.1.2): the request checked, the person logged in, their decision turned into a
//! redirect back to the client with a code or an error.
//!
//! An unknown client or a redirect URI that is not exactly one the client registered
//! is shown on sipreg's own page, never redirected to (§4.1.2.1: no open redirector);
//! every other error goes back to the client with `error` and `state`.

use std::net::IpAddr;

use url::Url;

use super::OAuthServer;
use super::code::CodeGrant;
use super::device::VerifyError;
use super::error::{ErrorCode, OAuthError};
use super::grant::GrantType;
use super::pkce;
use super::token::{Params, grant_scopes};
use crate::users::UsersError;
use crate::users::store::ClientRecord;

/// The OpenID Connect scope: it asks for an ID token, not for access.
pub const OPENID: &str = "openid";
const MAX_STATE_LEN: usize = 512;

/// A checked authorization request.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    pub client: ClientRecord,
    pub redirect_uri: String,
    /// The scopes asked for (`openid` included when asked for).
    pub scopes: Vec<String>,
    pub state: Option<String>,
    pub code_challenge: Option<String>,
    pub nonce: Option<String>,
}

/// Why a request cannot go on.
#[derive(Debug, Clone)]
pub enum AuthorizeError {
    /// Shown on sipreg's page (status 400): the redirect URI cannot be trusted.
    Page(String),
    /// Sent back to the client's redirect URI: this URL.
    Redirect(String),
}

/// A logged-in request waiting for the person's decision.
#[derive(Debug, Clone)]
pub struct Consent {
    pub request: AuthorizeRequest,
    pub user_id: String,
    pub username: String,
    pub auth_time: i64,
}

impl AuthorizeRequest {
    /// The client's redirect URI with `pairs` (and `state`, and the issuer, RFC 9207)
    /// added to its query.
    pub fn redirect_with(&self, issuer: &str, pairs: &[(&str, &str)]) -> String {
        redirect_to(&self.redirect_uri, issuer, self.state.as_deref(), pairs)
    }

    fn error(&self, issuer: &str, e: OAuthError) -> AuthorizeError {
        AuthorizeError::Redirect(self.redirect_with(
            issuer,
            &[
                ("error", e.code.as_str()),
                ("error_description", &e.description),
            ],
        ))
    }
}

fn redirect_to(uri: &str, issuer: &str, state: Option<&str>, pairs: &[(&str, &str)]) -> String {
    let Ok(mut url) = Url::parse(uri) else {
        // Registered URIs were parsed when registered; keep it as is.
        return uri.to_string();
    };
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in pairs {
            q.append_pair(k, v);
        }
        if let Some(s) = state {
            q.append_pair("state", s);
        }
        q.append_pair("iss", issuer);
    }
    url.to_string()
}

impl OAuthServer {
    fn issuer(&self) -> &str {
        &self.users.config().tokens.issuer
    }

    /// Checks an authorization request's parameters.
    pub async fn authorize_request(
        &self,
        params: &Params,
    ) -> Result<AuthorizeRequest, AuthorizeError> {
        let page = |why: &str| AuthorizeError::Page(why.to_string());
        let client_id = params
            .get("client_id")
            .ok_or_else(|| page("The request names no client."))?;
        let client = match self.users.store().client_by_id(client_id).await {
            Ok(Some(c)) => c,
            Ok(None) => return Err(page("The request names an unknown client.")),
            Err(e) => {
                tracing::error!(error = %e, "client look-up failed");
                return Err(page("The server cannot do this now. Try again."));
            }
        };
        let redirect_uri = params
            .get("redirect_uri")
            .ok_or_else(|| page("The request has no redirect URI."))?;
        // Exact string comparison (RFC 6749 §3.1.2.3, OAuth 2.0 Security BCP §4.1.3).
        if !client.redirect_uris.iter().any(|r| r == redirect_uri) {
            return Err(page(
                "The redirect URI is not one this client registered, so sipreg will not send you there.",
            ));
        }
        let state = params.get("state").map(str::to_string);
        let partial = AuthorizeRequest {
            redirect_uri: redirect_uri.to_string(),
            state: state.filter(|s| s.len() <= MAX_STATE_LEN),
            client,
            scopes: Vec::new(),
            code_challenge: None,
            nonce: None,
        };
        match self.check_rest(params, partial.clone()) {
            Ok(r) => Ok(r),
            Err(e) => Err(partial.error(self.issuer(), e)),
        }
    }

    /// The checks whose failures go back to the client.
    fn check_rest(
        &self,
        params: &Params,
        mut req: AuthorizeRequest,
    ) -> Result<AuthorizeRequest, OAuthError> {
        if params.get("state").is_some_and(|s| s.len() > MAX_STATE_LEN) {
            return Err(OAuthError::invalid_request("state is too long"));
        }
        match params.get("response_type") {
            Some("code") => {}
            Some(other) => {
                return Err(OAuthError::new(
                    ErrorCode::UnsupportedResponseType,
                    format!("response_type '{other}' is not supported"),
                ));
            }
            None => return Err(OAuthError::invalid_request("missing response_type")),
        }
        super::clients::allows(&req.client, GrantType::AuthorizationCode)?;
        let method = params.get("code_challenge_method");
        req.code_challenge = match (params.get("code_challenge"), method) {
            (None, None) if req.client.is_public() => {
                return Err(OAuthError::invalid_request(
                    "a public client must use PKCE (code_challenge with S256)",
                ));
            }
            (None, None) => None,
            (Some(c), Some(pkce::S256)) if pkce::valid_challenge(c) => Some(c.to_string()),
            (Some(_), Some(pkce::S256)) => {
                return Err(OAuthError::invalid_request(
                    "code_challenge is not a base64url SHA-256",
                ));
            }
            // RFC 7636 §4.3: no method means plain, which is refused like plain itself.
            (Some(_), _) => {
                return Err(OAuthError::invalid_request(
                    "code_challenge_method must be S256 (plain is not supported)",
                ));
            }
            (None, Some(_)) => {
                return Err(OAuthError::invalid_request(
                    "code_challenge_method without code_challenge",
                ));
            }
        };
        let asked: Vec<&str> = params
            .get("scope")
            .map(|s| s.split(' ').filter(|s| !s.is_empty()).collect())
            .unwrap_or_default();
        let openid = asked.contains(&OPENID);
        let access: Vec<&str> = asked.into_iter().filter(|s| *s != OPENID).collect();
        let mut scopes = if access.is_empty() && openid {
            Vec::new()
        } else {
            let joined = access.join(" ");
            grant_scopes(
                (!joined.is_empty()).then_some(joined.as_str()),
                &req.client.scopes,
            )?
        };
        if openid {
            scopes.push(OPENID.to_string());
        }
        req.scopes = scopes;
        req.nonce = params.get("nonce").map(str::to_string);
        if req.nonce.as_ref().is_some_and(|n| n.len() > MAX_STATE_LEN) {
            return Err(OAuthError::invalid_request("nonce is too long"));
        }
        Ok(req)
    }

    /// The person's username and password for `req`: on success, a one-time ticket for
    /// the consent step.
    pub async fn authorize_login(
        &self,
        req: AuthorizeRequest,
        username: &str,
        password: &str,
        source: IpAddr,
    ) -> Result<String, VerifyError> {
        let user = self
            .users
            .check_password(username, password, Some(source))
            .await
            .map_err(|e| match e {
                UsersError::BadCredentials => VerifyError::BadCredentials,
                UsersError::Throttled { retry_after_secs } => {
                    VerifyError::Throttled(retry_after_secs)
                }
                other => {
                    tracing::error!(error = %other, "authorization login failed");
                    VerifyError::Unavailable
                }
            })?;
        if let Err(e) = self.users.touch_login(&user.id).await {
            tracing::warn!(error = %e, "login time not recorded");
        }
        self.consents
            .insert(Consent {
                request: req,
                user_id: user.id,
                username: user.username,
                auth_time: crate::auth::now(),
            })
            .map_err(|_| VerifyError::Unavailable)
    }

    /// The request a consent ticket stands for, taken (a ticket is single-use).
    pub fn take_consent(&self, ticket: &str) -> Option<Consent> {
        self.consents.take(ticket)
    }

    /// The person's decision: the URL to send the browser to.
    pub fn authorize_decide(&self, consent: Consent, approve: bool) -> String {
        let req = &consent.request;
        let issuer = self.issuer();
        if !approve {
            tracing::info!(client_id = %req.client.id, "authorization denied");
            return req.redirect_with(
                issuer,
                &[
                    ("error", ErrorCode::AccessDenied.as_str()),
                    ("error_description", "the user denied the request"),
                ],
            );
        }
        let grant = CodeGrant {
            client_id: req.client.id.clone(),
            redirect_uri: req.redirect_uri.clone(),
            scopes: req.scopes.clone(),
            user_id: consent.user_id.clone(),
            code_challenge: req.code_challenge.clone(),
            nonce: req.nonce.clone(),
            auth_time: consent.auth_time,
        };
        match self.codes.issue(grant) {
            Ok(code) => {
                tracing::info!(user_id = %consent.user_id, client_id = %req.client.id, "authorization code issued");
                req.redirect_with(issuer, &[("code", &code)])
            }
            Err(e) => match req.error(issuer, e) {
                AuthorizeError::Redirect(url) | AuthorizeError::Page(url) => url,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_keep_the_registered_query_and_echo_state() {
        let url = redirect_to(
            "https://app.example.com/cb?x=1",
            "https://sip.example.com",
            Some("a b&c"),
            &[("code", "k")],
        );
        assert_eq!(
            url,
            "https://app.example.com/cb?x=1&code=k&state=a+b%26c&iss=https%3A%2F%2Fsip.example.com"
        );
    }
}
