//! Cache of successful validations, keyed by the SHA-256 of the credential (the
//! credential itself is not kept). An entry never outlives the token's `exp`, nor
//! `cache_max_secs`; the size is bounded; revocations remove entries.

use std::sync::Arc;

use dashmap::DashMap;

use super::Claims;

struct Entry {
    claims: Arc<Claims>,
    /// Unix second after which the entry is stale.
    until: i64,
}

pub struct ValidationCache {
    capacity: usize,
    max_secs: i64,
    /// Keys are digests already; seeded foldhash spreads them for far less than SipHash.
    entries: DashMap<[u8; 32], Entry, foldhash::fast::RandomState>,
}

impl ValidationCache {
    pub fn new(capacity: usize, max_secs: u64) -> Self {
        ValidationCache {
            capacity,
            max_secs: super::secs(max_secs),
            entries: DashMap::with_hasher(foldhash::fast::RandomState::default()),
        }
    }

    pub fn get(&self, key: &[u8; 32], now: i64) -> Option<Arc<Claims>> {
        let entry = self.entries.get(key)?;
        if now < entry.until {
            return Some(entry.claims.clone());
        }
        drop(entry);
        self.entries.remove(key);
        None
    }

    pub fn insert(&self, key: [u8; 32], claims: Arc<Claims>, now: i64) {
        if self.capacity == 0 {
            return;
        }
        let until = claims.exp.min(now.saturating_add(self.max_secs));
        if until <= now {
            return;
        }
        if self.entries.len() >= self.capacity {
            self.entries.retain(|_, e| e.until > now);
            // Still full: drop an arbitrary tenth rather than grow.
            let excess = self.entries.len() + 1 - self.capacity.min(self.entries.len() + 1);
            let drop_n = excess.max(self.capacity / 10).max(1);
            let victims: Vec<[u8; 32]> =
                self.entries.iter().take(drop_n).map(|e| *e.key()).collect();
            if self.entries.len() >= self.capacity {
                for k in victims {
                    self.entries.remove(&k);
                }
            }
        }
        self.entries.insert(key, Entry { claims, until });
    }

    /// Drops every entry matching `pred` (revoked jti, disabled user, revoked key).
    pub fn invalidate(&self, pred: impl Fn(&Claims) -> bool) {
        self.entries.retain(|_, e| !pred(&e.claims));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64, jti: &str) -> Arc<Claims> {
        Arc::new(Claims {
            iss: "i".into(),
            sub: "s".into(),
            aud: vec![],
            exp,
            iat: 0,
            nbf: 0,
            jti: jti.into(),
            username: "u".into(),
            roles: vec![],
            scope: String::new(),
            api_key_id: None,
            client_id: None,
        })
    }

    #[test]
    fn never_past_exp_and_bounded() {
        let c = ValidationCache::new(10, 30);
        c.insert([1; 32], claims(105, "a"), 100);
        assert!(c.get(&[1; 32], 104).is_some());
        assert!(c.get(&[1; 32], 105).is_none(), "served past exp");
        for i in 0..50u8 {
            c.insert([i; 32], claims(1000, "b"), 100);
        }
        assert!(c.len() <= 10, "{}", c.len());
        c.invalidate(|cl| cl.jti == "b");
        assert!(c.is_empty());
    }
}
