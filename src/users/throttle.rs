//! Failed-login throttling per username and per source address, in memory (each
//! node throttles on its own). After `max` failures inside `window`, further
//! attempts are refused until the oldest failure leaves the window.
//!
//! The map has a hard bound (`[users] throttle_max_keys`): a flood of distinct
//! usernames or addresses cannot grow it. Entries whose failures have all left the
//! window are swept (at most once a second, so a full map is not rescanned for every
//! failure); once the map is full of live entries, failures of keys not tracked yet are
//! counted ([`LoginThrottle::overflowed`]) but not tracked, the policy of
//! `auth::failures`: keys already tracked (an address or user under attack) stay locked,
//! and the flood cannot lock out everybody else, as one shared entry for all untracked
//! keys would. Each attempt still costs a password hash on a bounded pool, which is
//! what limits a flood's guesses.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dashmap::DashMap;

/// The bound used where no configuration names one (device-code attempts).
pub const DEFAULT_MAX_KEYS: usize = 100_000;
/// Least time between two sweeps, in milliseconds.
const SWEEP_EVERY_MS: u64 = 1000;

#[derive(Debug)]
pub struct LoginThrottle {
    max: usize,
    window: Duration,
    max_keys: usize,
    failures: DashMap<String, VecDeque<Instant>>,
    base: Instant,
    /// When stale entries were last swept (milliseconds since `base`; 0: never).
    last_sweep: AtomicU64,
    /// Failures not tracked because the map was full.
    overflow: AtomicU64,
}

impl LoginThrottle {
    /// `max` failures per key within `window_secs`; at most `max_keys` keys tracked.
    pub fn new(max: u32, window_secs: u64, max_keys: usize) -> Self {
        LoginThrottle {
            max: max.max(1) as usize,
            window: Duration::from_secs(window_secs),
            max_keys: max_keys.max(1),
            failures: DashMap::new(),
            base: Instant::now(),
            last_sweep: AtomicU64::new(0),
            overflow: AtomicU64::new(0),
        }
    }

    /// `Some(seconds to wait)` when any of `keys` is locked out.
    pub fn retry_after(&self, keys: &[String]) -> Option<u64> {
        let now = Instant::now();
        keys.iter()
            .filter_map(|k| {
                let mut entry = self.failures.get_mut(k)?;
                let list = entry.value_mut();
                while list
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= self.window)
                {
                    list.pop_front();
                }
                if list.len() < self.max {
                    return None;
                }
                let oldest = *list.front()?;
                let wait = self.window.saturating_sub(now.duration_since(oldest));
                Some(wait.as_secs().max(1))
            })
            .max()
    }

    pub fn record_failure(&self, keys: &[String]) {
        let now = Instant::now();
        for k in keys {
            if let Some(mut entry) = self.failures.get_mut(k) {
                push(&mut entry, now, self.max);
                continue;
            }
            if self.failures.len() >= self.max_keys {
                self.sweep(now);
            }
            // Concurrent inserters may each pass this check: the bound can be exceeded
            // by at most the number of threads recording at once.
            if self.failures.len() >= self.max_keys {
                self.overflow.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            push(
                &mut self.failures.entry(k.clone()).or_default(),
                now,
                self.max,
            );
        }
    }

    /// A successful login clears the username's failures (not the address's).
    pub fn clear(&self, key: &str) {
        self.failures.remove(key);
    }

    /// Keys tracked now.
    pub fn len(&self) -> usize {
        self.failures.len()
    }

    pub fn is_empty(&self) -> bool {
        self.failures.is_empty()
    }

    /// Failures not tracked because the map was full.
    pub fn overflowed(&self) -> u64 {
        self.overflow.load(Ordering::Relaxed)
    }

    /// Removes the entries whose failures have all left the window, at most once per
    /// [`SWEEP_EVERY_MS`].
    fn sweep(&self, now: Instant) {
        let at = now.duration_since(self.base).as_millis() as u64 + 1;
        let last = self.last_sweep.load(Ordering::Relaxed);
        if (last != 0 && at.saturating_sub(last) < SWEEP_EVERY_MS)
            || self
                .last_sweep
                .compare_exchange(last, at, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        self.failures.retain(|_, v| {
            v.back()
                .is_some_and(|t| now.duration_since(*t) < self.window)
        });
    }
}

/// Adds a failure at `now`, keeping the last `max` (older ones no longer matter).
fn push(list: &mut VecDeque<Instant>, now: Instant, max: usize) {
    list.push_back(now);
    while list.len() > max {
        list.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_max_failures() {
        let t = LoginThrottle::new(3, 900, 100);
        let keys = vec!["u:alice".to_string()];
        for _ in 0..2 {
            t.record_failure(&keys);
            assert_eq!(t.retry_after(&keys), None);
        }
        t.record_failure(&keys);
        let wait = t.retry_after(&keys).unwrap();
        assert!(wait > 890 && wait <= 900, "{wait}");
        t.clear("u:alice");
        assert_eq!(t.retry_after(&keys), None);
    }

    #[test]
    fn a_flood_of_distinct_keys_stays_within_the_bound() {
        let t = LoginThrottle::new(3, 900, 1000);
        // One key under attack before the flood.
        let alice = vec!["u:alice".to_string()];
        for _ in 0..3 {
            t.record_failure(&alice);
        }
        for i in 0..50_000u32 {
            t.record_failure(&[
                format!("u:user{i}"),
                format!("ip:10.{}.{}.1", i >> 8, i & 255),
            ]);
        }
        assert_eq!(t.len(), 1000);
        // 999 slots were left: the other 99,001 failures were counted, not tracked.
        assert_eq!(t.overflowed(), 100_000 - 999);
        // Still locked: the flood did not evict it.
        assert!(t.retry_after(&alice).is_some());
        // An untracked user is not locked out by the flood.
        let bob = vec!["u:bob".to_string()];
        assert_eq!(t.retry_after(&bob), None);
    }

    #[test]
    fn stale_entries_make_room() {
        let t = LoginThrottle::new(3, 0, 10);
        for i in 0..10 {
            t.record_failure(&[format!("u:user{i}")]);
        }
        assert_eq!(t.len(), 10);
        // A zero window: every entry is stale, swept to make room for a new key.
        t.record_failure(&["u:new".to_string()]);
        assert_eq!(t.len(), 1);
        assert_eq!(t.overflowed(), 0);
    }
}
