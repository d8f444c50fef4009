//! Failed-login throttling per username and per source address, in memory (each
//! node throttles on its own). After `max` failures inside `window`, further
//! attempts are refused until the oldest failure leaves the window.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use dashmap::DashMap;

/// Keys beyond this trigger a sweep of stale entries, bounding memory.
const SWEEP_AT: usize = 100_000;

#[derive(Debug)]
pub struct LoginThrottle {
    max: usize,
    window: Duration,
    failures: DashMap<String, VecDeque<Instant>>,
}

impl LoginThrottle {
    pub fn new(max: u32, window_secs: u64) -> Self {
        LoginThrottle {
            max: max.max(1) as usize,
            window: Duration::from_secs(window_secs),
            failures: DashMap::new(),
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
        if self.failures.len() > SWEEP_AT {
            self.failures.retain(|_, v| {
                v.back()
                    .is_some_and(|t| now.duration_since(*t) < self.window)
            });
        }
        for k in keys {
            let mut entry = self.failures.entry(k.clone()).or_default();
            entry.push_back(now);
            while entry.len() > self.max {
                entry.pop_front();
            }
        }
    }

    /// A successful login clears the username's failures (not the address's).
    pub fn clear(&self, key: &str) {
        self.failures.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_max_failures() {
        let t = LoginThrottle::new(3, 900);
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
}
