//! Login, refresh-token rotation, logout and access-token issuing.

use std::net::IpAddr;

use super::{AccessToken, TokenPair, UsersService};
use crate::auth::{AuthError, Claims, issuer, now, secret, secs};
use crate::users::store::{RefreshRecord, RotateOutcome};
use crate::users::{User, UsersError};

impl UsersService {
    /// Checks the password (throttled per username and per source address) and
    /// returns an access token and a new refresh token family.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        source: Option<IpAddr>,
    ) -> Result<TokenPair, UsersError> {
        let user = self.check_password(username, password, source).await?;
        self.touch_login(&user.id).await?;
        tracing::info!(user_id = %user.id, "login");
        self.open_session(&user, "", None).await
    }

    /// Records a successful login's time.
    pub async fn touch_login(&self, user_id: &str) -> Result<(), UsersError> {
        self.store.touch_login(user_id, now()).await
    }

    /// A new refresh token family for `user` issued to `client_id` ('' for none) with
    /// `scopes` (`None`: the user's scopes at each refresh), and its first access token.
    pub async fn open_session(
        &self,
        user: &User,
        client_id: &str,
        scopes: Option<&[String]>,
    ) -> Result<TokenPair, UsersError> {
        let family = uuid::Uuid::new_v4().to_string();
        let (mut claims, ttl) = self.user_claims(user, scopes, None, client_id)?;
        claims.sid = Some(family.clone());
        let access = self.sign_access(claims, ttl).await?;
        let scope = scopes.map(|s| s.join(" ")).unwrap_or_default();
        let refresh = self
            .new_refresh(&user.id, &family, client_id, scope)
            .await?;
        Ok(TokenPair {
            access,
            refresh_token: refresh,
        })
    }

    /// The active user `username` if `password` is theirs. Failures count towards the
    /// throttle of the username and of `source`; unknown users cost the same time.
    pub async fn check_password(
        &self,
        username: &str,
        password: &str,
        source: Option<IpAddr>,
    ) -> Result<User, UsersError> {
        let mut keys = vec![format!("u:{username}")];
        if let Some(ip) = source {
            keys.push(format!("ip:{ip}"));
        }
        if let Some(retry_after_secs) = self.throttle.retry_after(&keys) {
            return Err(UsersError::Throttled { retry_after_secs });
        }
        let found = self.store.user_by_name(username).await?;
        let hash = found.as_ref().and_then(|(_, h)| h.as_deref());
        // Always run Argon2, against a dummy hash for unknown users (constant timing).
        let ok = self.hasher.verify(password, hash).await?;
        match found {
            Some((user, _)) if ok && user.active => {
                self.throttle.clear(&keys[0]);
                Ok(user)
            }
            _ => {
                self.throttle.record_failure(&keys);
                tracing::info!(username = %username, "password check failed");
                Err(UsersError::BadCredentials)
            }
        }
    }

    async fn new_refresh(
        &self,
        user_id: &str,
        family: &str,
        client_id: &str,
        scope: String,
    ) -> Result<String, UsersError> {
        let token = secret::random_hex(32);
        let record = RefreshRecord {
            id: uuid::Uuid::new_v4().to_string(),
            user_id: user_id.to_string(),
            family_id: family.to_string(),
            expires_at: now().saturating_add(secs(self.config.tokens.refresh_ttl_secs)),
            client_id: client_id.to_string(),
            scope,
        };
        self.store
            .insert_refresh(&record, &secret::sha256_hex(&token), now())
            .await?;
        Ok(token)
    }

    /// Rotates a refresh token: the presented one is revoked and a new one returned.
    /// Presenting an already-rotated token revokes its whole family.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair, UsersError> {
        self.refresh_for(refresh_token, "", None).await
    }

    /// [`UsersService::refresh`] for a token issued to `client_id` ('' for none): a
    /// token of another client is refused (RFC 6749 §6). The new access token carries
    /// the family's scope, less what the user has lost since, or `narrow` when given
    /// (a subset of it; else `ScopeNotGranted`, after the rotation).
    pub async fn refresh_for(
        &self,
        refresh_token: &str,
        client_id: &str,
        narrow: Option<&[String]>,
    ) -> Result<TokenPair, UsersError> {
        let new_token = secret::random_hex(32);
        let now = now();
        let outcome = self
            .store
            .rotate_refresh(
                &secret::sha256_hex(refresh_token),
                client_id,
                &uuid::Uuid::new_v4().to_string(),
                &secret::sha256_hex(&new_token),
                now.saturating_add(secs(self.config.tokens.refresh_ttl_secs)),
                now,
            )
            .await?;
        let record = match outcome {
            RotateOutcome::Rotated(r) => r,
            RotateOutcome::Reused => {
                self.sync_validator().await;
                tracing::warn!("refresh token reuse detected; token family revoked");
                return Err(UsersError::BadRefreshToken);
            }
            RotateOutcome::Invalid => return Err(UsersError::BadRefreshToken),
        };
        let user = self.get_user(&record.user_id).await?;
        if !user.active {
            return Err(UsersError::BadRefreshToken);
        }
        let kept: Vec<String> = record
            .scope
            .split_ascii_whitespace()
            .filter(|s| user.scopes.iter().any(|u| u == s))
            .map(str::to_string)
            .collect();
        let family_scopes: Vec<String> = if record.scope.is_empty() {
            user.scopes.clone()
        } else {
            kept
        };
        let scopes = match narrow {
            Some(n) => {
                if let Some(extra) = n.iter().find(|s| !family_scopes.contains(s)) {
                    return Err(UsersError::ScopeNotGranted(extra.clone()));
                }
                n
            }
            None => family_scopes.as_slice(),
        };
        // The family travels as `sid`: revoking it revokes this token too.
        let (mut claims, ttl) = self.user_claims(&user, Some(scopes), None, client_id)?;
        claims.sid = Some(record.family_id.clone());
        let access = self.sign_access(claims, ttl).await?;
        Ok(TokenPair {
            access,
            refresh_token: new_token,
        })
    }

    /// Logout: revokes the refresh token's family and, if given, the access token.
    pub async fn logout(
        &self,
        refresh_token: Option<&str>,
        access: Option<&Claims>,
    ) -> Result<(), UsersError> {
        if let Some(r) = refresh_token {
            self.store
                .revoke_refresh_family(&secret::sha256_hex(r), "")
                .await?;
        }
        if let Some(c) = access {
            self.revoke_access(c).await?;
        }
        self.sync_validator().await;
        Ok(())
    }

    /// Puts an access token's jti on the revocation list.
    pub async fn revoke_access(&self, claims: &Claims) -> Result<(), UsersError> {
        if claims.jti.is_empty() {
            return Ok(());
        }
        self.store
            .revoke_jti(&claims.jti, claims.exp, now())
            .await?;
        self.sync_validator().await;
        Ok(())
    }

    /// Revokes the refresh token family of `refresh_token` if it was issued to
    /// `client_id`; `false` when no such token exists (RFC 7009 answers 200 anyway).
    pub async fn revoke_refresh(
        &self,
        refresh_token: &str,
        client_id: &str,
    ) -> Result<bool, UsersError> {
        let found = self
            .store
            .revoke_refresh_family(&secret::sha256_hex(refresh_token), client_id)
            .await?
            .is_some();
        self.sync_validator().await;
        Ok(found)
    }

    /// Signs an access token for `user` on the calling thread (the CLI, tests): HTTP
    /// paths use [`UsersService::issue_token_for`], which signs off the runtime.
    /// `scopes` must be a subset of the user's (nothing is granted implicitly); `ttl`
    /// defaults to the configured access TTL.
    pub fn issue_token(
        &self,
        user: &User,
        scopes: Option<&[String]>,
        ttl: Option<u64>,
    ) -> Result<AccessToken, UsersError> {
        let (claims, ttl) = self.user_claims(user, scopes, ttl, "")?;
        let token = issuer::sign(&self.keys.ring(), &claims)?;
        Ok(answer(token, ttl, claims.scope))
    }

    /// [`UsersService::issue_token`] naming the OAuth client it is issued to ('' for
    /// none) in `client_id` (RFC 9068 §2.2), signed on the background CPU pool.
    pub async fn issue_token_for(
        &self,
        user: &User,
        scopes: Option<&[String]>,
        ttl: Option<u64>,
        client_id: &str,
    ) -> Result<AccessToken, UsersError> {
        let (claims, ttl) = self.user_claims(user, scopes, ttl, client_id)?;
        self.sign_access(claims, ttl).await
    }

    /// An access token for a client acting for itself (`client_credentials`, RFC 6749
    /// §4.4): `sub` and `client_id` name the client, no user; no refresh token.
    pub async fn issue_client_token(
        &self,
        client_id: &str,
        scopes: &[String],
    ) -> Result<AccessToken, UsersError> {
        let ttl = self.config.tokens.access_ttl_secs;
        let claims = self.access_claims(
            Subject {
                sub: client_id.to_string(),
                username: String::new(),
                roles: Vec::new(),
                client_id: Some(client_id.to_string()),
            },
            scopes.join(" "),
            ttl,
        );
        self.sign_access(claims, ttl).await
    }

    /// The claims of an access token for `user`, after the scope rules.
    fn user_claims(
        &self,
        user: &User,
        scopes: Option<&[String]>,
        ttl: Option<u64>,
        client_id: &str,
    ) -> Result<(Claims, u64), UsersError> {
        if !user.active {
            return Err(UsersError::Forbidden(format!(
                "user '{}' is disabled",
                user.username
            )));
        }
        let scope = match scopes {
            Some(requested) => {
                if let Some(extra) = requested.iter().find(|s| !user.scopes.contains(s)) {
                    return Err(UsersError::Forbidden(format!(
                        "scope '{extra}' not granted to the user"
                    )));
                }
                requested.join(" ")
            }
            None => user.scopes.join(" "),
        };
        let ttl = ttl.unwrap_or(self.config.tokens.access_ttl_secs);
        let client = (!client_id.is_empty()).then(|| client_id.to_string());
        let claims = self.access_claims(
            Subject {
                sub: user.id.clone(),
                username: user.username.clone(),
                roles: user.roles.clone(),
                client_id: client,
            },
            scope,
            ttl,
        );
        Ok((claims, clamp_ttl(ttl)))
    }

    /// The claims of an access token for `who` with `scope`, living `ttl` seconds
    /// (clamped to between one second and a year): the one place they are built.
    fn access_claims(&self, who: Subject, scope: String, ttl: u64) -> Claims {
        let now = now();
        Claims {
            iss: self.config.tokens.issuer.clone(),
            sub: who.sub,
            aud: self.config.tokens.audiences.clone(),
            exp: now.saturating_add(secs(clamp_ttl(ttl))),
            iat: now,
            nbf: now,
            jti: uuid::Uuid::new_v4().to_string(),
            username: who.username,
            roles: who.roles,
            scope,
            api_key_id: None,
            sid: None,
            client_id: who.client_id,
        }
    }

    /// Signs `claims` on the background CPU pool (an RS256 signature is about a
    /// millisecond of CPU: a flood of token requests must not take it from SIP).
    async fn sign_access(&self, claims: Claims, ttl: u64) -> Result<AccessToken, UsersError> {
        let ring = self.keys.ring();
        let (token, claims) = self
            .cpu
            .run(move || issuer::sign(&ring, &claims).map(|t| (t, claims)))
            .await??;
        Ok(answer(token, clamp_ttl(ttl), claims.scope))
    }

    /// Validates any credential the validator accepts.
    pub async fn validate(&self, token: &str) -> Result<Claims, AuthError> {
        self.validator.validate(token).await
    }

    /// RFC 7662 introspection response for `token`.
    pub async fn introspect(&self, token: &str) -> serde_json::Value {
        match self.validator.validate(token).await {
            Ok(c) => serde_json::json!({
                "active": true,
                "scope": c.scope,
                "client_id": c.client_id.as_ref().or(c.api_key_id.as_ref()),
                "username": c.username,
                "token_type": if c.api_key_id.is_some() { "api_key" } else { "access_token" },
                "exp": c.exp,
                "iat": c.iat,
                "nbf": c.nbf,
                "sub": c.sub,
                "aud": c.aud,
                "iss": c.iss,
                "jti": c.jti,
            }),
            Err(_) => serde_json::json!({ "active": false }),
        }
    }
}

/// Access tokens live between one second and a year.
fn clamp_ttl(ttl: u64) -> u64 {
    ttl.clamp(1, 86_400 * 365)
}

fn answer(access_token: String, expires_in: u64, scope: String) -> AccessToken {
    AccessToken {
        access_token,
        token_type: "Bearer",
        expires_in,
        scope,
    }
}

/// Who an access token speaks for: a user (through a client or none), or a client.
struct Subject {
    sub: String,
    username: String,
    roles: Vec<String>,
    client_id: Option<String>,
}
