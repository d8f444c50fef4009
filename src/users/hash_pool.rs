//! Argon2 off the async runtime, behind cheap work: hashes and verifications run on a few
//! threads of their own, one per CPU, at the lowest scheduling priority (nice 19), so a
//! burst of logins takes the CPU only when SIP and HTTP work leave it idle, and never
//! occupies the runtime's workers. Callers beyond a bounded waiting room are turned away
//! (`Throttled`) instead of queueing without bound. The threads end with the pool.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use super::UsersError;
use super::password::PasswordHasherArgon;

/// Callers that may wait per hashing thread before new ones are refused.
const WAITING_PER_SLOT: usize = 32;
/// The nice value of the hashing threads (19: the lowest priority).
const NICE: i32 = 19;

type Job = Box<dyn FnOnce(&PasswordHasherArgon) + Send>;

/// The password hashing pool.
pub struct HashPool {
    jobs: mpsc::SyncSender<Job>,
    /// Callers running or waiting now.
    pending: AtomicUsize,
    max_pending: usize,
}

impl std::fmt::Debug for HashPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashPool")
            .field("pending", &self.pending.load(Ordering::Relaxed))
            .field("max_pending", &self.max_pending)
            .finish()
    }
}

impl HashPool {
    pub fn new(hasher: PasswordHasherArgon) -> HashPool {
        let slots = std::thread::available_parallelism().map_or(2, |n| n.get().min(8));
        HashPool::with_limits(hasher, slots, slots * (WAITING_PER_SLOT + 1))
    }

    /// `slots` hashing threads, `max_pending` callers running or waiting at most.
    pub fn with_limits(hasher: PasswordHasherArgon, slots: usize, max_pending: usize) -> HashPool {
        let max_pending = max_pending.max(1);
        let (jobs, rx) = mpsc::sync_channel::<Job>(max_pending);
        let rx = Arc::new(Mutex::new(rx));
        let hasher = Arc::new(hasher);
        for i in 0..slots.max(1) {
            let (rx, hasher) = (Arc::clone(&rx), Arc::clone(&hasher));
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    lower_priority();
                    loop {
                        // The lock is held only to take the next job, not to run it.
                        let job = match rx.lock() {
                            Ok(r) => r.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(&hasher),
                            // The pool was dropped.
                            Err(_) => return,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password hashing thread");
            }
        }
        HashPool {
            jobs,
            pending: AtomicUsize::new(0),
            max_pending,
        }
    }

    /// [`PasswordHasherArgon::hash`] on the pool.
    pub async fn hash(&self, password: &str) -> Result<String, UsersError> {
        let password = password.to_string();
        self.run(move |h| h.hash(&password)).await?
    }

    /// [`PasswordHasherArgon::verify`] on the pool.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool, UsersError> {
        let (password, hash) = (password.to_string(), hash.map(str::to_string));
        self.run(move |h| h.verify(&password, hash.as_deref()))
            .await
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&PasswordHasherArgon) -> T + Send + 'static,
    ) -> Result<T, UsersError> {
        struct Pending<'a>(&'a AtomicUsize);
        impl Drop for Pending<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::Relaxed);
            }
        }
        let turned_away = || {
            tracing::warn!("password hashing saturated; request turned away");
            UsersError::Throttled {
                retry_after_secs: 1,
            }
        };
        if self.pending.fetch_add(1, Ordering::Relaxed) >= self.max_pending {
            self.pending.fetch_sub(1, Ordering::Relaxed);
            return Err(turned_away());
        }
        let _pending = Pending(&self.pending);
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |h| {
            let _ = tx.send(work(h));
        });
        self.jobs.try_send(job).map_err(|e| match e {
            mpsc::TrySendError::Full(_) => turned_away(),
            mpsc::TrySendError::Disconnected(_) => {
                UsersError::Internal("password hashing threads are gone".into())
            }
        })?;
        rx.await
            .map_err(|_| UsersError::Internal("password hashing failed".into()))
    }
}

/// Nice 19 for the calling thread (on Linux a thread's nice value is its own).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: setpriority with who = 0 changes the calling thread's nice value; it
        // reads no memory of ours.
        let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, NICE) };
        if rc != 0 {
            tracing::debug!("cannot lower the password hashing thread's priority");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::users::UsersConfig;

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
