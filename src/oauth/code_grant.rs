//! The token endpoint's `authorization_code` grant (RFC 6749 §4.1.3, RFC 7636 §4.6):
//! the code, bound to its client, redirect URI and PKCE challenge, buys the tokens of
//! the user who approved it, plus an ID token with `openid`. A code presented twice
//! revokes what it bought (the refresh family and the access token).

use super::OAuthServer;
use super::authorize::OPENID;
use super::code::{Issued, Taken};
use super::error::OAuthError;
use super::token::{Params, TokenResponse, grant_scopes};
use super::{oidc, pkce};
use crate::auth::secret;
use crate::users::store::ClientRecord;

impl OAuthServer {
    pub(super) async fn authorization_code_grant(
        &self,
        params: &Params,
        client: &ClientRecord,
    ) -> Result<TokenResponse, OAuthError> {
        let code = params.require("code")?;
        let redirect_uri = params.require("redirect_uri")?;
        let verifier = params.get("code_verifier");
        let grant = match self.codes.take(code) {
            Taken::Fresh(g) => g,
            Taken::Reused(issued) => {
                tracing::warn!(client_id = %client.id, "authorization code reused");
                if let Some(i) = issued {
                    self.revoke_issued(&i).await;
                }
                return Err(OAuthError::invalid_grant(
                    "the code was already used; what it issued is revoked",
                ));
            }
            Taken::Unknown => {
                return Err(OAuthError::invalid_grant("invalid or expired code"));
            }
        };
        // The code is spent from here on, whatever follows (a guess burns it).
        if grant.client_id != client.id || grant.redirect_uri != redirect_uri {
            return Err(OAuthError::invalid_grant(
                "the code was issued to another client or redirect URI",
            ));
        }
        match (&grant.code_challenge, verifier) {
            (Some(challenge), Some(v)) if pkce::verify(v, challenge) => {}
            (None, None) => {}
            (Some(_), _) => {
                return Err(OAuthError::invalid_grant("code_verifier missing or wrong"));
            }
            (None, Some(_)) => {
                return Err(OAuthError::invalid_grant(
                    "code_verifier given for a request without code_challenge",
                ));
            }
        }
        let user = self.users.get_user(&grant.user_id).await?;
        let openid = grant.scopes.iter().any(|s| s == OPENID);
        let allowed: Vec<String> = grant
            .scopes
            .iter()
            .filter(|s| user.scopes.contains(s))
            .cloned()
            .collect();
        let scopes = if allowed.is_empty() && openid {
            Vec::new()
        } else {
            grant_scopes(None, &allowed)?
        };
        let mut response = if scopes.is_empty() {
            // Sign-in only (`openid`): an access token that grants nothing, and no
            // refresh family (an empty family scope would mean "all the user's").
            let access = self
                .users
                .issue_token_for(&user, Some(&scopes), None, &client.id)
                .await?;
            TokenResponse::from_access(access, None)
        } else {
            self.session_tokens(&user, client, &scopes).await?
        };
        if openid {
            response.id_token = Some(
                oidc::id_token(
                    &self.users,
                    &user,
                    &client.id,
                    grant.nonce.as_deref(),
                    grant.auth_time,
                )
                .await?,
            );
            response.scope = if response.scope.is_empty() {
                OPENID.to_string()
            } else {
                format!("{OPENID} {}", response.scope)
            };
        }
        let issued = Issued {
            client_id: client.id.clone(),
            refresh_hash: response.refresh_token.as_deref().map(secret::sha256_hex),
            access: self
                .users
                .validate(&response.access_token)
                .await
                .map_err(|e| {
                    tracing::error!(error = %e, "a token just issued does not validate");
                    OAuthError::new(
                        super::ErrorCode::ServerError,
                        "the server could not issue a token",
                    )
                })?,
        };
        if !self.codes.record(code, issued.clone()) {
            // Presented again while this redemption was running: neither gets tokens.
            self.revoke_issued(&issued).await;
            return Err(OAuthError::invalid_grant(
                "the code was already used; what it issued is revoked",
            ));
        }
        tracing::info!(user_id = %user.id, client_id = %client.id, "token issued (authorization code grant)");
        Ok(response)
    }

    async fn revoke_issued(&self, issued: &Issued) {
        if let Some(hash) = &issued.refresh_hash
            && let Err(e) = self
                .users
                .store()
                .revoke_refresh_family(hash, &issued.client_id)
                .await
        {
            tracing::error!(error = %e, "refresh family of a reused code not revoked");
        }
        if let Err(e) = self.users.revoke_access(&issued.access).await {
            tracing::error!(error = %e, "access token of a reused code not revoked");
        }
    }
}
