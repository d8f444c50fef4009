//! `UsersService`: the one entry point the HTTP API, the CLI and the SIP side use.
//! It owns the store, the password hasher, the login throttle, the signing keys and
//! the validator, and enforces the rules (policy, scopes, ownership of nothing else).

use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;

use super::password::PasswordHasherArgon;
use super::store::{RefreshRecord, RotateOutcome, Store, UserRow};
use super::throttle::LoginThrottle;
use super::{ApiKeyInfo, NewUser, User, UserQuery, UserUpdate, UsersError, digest, policy};
use crate::auth::keys::KeyStore;
use crate::auth::{AuthError, Claims, Validator, api_key, issuer, now, secret};
use crate::config::Config;

/// A signed access token.
#[derive(Debug, Clone, Serialize)]
pub struct AccessToken {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub scope: String,
}

/// What login and refresh return.
#[derive(Debug, Clone, Serialize)]
pub struct TokenPair {
    #[serde(flatten)]
    pub access: AccessToken,
    pub refresh_token: String,
}

pub struct UsersService {
    config: Config,
    store: Store,
    hasher: PasswordHasherArgon,
    throttle: LoginThrottle,
    keys: Arc<KeyStore>,
    validator: Arc<Validator>,
}

impl std::fmt::Debug for UsersService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UsersService")
    }
}

const MAX_NAME_LEN: usize = 64;
const MAX_FIELD_LEN: usize = 256;

impl UsersService {
    /// Opens the store (running migrations), loads or creates the signing key, and
    /// builds the validator, all from `config`.
    pub async fn open(config: &Config) -> Result<Arc<UsersService>, UsersError> {
        let store = Store::open(&config.database.url).await?;
        let keys = Arc::new(KeyStore::open(store.clone(), config.tokens.clone()).await?);
        let validator = Validator::new(config.tokens.clone(), keys.clone(), store.clone())
            .map_err(UsersError::Invalid)?;
        Ok(Arc::new(UsersService {
            hasher: PasswordHasherArgon::new(&config.users)?,
            throttle: LoginThrottle::new(
                config.users.throttle_max_failures,
                config.users.throttle_window_secs,
            ),
            config: config.clone(),
            store,
            keys,
            validator: Arc::new(validator),
        }))
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn validator(&self) -> Arc<Validator> {
        self.validator.clone()
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    // ---- users -------------------------------------------------------------------

    pub async fn create_user(&self, new: NewUser) -> Result<User, UsersError> {
        check_name(&new.username)?;
        for field in [&new.email, &new.display_name].into_iter().flatten() {
            check_field(field)?;
        }
        for item in new.roles.iter().chain(new.scopes.iter().flatten()) {
            check_word(item)?;
        }
        let hash = match &new.password {
            Some(p) => {
                policy::check(&self.config.users, &new.username, p)
                    .map_err(UsersError::WeakPassword)?;
                Some(self.hasher.hash(p)?)
            }
            None => None,
        };
        let scopes = match new.scopes {
            Some(s) => s,
            None => {
                let mut s = self.config.users.default_scopes.clone();
                if new.roles.iter().any(|r| r == "admin") {
                    s.push("admin".to_string());
                }
                s
            }
        };
        let id = uuid::Uuid::new_v4().to_string();
        let now = now();
        self.store
            .insert_user(&UserRow {
                id: &id,
                username: &new.username,
                email: new.email.as_deref(),
                display_name: new.display_name.as_deref(),
                password_hash: hash.as_deref(),
                roles: &new.roles,
                scopes: &scopes,
                now,
            })
            .await?;
        if let Some(p) = &new.password {
            self.store_password(&id, &new.username, p, hash.as_deref().unwrap_or_default())
                .await?;
        }
        tracing::info!(user_id = %id, username = %new.username, "user created");
        self.get_user(&id).await
    }

    pub async fn get_user(&self, id: &str) -> Result<User, UsersError> {
        self.store
            .user_by_id(id)
            .await?
            .map(|(u, _)| u)
            .ok_or_else(|| UsersError::NotFound(format!("user {id}")))
    }

    pub async fn get_user_by_name(&self, username: &str) -> Result<User, UsersError> {
        self.store
            .user_by_name(username)
            .await?
            .map(|(u, _)| u)
            .ok_or_else(|| UsersError::NotFound(format!("user '{username}'")))
    }

    pub async fn list_users(&self, q: &UserQuery) -> Result<Vec<User>, UsersError> {
        self.store.list_users(q).await
    }

    pub async fn update_user(&self, id: &str, up: UserUpdate) -> Result<User, UsersError> {
        let mut user = self.get_user(id).await?;
        if let Some(e) = up.email {
            check_field(&e)?;
            user.email = Some(e);
        }
        if let Some(d) = up.display_name {
            check_field(&d)?;
            user.display_name = Some(d);
        }
        if let Some(r) = up.roles {
            r.iter().try_for_each(|w| check_word(w))?;
            user.roles = r;
        }
        if let Some(s) = up.scopes {
            s.iter().try_for_each(|w| check_word(w))?;
            user.scopes = s;
        }
        if let Some(a) = up.active {
            user.active = a;
        }
        user.updated_at = now();
        self.store.update_user(&user).await?;
        // Roles, scopes or state changed: cached claims are out of date.
        self.validator.forget_user(&user.id);
        Ok(user)
    }

    pub async fn disable_user(&self, id: &str) -> Result<User, UsersError> {
        let user = self
            .update_user(
                id,
                UserUpdate {
                    active: Some(false),
                    ..Default::default()
                },
            )
            .await?;
        tracing::info!(user_id = %id, "user disabled");
        Ok(user)
    }

    pub async fn delete_user(&self, id: &str) -> Result<(), UsersError> {
        self.store.delete_user(id).await?;
        self.validator.forget_user(id);
        tracing::info!(user_id = %id, "user removed");
        Ok(())
    }

    /// Sets a new password (policy enforced), refreshes the HA1s, and revokes every
    /// refresh token of the user.
    pub async fn set_password(&self, id: &str, password: &str) -> Result<(), UsersError> {
        let user = self.get_user(id).await?;
        policy::check(&self.config.users, &user.username, password)
            .map_err(UsersError::WeakPassword)?;
        let hash = self.hasher.hash(password)?;
        self.store_password(id, &user.username, password, &hash)
            .await?;
        tracing::info!(user_id = %id, "password changed; refresh tokens revoked");
        Ok(())
    }

    async fn store_password(
        &self,
        id: &str,
        username: &str,
        password: &str,
        hash: &str,
    ) -> Result<(), UsersError> {
        let auth = &self.config.auth;
        let ha1s = if auth.digest_enabled {
            digest::ha1_set(username, &auth.digest_realm, password)
        } else {
            Vec::new()
        };
        self.store.set_password(id, hash, &ha1s, now()).await
    }

    /// The Digest HA1 of an active user for the configured realm ("MD5" or "SHA-256").
    pub async fn digest_ha1(
        &self,
        username: &str,
        algorithm: &str,
    ) -> Result<Option<String>, UsersError> {
        self.store
            .digest_ha1(username, &self.config.auth.digest_realm, algorithm)
            .await
    }

    // ---- login and tokens ----------------------------------------------------------

    /// Checks the password (throttled per username and per source address) and
    /// returns an access token and a new refresh token family.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        source: Option<IpAddr>,
    ) -> Result<TokenPair, UsersError> {
        let user = self.check_password(username, password, source).await?;
        self.store.touch_login(&user.id, now()).await?;
        let family = uuid::Uuid::new_v4().to_string();
        let refresh = self.new_refresh(&user.id, &family).await?;
        let access = self.issue_token(&user, None, None)?;
        tracing::info!(user_id = %user.id, "login");
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
        let ok = self.hasher.verify(password, hash);
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

    async fn new_refresh(&self, user_id: &str, family: &str) -> Result<String, UsersError> {
        let token = secret::random_hex(32);
        let record = RefreshRecord {
            id: uuid::Uuid::new_v4().to_string(),
            user_id: user_id.to_string(),
            family_id: family.to_string(),
            expires_at: now() + self.config.tokens.refresh_ttl_secs as i64,
        };
        self.store
            .insert_refresh(&record, &secret::sha256_hex(&token), now())
            .await?;
        Ok(token)
    }

    /// Rotates a refresh token: the presented one is revoked and a new one returned.
    /// Presenting an already-rotated token revokes its whole family.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair, UsersError> {
        let new_token = secret::random_hex(32);
        let now = now();
        let outcome = self
            .store
            .rotate_refresh(
                &secret::sha256_hex(refresh_token),
                &uuid::Uuid::new_v4().to_string(),
                &secret::sha256_hex(&new_token),
                now + self.config.tokens.refresh_ttl_secs as i64,
                now,
            )
            .await?;
        let record = match outcome {
            RotateOutcome::Rotated(r) => r,
            RotateOutcome::Reused => {
                tracing::warn!("refresh token reuse detected; token family revoked");
                return Err(UsersError::BadRefreshToken);
            }
            RotateOutcome::Invalid => return Err(UsersError::BadRefreshToken),
        };
        let user = self.get_user(&record.user_id).await?;
        if !user.active {
            return Err(UsersError::BadRefreshToken);
        }
        let access = self.issue_token(&user, None, None)?;
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
                .revoke_refresh_family(&secret::sha256_hex(r))
                .await?;
        }
        if let Some(c) = access {
            self.revoke_access(c).await?;
        }
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
        self.validator.forget_jti(&claims.jti);
        Ok(())
    }

    /// Signs an access token for `user`. `scopes` must be a subset of the user's
    /// (nothing is granted implicitly); `ttl` defaults to the configured access TTL.
    pub fn issue_token(
        &self,
        user: &User,
        scopes: Option<&[String]>,
        ttl: Option<u64>,
    ) -> Result<AccessToken, UsersError> {
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
        let ttl = ttl
            .unwrap_or(self.config.tokens.access_ttl_secs)
            .clamp(1, 86_400 * 365);
        let now = now();
        let claims = Claims {
            iss: self.config.tokens.issuer.clone(),
            sub: user.id.clone(),
            aud: self.config.tokens.audiences.clone(),
            exp: now + ttl as i64,
            iat: now,
            nbf: now,
            jti: uuid::Uuid::new_v4().to_string(),
            username: user.username.clone(),
            roles: user.roles.clone(),
            scope: scope.clone(),
            api_key_id: None,
        };
        let access_token = issuer::sign(&self.keys.ring(), &claims)?;
        Ok(AccessToken {
            access_token,
            token_type: "Bearer",
            expires_in: ttl,
            scope,
        })
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
                "client_id": c.api_key_id,
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

    // ---- API keys --------------------------------------------------------------------

    /// Creates a key for `user_id`; returns its metadata and the full key (shown once).
    pub async fn create_api_key(
        &self,
        user_id: &str,
        name: &str,
        scopes: Option<Vec<String>>,
        expires_in_days: Option<u64>,
    ) -> Result<(ApiKeyInfo, String), UsersError> {
        check_field(name)?;
        if name.is_empty() {
            return Err(UsersError::Invalid("the API key needs a name".to_string()));
        }
        let user = self.get_user(user_id).await?;
        let scopes = scopes.unwrap_or_else(|| user.scopes.clone());
        if let Some(extra) = scopes.iter().find(|s| !user.scopes.contains(s)) {
            return Err(UsersError::Forbidden(format!(
                "scope '{extra}' not granted to the user"
            )));
        }
        let now = now();
        let expires_at = match expires_in_days {
            Some(d) if d > 36_500 => return Err(UsersError::Invalid("expiry too far".to_string())),
            Some(d) => Some(now + (d * 86_400) as i64),
            None => None,
        };
        self.insert_key(&user.id, name, scopes, now, expires_at)
            .await
    }

    async fn insert_key(
        &self,
        user_id: &str,
        name: &str,
        scopes: Vec<String>,
        now: i64,
        expires_at: Option<i64>,
    ) -> Result<(ApiKeyInfo, String), UsersError> {
        let key = api_key::generate();
        let info = ApiKeyInfo {
            id: uuid::Uuid::new_v4().to_string(),
            user_id: user_id.to_string(),
            name: name.to_string(),
            prefix: key.prefix.clone(),
            scopes,
            created_at: now,
            expires_at,
            last_used_at: None,
            revoked_at: None,
        };
        self.store.insert_api_key(&info, &key.secret_hash).await?;
        tracing::info!(key_id = %info.id, user_id = %user_id, "API key created");
        Ok((info, key.full))
    }

    pub async fn get_api_key(&self, id: &str) -> Result<ApiKeyInfo, UsersError> {
        self.store
            .api_key_by_id(id)
            .await?
            .ok_or_else(|| UsersError::NotFound(format!("API key {id}")))
    }

    pub async fn list_api_keys(
        &self,
        user_id: Option<&str>,
    ) -> Result<Vec<ApiKeyInfo>, UsersError> {
        self.store.list_api_keys(user_id).await
    }

    pub async fn revoke_api_key(&self, id: &str) -> Result<(), UsersError> {
        self.store.revoke_api_key(id, now()).await?;
        self.validator.forget_api_key(id);
        tracing::info!(key_id = %id, "API key revoked");
        Ok(())
    }

    /// Issues a replacement key (same owner, name, scopes, expiry); the old one stays
    /// valid for `api_key_grace_secs`, then expires.
    pub async fn rotate_api_key(&self, id: &str) -> Result<(ApiKeyInfo, String), UsersError> {
        let old = self.get_api_key(id).await?;
        if old.revoked_at.is_some() {
            return Err(UsersError::Conflict(format!("API key {id} is revoked")));
        }
        let now = now();
        let created = self
            .insert_key(
                &old.user_id,
                &old.name,
                old.scopes.clone(),
                now,
                old.expires_at,
            )
            .await?;
        self.store
            .expire_api_key(id, now + self.config.tokens.api_key_grace_secs as i64)
            .await?;
        self.validator.forget_api_key(id);
        tracing::info!(old_key_id = %id, new_key_id = %created.0.id, "API key rotated");
        Ok(created)
    }

    /// Exchanges a valid API key for a short-lived access token with the key's scopes.
    pub async fn exchange_api_key(&self, key: &str) -> Result<AccessToken, UsersError> {
        if !key.starts_with(api_key::KEY_PREFIX) {
            return Err(AuthError::InvalidApiKey.into());
        }
        let claims = self.validator.validate(key).await?;
        let user = self.get_user(&claims.sub).await?;
        let scopes: Vec<String> = claims.scopes().map(str::to_string).collect();
        let ttl = (claims.exp - now()).max(1) as u64;
        self.issue_token(
            &user,
            Some(&scopes),
            Some(ttl.min(self.config.tokens.access_ttl_secs)),
        )
    }

    // ---- signing keys ------------------------------------------------------------------

    pub fn jwks(&self) -> jsonwebtoken::jwk::JwkSet {
        self.keys.ring().jwks()
    }

    pub async fn rotate_signing_key(&self) -> Result<String, UsersError> {
        self.keys.rotate().await
    }

    /// Re-reads the key ring (periodically by the server, after CLI rotations).
    pub async fn reload_keys(&self) -> Result<(), UsersError> {
        self.keys.reload().await
    }

    pub fn current_kid(&self) -> String {
        self.keys.ring().current.kid.clone()
    }
}

fn check_name(name: &str) -> Result<(), UsersError> {
    if name.is_empty() || name.len() > MAX_NAME_LEN || name.trim() != name {
        return Err(UsersError::Invalid(format!(
            "username must be 1 to {MAX_NAME_LEN} bytes without surrounding spaces"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(UsersError::Invalid(
            "username must not contain control characters".to_string(),
        ));
    }
    Ok(())
}

fn check_field(value: &str) -> Result<(), UsersError> {
    if value.len() > MAX_FIELD_LEN || value.chars().any(char::is_control) {
        return Err(UsersError::Invalid(format!(
            "fields must be at most {MAX_FIELD_LEN} bytes without control characters"
        )));
    }
    Ok(())
}

/// Roles and scopes: non-empty, no whitespace (scopes are joined with spaces).
fn check_word(value: &str) -> Result<(), UsersError> {
    if value.is_empty()
        || value.len() > MAX_NAME_LEN
        || value.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(UsersError::Invalid(format!(
            "invalid role or scope {value:?}"
        )));
    }
    Ok(())
}
