//! Cache of successful validations, keyed by the SHA-256 of the credential (the
//! credential itself is not kept). Each entry expires at its own token's `exp` (or
//! earlier with `cache_max_secs`), so verdicts do not all expire together; the size is
//! bounded (`cache_capacity`) with moka's TinyLFU admission and LRU eviction;
//! revocations drop the entries they concern at once.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use moka::sync::Cache;

use super::Claims;

type Key = [u8; 32];

/// A cached verdict: the claims, and the Unix second from which it is stale.
#[derive(Clone)]
struct Entry {
    claims: Arc<Claims>,
    until: i64,
}

/// moka's per-entry expiry: at the entry's `until`, to the sub-second.
struct AtUntil;

impl moka::Expiry<Key, Entry> for AtUntil {
    fn expire_after_create(&self, _: &Key, entry: &Entry, _: Instant) -> Option<Duration> {
        let until = UNIX_EPOCH + Duration::from_secs(u64::try_from(entry.until).unwrap_or(0));
        Some(
            until
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO),
        )
    }
}

pub struct ValidationCache {
    /// 0: no upper bound besides `exp`.
    max_secs: i64,
    /// Keys are digests already; seeded foldhash spreads them for far less than SipHash.
    entries: Cache<Key, Entry, foldhash::fast::RandomState>,
    enabled: bool,
}

impl ValidationCache {
    /// At most `capacity` verdicts, each kept until its token's `exp`, and at most
    /// `max_secs` seconds when that is not 0.
    pub fn new(capacity: usize, max_secs: u64) -> Self {
        ValidationCache {
            max_secs: super::secs(max_secs),
            entries: Cache::builder()
                .max_capacity(u64::try_from(capacity).unwrap_or(u64::MAX))
                .expire_after(AtUntil)
                .support_invalidation_closures()
                .build_with_hasher(foldhash::fast::RandomState::default()),
            enabled: capacity > 0,
        }
    }

    pub fn get(&self, key: &Key, now: i64) -> Option<Arc<Claims>> {
        let entry = self.entries.get(key)?;
        // moka's timer wheel may lag; a verdict is never served at or past `until`.
        if now < entry.until {
            return Some(entry.claims);
        }
        self.remove(key);
        None
    }

    /// Drops one entry (a verdict found revoked on use).
    pub fn remove(&self, key: &Key) {
        self.entries.invalidate(key);
    }

    pub fn insert(&self, key: Key, claims: Arc<Claims>, now: i64) {
        if !self.enabled {
            return;
        }
        let until = if self.max_secs > 0 {
            claims.exp.min(now.saturating_add(self.max_secs))
        } else {
            claims.exp
        };
        if until <= now {
            return;
        }
        self.entries.insert(key, Entry { claims, until });
    }

    /// Drops every entry matching `pred` (revoked jti or family, disabled user, revoked
    /// key); reads that follow no longer see them.
    pub fn invalidate(&self, pred: impl Fn(&Claims) -> bool + Send + Sync + 'static) {
        if let Err(e) = self
            .entries
            .invalidate_entries_if(move |_, e| pred(&e.claims))
        {
            // Only when closures are not enabled, which `new` does; drop everything.
            tracing::warn!("validation cache: {e}; clearing it");
            self.entries.invalidate_all();
        }
    }

    /// Entries held, after pending evictions and expiries are applied.
    pub fn len(&self) -> usize {
        self.entries.run_pending_tasks();
        usize::try_from(self.entries.entry_count()).unwrap_or(usize::MAX)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64, jti: &str) -> Arc<Claims> {
        Arc::new(Claims::for_test("s", jti, exp))
    }

    #[test]
    fn never_past_exp_and_bounded() {
        let now = super::super::now();
        let c = ValidationCache::new(10, 0);
        c.insert([1; 32], claims(now + 5, "a"), now);
        assert!(c.get(&[1; 32], now + 4).is_some());
        assert!(c.get(&[1; 32], now + 5).is_none(), "served at exp");
        for i in 0..50u8 {
            c.insert([i; 32], claims(now + 1000, "b"), now);
        }
        assert!(c.len() <= 10, "{}", c.len());
        c.invalidate(|cl| cl.jti == "b");
        for i in 0..50u8 {
            assert!(c.get(&[i; 32], now).is_none(), "revoked entry {i} served");
        }
    }

    /// Entries leave at their own `exp`, not together: the one that expires first is
    /// gone (evicted by moka, not just hidden) while the later one stays.
    #[test]
    fn each_entry_expires_at_its_own_exp() {
        let now = super::super::now();
        let c = ValidationCache::new(100, 0);
        c.insert([1; 32], claims(now + 1, "short"), now);
        c.insert([2; 32], claims(now + 3600, "long"), now);
        assert_eq!(c.len(), 2);
        std::thread::sleep(Duration::from_millis(2100));
        assert_eq!(c.len(), 1, "the short-lived entry is evicted");
        assert!(c.get(&[2; 32], super::super::now()).is_some());
    }

    #[test]
    fn max_secs_caps_the_lifetime_and_zero_capacity_caches_nothing() {
        let now = super::super::now();
        let c = ValidationCache::new(100, 10);
        c.insert([1; 32], claims(now + 3600, "a"), now);
        assert!(c.get(&[1; 32], now + 9).is_some());
        assert!(c.get(&[1; 32], now + 10).is_none());
        let off = ValidationCache::new(0, 0);
        off.insert([1; 32], claims(now + 3600, "a"), now);
        assert!(off.get(&[1; 32], now).is_none());
    }
}
