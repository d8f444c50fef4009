//! API keys: creation (shown once), listing, revocation, rotation with a grace
//! period, and exchange for an access token.

use super::{AccessToken, UsersService, check_field};
use crate::auth::{AuthError, api_key, now, secs};
use crate::users::{ApiKeyInfo, UsersError};

impl UsersService {
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
            Some(d) => Some(now.saturating_add(secs(d.saturating_mul(86_400)))),
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
        self.sync_validator().await;
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
            .expire_api_key(
                id,
                now.saturating_add(secs(self.config.tokens.api_key_grace_secs)),
            )
            .await?;
        self.sync_validator().await;
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
        self.issue_token_for(
            &user,
            Some(&scopes),
            Some(ttl.min(self.config.tokens.access_ttl_secs)),
            "",
        )
        .await
    }
}
