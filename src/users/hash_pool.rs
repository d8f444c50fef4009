//! Argon2 on the background CPU pool ([`super::cpu_pool`]): hashes and verifications
//! never run on the async runtime's workers, and a flood of logins beyond the pool's
//! waiting room is turned away (`Busy`) rather than queued without bound.

use std::sync::Arc;

use super::UsersError;
use super::cpu_pool::CpuPool;
use super::password::PasswordHasherArgon;

/// The password hasher behind its pool.
#[derive(Debug)]
pub struct HashPool {
    pool: CpuPool,
    hasher: Arc<PasswordHasherArgon>,
}

impl HashPool {
    pub fn new(hasher: PasswordHasherArgon) -> HashPool {
        HashPool::on(CpuPool::new("argon2"), hasher)
    }

    /// `hasher` on `pool`.
    pub fn on(pool: CpuPool, hasher: PasswordHasherArgon) -> HashPool {
        HashPool {
            pool,
            hasher: Arc::new(hasher),
        }
    }

    /// [`PasswordHasherArgon::hash`] on the pool.
    pub async fn hash(&self, password: &str) -> Result<String, UsersError> {
        let (password, h) = (password.to_string(), Arc::clone(&self.hasher));
        self.pool.run(move || h.hash(&password)).await?
    }

    /// [`PasswordHasherArgon::verify`] on the pool.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool, UsersError> {
        let (password, hash) = (password.to_string(), hash.map(str::to_string));
        let h = Arc::clone(&self.hasher);
        self.pool
            .run(move || h.verify(&password, hash.as_deref()))
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::users::UsersConfig;

    fn hasher(memory_kib: u32) -> PasswordHasherArgon {
        let cfg = UsersConfig {
            argon2_memory_kib: memory_kib,
            argon2_iterations: 2,
            ..UsersConfig::default()
        };
        PasswordHasherArgon::new(&cfg).expect("params")
    }

    #[tokio::test]
    async fn hashes_and_verifies_on_the_pool() {
        let pool = HashPool::new(hasher(8 * 1024));
        let hash = pool.hash("Correct-Horse-42").await.expect("hash");
        assert!(
            pool.verify("Correct-Horse-42", Some(&hash))
                .await
                .expect("verify")
        );
        assert!(!pool.verify("wrong", Some(&hash)).await.expect("verify"));
        assert!(!pool.verify("Correct-Horse-42", None).await.expect("verify"));
    }

    #[tokio::test]
    async fn a_flood_beyond_the_waiting_room_is_turned_away() {
        let pool = Arc::new(HashPool::on(
            CpuPool::with_limits("test", 1, 3),
            hasher(32 * 1024),
        ));
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
                Err(UsersError::Busy { .. }) => refused += 1,
                Err(e) => panic!("unexpected {e}"),
            }
        }
        assert!(refused > 0, "more than 3 at once must be refused");
        assert_eq!(pool.pool.pending(), 0);
    }
}
