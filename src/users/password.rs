//! Argon2id password hashing (PHC strings) and the dummy verification that keeps
//! login time the same whether or not the username exists.

use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};

use super::{UsersConfig, UsersError};

/// Hashes and verifies passwords with the configured Argon2id cost.
pub struct PasswordHasherArgon {
    argon: Argon2<'static>,
    /// A hash of a random password, verified against for unknown users.
    dummy: String,
}

impl std::fmt::Debug for PasswordHasherArgon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHasherArgon")
    }
}

impl PasswordHasherArgon {
    pub fn new(cfg: &UsersConfig) -> Result<Self, UsersError> {
        let params = Params::new(
            cfg.argon2_memory_kib,
            cfg.argon2_iterations,
            cfg.argon2_parallelism,
            None,
        )
        .map_err(|e| UsersError::Invalid(format!("argon2 parameters: {e}")))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut random = [0u8; 24];
        rand::fill(&mut random);
        let mut hasher = PasswordHasherArgon {
            argon,
            dummy: String::new(),
        };
        hasher.dummy = hasher.hash(&crate::auth::secret::hex(&random))?;
        Ok(hasher)
    }

    /// A PHC string (`$argon2id$v=19$m=...`).
    pub fn hash(&self, password: &str) -> Result<String, UsersError> {
        self.argon
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| UsersError::Internal(format!("password hashing failed: {e}")))
    }

    /// Whether `password` matches `hash`; `None` verifies against the dummy hash so
    /// the time spent does not reveal that the user is missing.
    pub fn verify(&self, password: &str, hash: Option<&str>) -> bool {
        let matched = self
            .argon
            .verify_password(password.as_bytes(), hash.unwrap_or(&self.dummy))
            .is_ok();
        matched && hash.is_some()
    }
}

/// Argon2 off the async runtime: each hash or verification runs on the blocking pool,
/// at most one per CPU at once, so a burst of logins costs login latency but never
/// stalls SIP or HTTP work on the runtime's workers. Callers beyond what the pool can
/// take soon are turned away (`Throttled`) instead of queueing without bound.
#[derive(Debug)]
pub struct HashPool {
    hasher: std::sync::Arc<PasswordHasherArgon>,
    slots: std::sync::Arc<tokio::sync::Semaphore>,
    /// Callers running or waiting now.
    pending: std::sync::atomic::AtomicUsize,
    max_pending: usize,
}

/// Callers that may wait per running slot before new ones are refused.
const WAITING_PER_SLOT: usize = 32;

impl HashPool {
    pub fn new(hasher: PasswordHasherArgon) -> HashPool {
        let slots = std::thread::available_parallelism().map_or(2, |n| n.get().min(8));
        HashPool::with_limits(hasher, slots, slots * (WAITING_PER_SLOT + 1))
    }

    /// `slots` hashes at once, `max_pending` callers running or waiting at most.
    pub fn with_limits(hasher: PasswordHasherArgon, slots: usize, max_pending: usize) -> HashPool {
        HashPool {
            hasher: std::sync::Arc::new(hasher),
            slots: std::sync::Arc::new(tokio::sync::Semaphore::new(slots.max(1))),
            pending: std::sync::atomic::AtomicUsize::new(0),
            max_pending: max_pending.max(1),
        }
    }

    /// [`PasswordHasherArgon::hash`] on the blocking pool.
    pub async fn hash(&self, password: &str) -> Result<String, UsersError> {
        let password = password.to_string();
        self.run(move |h| h.hash(&password)).await?
    }

    /// [`PasswordHasherArgon::verify`] on the blocking pool.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool, UsersError> {
        let (password, hash) = (password.to_string(), hash.map(str::to_string));
        self.run(move |h| h.verify(&password, hash.as_deref()))
            .await
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&PasswordHasherArgon) -> T + Send + 'static,
    ) -> Result<T, UsersError> {
        use std::sync::atomic::Ordering;
        struct Pending<'a>(&'a std::sync::atomic::AtomicUsize);
        impl Drop for Pending<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::Relaxed);
            }
        }
        if self.pending.fetch_add(1, Ordering::Relaxed) >= self.max_pending {
            self.pending.fetch_sub(1, Ordering::Relaxed);
            tracing::warn!("password hashing saturated; request turned away");
            return Err(UsersError::Throttled {
                retry_after_secs: 1,
            });
        }
        let _pending = Pending(&self.pending);
        let permit = std::sync::Arc::clone(&self.slots)
            .acquire_owned()
            .await
            .map_err(|_| UsersError::Internal("password hashing pool closed".into()))?;
        let hasher = std::sync::Arc::clone(&self.hasher);
        tokio::task::spawn_blocking(move || {
            let out = work(&hasher);
            drop(permit);
            out
        })
        .await
        .map_err(|e| UsersError::Internal(format!("password hashing failed: {e}")))
    }
}

#[cfg(test)]
mod pool_tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn pool() -> HashPool {
        let cfg = UsersConfig {
            argon2_memory_kib: 8 * 1024,
            argon2_iterations: 2,
            ..UsersConfig::default()
        };
        HashPool::new(PasswordHasherArgon::new(&cfg).expect("params"))
    }

    #[tokio::test(flavor = "current_thread")]
    async fn hashing_leaves_the_runtime_thread_free() {
        let pool = pool();
        let ticks = Arc::new(AtomicUsize::new(0));
        let t = Arc::clone(&ticks);
        let ticker = tokio::spawn(async move {
            loop {
                t.fetch_add(1, Ordering::Relaxed);
                tokio::task::yield_now().await;
            }
        });
        let hash = pool.hash("Correct-Horse-42").await.expect("hash");
        // On the only runtime thread, the ticker ran while Argon2 did: it was elsewhere.
        assert!(ticks.load(Ordering::Relaxed) > 0);
        assert!(
            pool.verify("Correct-Horse-42", Some(&hash))
                .await
                .expect("verify")
        );
        assert!(!pool.verify("wrong", Some(&hash)).await.expect("verify"));
        assert!(!pool.verify("Correct-Horse-42", None).await.expect("verify"));
        ticker.abort();
    }

    #[tokio::test]
    async fn a_flood_beyond_the_waiting_room_is_turned_away() {
        let cfg = UsersConfig {
            argon2_memory_kib: 32 * 1024,
            argon2_iterations: 2,
            ..UsersConfig::default()
        };
        let hasher = PasswordHasherArgon::new(&cfg).expect("params");
        let pool = Arc::new(HashPool::with_limits(hasher, 1, 3));
        let max = pool.max_pending;
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let p = Arc::clone(&pool);
                tokio::spawn(async move { p.verify("x", None).await })
            })
            .collect();
        let mut refused = 0;
        for t in tasks {
            match t.await.expect("join") {
                Ok(matched) => assert!(!matched),
                Err(UsersError::Throttled { .. }) => refused += 1,
                Err(e) => panic!("unexpected {e}"),
            }
        }
        assert!(refused > 0, "more than {max} at once must be refused");
        assert_eq!(pool.pending.load(Ordering::Relaxed), 0);
    }
}
