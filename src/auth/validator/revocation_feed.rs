//! How the validator's revocation state is fed: loaded at start, brought up to date
//! from the store's `revocation_log` after each of this process's changes
//! ([`Validator::sync`]) and by polling for other processes' ([`Validator::watch`]), and a
//! subject it has not heard of confirmed by the store once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Validator;
use crate::auth::revocations::Stale;
use crate::auth::{AuthError, Claims, now};
use crate::users::UsersError;

/// Log rows read per query when catching up.
const LOG_PAGE: i64 = 1000;
/// How often old revocation log rows and expired in-memory entries are dropped.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

impl Validator {
    /// Loads the revocation state: what the tables say, then the log's rows.
    pub async fn load_revocations(&self) -> Result<(), UsersError> {
        self.revocations
            .load(self.store.revocation_snapshot(now()).await?);
        self.sync().await
    }

    /// Applies the revocation log's rows not applied yet. Called after each of this
    /// process's own revocations (so it holds before the call returns) and by the
    /// poller ([`Validator::watch`]) for other processes'.
    pub async fn sync(&self) -> Result<(), UsersError> {
        let mut position = self.log_position.lock().await;
        loop {
            let rows = self.store.changes_after(*position, LOG_PAGE).await?;
            let full = i64::try_from(rows.len()).is_ok_and(|n| n == LOG_PAGE);
            for (id, change) in rows {
                match self.revocations.apply(&change) {
                    Stale::Jti(j) => self.cache.invalidate(move |c| c.jti == j),
                    Stale::Sid(f) => self.cache.invalidate(move |c| c.sid.as_deref() == Some(&f)),
                    Stale::Sub(s) => {
                        let (t, u) = (s.clone(), s.clone());
                        self.cache.invalidate(move |c| c.sub == t);
                        if let Err(e) = self
                            .known_users
                            .invalidate_entries_if(move |_, l| l.id == u)
                        {
                            tracing::warn!("known users cache: {e}");
                            self.known_users.invalidate_all();
                        }
                    }
                    Stale::ApiKey(k) => self
                        .cache
                        .invalidate(move |c| c.api_key_id.as_deref() == Some(&k)),
                    Stale::Keys => {
                        if let Err(e) = self.keys.reload().await {
                            tracing::warn!("key ring reload failed: {e}");
                        }
                    }
                    Stale::Nothing => {}
                }
                *position = id;
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// Polls the revocation log every `revocation_poll_ms` (other processes' revocations)
    /// and prunes old rows and expired entries now and then, until the validator is
    /// dropped.
    pub fn watch(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = Arc::downgrade(self);
        let every = Duration::from_millis(self.cfg.revocation_poll_ms.max(10));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_prune = Instant::now();
            loop {
                tick.tick().await;
                let Some(v) = me.upgrade() else { return };
                if let Err(e) = v.sync().await {
                    tracing::warn!("cannot read the revocation log: {e}");
                }
                if last_prune.elapsed() >= PRUNE_EVERY {
                    last_prune = Instant::now();
                    let now = now();
                    v.revocations.prune(now);
                    let before = now.saturating_sub(v.revocations.horizon());
                    if let Err(e) = v.store.prune_changes(before).await {
                        tracing::warn!("cannot prune the revocation log: {e}");
                    }
                }
            }
        })
    }

    /// A subject the revocation state has not heard of (created a moment ago by another
    /// process, or never): the store says whether it is an active user or a registered
    /// client, once; the answer is remembered.
    pub(super) async fn confirm_subject(&self, claims: &Claims) -> Result<(), AuthError> {
        let unavailable = |e: UsersError| AuthError::Unavailable(e.to_string());
        let epoch = self.revocations.epoch();
        let _place = self.gate.enter().await?;
        // A client_credentials token speaks for a client, not a user.
        let active = if claims.client_id.as_deref() == Some(claims.sub.as_str())
            && claims.username.is_empty()
        {
            self.store
                .client_by_id(&claims.sub)
                .await
                .map(|c| c.is_some())
        } else {
            self.store.user_active(&claims.sub).await
        };
        if !active.map_err(unavailable)? {
            return Err(AuthError::UserDisabled);
        }
        self.revocations.learn(&claims.sub, epoch);
        Ok(())
    }
}
