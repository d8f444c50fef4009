//! `UsersService`: the one entry point the HTTP API, the CLI and the SIP side use.
//! It owns the store, the password hasher, the login throttle, the signing keys and
//! the validator, and enforces the rules (password policy, input limits, scopes only
//! ever a subset of the owner's).

mod api_keys;
mod bench;
mod provision;
mod sessions;
mod signing;

use std::sync::Arc;

use serde::Serialize;

use crate::auth::keys::KeyStore;
use crate::auth::{Validator, now};
use crate::config::Config;
use crate::users::cpu_pool::CpuPool;
use crate::users::hash_pool::HashPool;
use crate::users::password::PasswordHasherArgon;
use crate::users::store::{ChangeKind, Store, UserRow};
use crate::users::throttle::LoginThrottle;
use crate::users::{NewUser, User, UserQuery, UserUpdate, UsersError, digest, policy};

pub use bench::BENCH_DISPLAY_NAME;

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
    hasher: HashPool,
    /// Token signatures, off the async runtime.
    cpu: CpuPool,
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
        validator.load_revocations().await?;
        let svc = Arc::new(UsersService {
            hasher: HashPool::new(PasswordHasherArgon::new(&config.users)?),
            cpu: CpuPool::new("jwt-sign"),
            throttle: LoginThrottle::new(
                config.users.throttle_max_failures,
                config.users.throttle_window_secs,
                config.users.throttle_max_keys,
            ),
            config: config.clone(),
            store,
            keys,
            validator: Arc::new(validator),
        });
        // External tokens name users the validator finds (or creates) through us; weak,
        // since we own the validator.
        let weak: std::sync::Weak<UsersService> = Arc::downgrade(&svc);
        svc.validator.set_provisioner(weak);
        Ok(svc)
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

    /// After a change written to the revocation log (a revocation, a user or client
    /// created, disabled, changed): the validator applies the log now, so the change
    /// holds in this process before the caller hears back. If the log cannot be read,
    /// the poller applies it on its next round.
    pub async fn sync_validator(&self) {
        if let Err(e) = self.validator.sync().await {
            tracing::warn!("revocation not applied yet, the poller will: {e}");
        }
    }

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
                Some(self.hasher.hash(p).await?)
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
        self.sync_validator().await;
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
        let kind = match up.active {
            Some(false) => ChangeKind::UserDisabled,
            Some(true) if !user.active => ChangeKind::UserEnabled,
            _ => ChangeKind::UserChanged,
        };
        if let Some(a) = up.active {
            user.active = a;
        }
        user.updated_at = now();
        self.store.update_user(&user, kind).await?;
        // Roles, scopes or state changed: cached claims are out of date.
        self.sync_validator().await;
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
        self.sync_validator().await;
        tracing::info!(user_id = %id, "user removed");
        Ok(())
    }

    /// Sets a new password (policy enforced), refreshes the HA1s, and revokes every
    /// refresh token of the user.
    pub async fn set_password(&self, id: &str, password: &str) -> Result<(), UsersError> {
        let user = self.get_user(id).await?;
        policy::check(&self.config.users, &user.username, password)
            .map_err(UsersError::WeakPassword)?;
        let hash = self.hasher.hash(password).await?;
        self.store_password(id, &user.username, password, &hash)
            .await?;
        // The user's refresh families, and so their access tokens, are revoked.
        self.sync_validator().await;
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
}

pub(super) fn check_name(name: &str) -> Result<(), UsersError> {
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

pub(super) fn check_field(value: &str) -> Result<(), UsersError> {
    if value.len() > MAX_FIELD_LEN || value.chars().any(char::is_control) {
        return Err(UsersError::Invalid(format!(
            "fields must be at most {MAX_FIELD_LEN} bytes without control characters"
        )));
    }
    Ok(())
}

/// Roles and scopes: non-empty, no whitespace (scopes are joined with spaces).
pub(super) fn check_word(value: &str) -> Result<(), UsersError> {
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
