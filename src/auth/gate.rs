//! A bound on expensive checks that wait on the store rather than the CPU (an API key's
//! or a Digest user's look-up): `permits` run at once, up to `max_waiting` more wait,
//! and any beyond are turned away at once (`Busy`: SIP 503 with `Retry-After`), so a
//! burst of new credentials cannot queue without bound behind a slow store.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{Semaphore, SemaphorePermit};

use super::AuthError;

/// What a turned-away caller is told to wait, in seconds.
pub const RETRY_AFTER_SECS: u64 = 1;

#[derive(Debug)]
pub struct Gate {
    permits: Semaphore,
    waiting: AtomicUsize,
    max_waiting: usize,
}

impl Gate {
    pub fn new(permits: usize, max_waiting: usize) -> Gate {
        Gate {
            permits: Semaphore::new(permits.max(1)),
            waiting: AtomicUsize::new(0),
            max_waiting,
        }
    }

    /// A place among the running checks; `Busy` when all are taken and the waiting room
    /// is full. The place is given back when the permit drops.
    pub async fn enter(&self) -> Result<SemaphorePermit<'_>, AuthError> {
        if let Ok(p) = self.permits.try_acquire() {
            return Ok(p);
        }
        if self.waiting.fetch_add(1, Ordering::Relaxed) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            return Err(AuthError::Busy {
                retry_after_secs: RETRY_AFTER_SECS,
            });
        }
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::Relaxed);
            }
        }
        let _waiting = Waiting(&self.waiting);
        self.permits
            .acquire()
            .await
            .map_err(|_| AuthError::Unavailable("check gate closed".to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn beyond_the_waiting_room_callers_are_turned_away() {
        let gate = std::sync::Arc::new(Gate::new(1, 1));
        let first = gate.enter().await.expect("a free place");
        let g = std::sync::Arc::clone(&gate);
        let second = tokio::spawn(async move { g.enter().await.map(|_| ()) });
        while gate.waiting.load(Ordering::Relaxed) == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            gate.enter().await.err(),
            Some(AuthError::Busy {
                retry_after_secs: 1
            })
        );
        drop(first);
        assert_eq!(second.await.expect("join"), Ok(()));
        assert!(gate.enter().await.is_ok(), "room again");
    }
}
