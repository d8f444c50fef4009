//! CPU-heavy work off the async runtime, behind cheap work: Argon2 and token signatures
//! run on a few threads of their own, one per CPU, at the lowest scheduling priority
//! (Linux's `SCHED_IDLE`, else nice 19), so a burst of logins or token requests takes
//! the CPU only when SIP and HTTP work leave it idle, and never occupies the runtime's
//! workers. `SCHED_IDLE` rather than nice alone: a waking SIP thread preempts an idle-class
//! thread at once, while a nice-19 thread may keep the core for the rest of its slice
//! (milliseconds of SIP latency under a login flood). Callers beyond a
//! bounded waiting room are turned away (`Busy`: HTTP 503 with `Retry-After`, OAuth
//! `temporarily_unavailable`) instead of queueing without bound. The threads end with
//! the pool.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use super::UsersError;

/// Callers that may wait per thread before new ones are refused.
const WAITING_PER_SLOT: usize = 32;
/// The nice value of the pool's threads (19: the lowest priority).
const NICE: i32 = 19;
/// What a turned-away caller is told to wait, in seconds.
const RETRY_AFTER_SECS: u64 = 1;

type Job = Box<dyn FnOnce() + Send>;

/// A bounded pool of low-priority threads.
pub struct CpuPool {
    name: &'static str,
    jobs: mpsc::SyncSender<Job>,
    /// Callers running or waiting now.
    pending: AtomicUsize,
    max_pending: usize,
}

impl std::fmt::Debug for CpuPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CpuPool")
            .field("name", &self.name)
            .field("pending", &self.pending())
            .field("max_pending", &self.max_pending)
            .finish()
    }
}

impl CpuPool {
    /// One thread per CPU (at most 8), each with a waiting room of 32 callers. (Leaving
    /// a CPU to SIP was measured: SIP p99 under a login flood no better, logins halved.)
    pub fn new(name: &'static str) -> CpuPool {
        let slots = default_slots();
        CpuPool::with_limits(name, slots, slots * (WAITING_PER_SLOT + 1))
    }

    /// `slots` threads named `{name}-{i}`, `max_pending` callers running or waiting at
    /// most.
    pub fn with_limits(name: &'static str, slots: usize, max_pending: usize) -> CpuPool {
        let max_pending = max_pending.max(1);
        let (jobs, rx) = mpsc::sync_channel::<Job>(max_pending);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..slots.max(1) {
            let rx = Arc::clone(&rx);
            let spawned = std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || {
                    lower_priority();
                    loop {
                        // The lock is held only to take the next job, not to run it.
                        let job = match rx.lock() {
                            Ok(r) => r.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            // The pool was dropped.
                            Err(_) => return,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(pool = name, error = %e, "cannot start a background CPU thread");
            }
        }
        CpuPool {
            name,
            jobs,
            pending: AtomicUsize::new(0),
            max_pending,
        }
    }

    /// Callers running or waiting now.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }

    /// The most callers running or waiting at once.
    pub fn max_pending(&self) -> usize {
        self.max_pending
    }

    /// `work` on one of the pool's threads; `Busy` when the waiting room is full.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, UsersError> {
        struct Pending<'a>(&'a AtomicUsize);
        impl Drop for Pending<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::Relaxed);
            }
        }
        let turned_away = || {
            tracing::warn!(
                pool = self.name,
                "background CPU pool saturated; request turned away"
            );
            UsersError::Busy {
                retry_after_secs: RETRY_AFTER_SECS,
            }
        };
        if self.pending.fetch_add(1, Ordering::Relaxed) >= self.max_pending {
            self.pending.fetch_sub(1, Ordering::Relaxed);
            return Err(turned_away());
        }
        let _pending = Pending(&self.pending);
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(work());
        });
        self.jobs.try_send(job).map_err(|e| match e {
            mpsc::TrySendError::Full(_) => turned_away(),
            mpsc::TrySendError::Disconnected(_) => {
                UsersError::Internal(format!("the {} threads are gone", self.name))
            }
        })?;
        rx.await
            .map_err(|_| UsersError::Internal(format!("{} job failed", self.name)))
    }
}

/// Threads of a pool by default: one per CPU, at most 8.
pub fn default_slots() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().min(8))
}

/// The idle scheduling class for the calling thread, or nice 19 where it is refused
/// (on Linux both are per thread).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: pid 0 is the calling thread; `param` is a valid sched_param that the
        // call only reads.
        let idle = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) } == 0;
        // SAFETY: setpriority with who = 0 changes the calling thread's nice value; it
        // reads no memory of ours.
        let niced = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, NICE) } == 0;
        if !idle && !niced {
            tracing::debug!("cannot lower a background CPU thread's priority");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn callers_beyond_the_bound_are_turned_away_and_the_rest_complete() {
        let pool = Arc::new(CpuPool::with_limits("test", 1, 2));
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let gate = Arc::new(Mutex::new(gate));
        // One job holds the only thread until released, one waits behind it.
        let running = {
            let (p, g) = (Arc::clone(&pool), Arc::clone(&gate));
            tokio::spawn(async move {
                p.run(move || g.lock().map(|g| g.recv().is_ok()).unwrap_or(false))
                    .await
            })
        };
        let waiting = {
            let p = Arc::clone(&pool);
            tokio::spawn(async move { p.run(|| 42).await })
        };
        while pool.pending() < 2 {
            tokio::task::yield_now().await;
        }
        match pool.run(|| 7).await {
            Err(UsersError::Busy { retry_after_secs }) => assert_eq!(retry_after_secs, 1),
            other => panic!("a third caller must be turned away, got {other:?}"),
        }
        assert_eq!(pool.pending(), 2, "the refused caller leaves no trace");
        release.send(()).expect("release");
        assert!(running.await.expect("join").expect("ran"));
        assert_eq!(waiting.await.expect("join").expect("ran"), 42);
        assert_eq!(pool.pending(), 0);
        // Room again once the others are done.
        assert_eq!(pool.run(|| 7).await.expect("ran"), 7);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn work_leaves_the_runtime_thread_free() {
        let pool = CpuPool::with_limits("test", 1, 4);
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let job = pool.run(move || gate.recv().is_ok());
        // On the only runtime thread, this task runs while the job blocks its own
        // thread: it is elsewhere.
        let releaser = async move {
            tokio::task::yield_now().await;
            release.send(()).is_ok()
        };
        let (ran, released) = tokio::join!(job, releaser);
        assert!(released);
        assert!(ran.expect("job"));
    }
}
