//! The `[presence]` section: expiry bounds for PUBLISH and SUBSCRIBE, the body size
//! limit, NOTIFY coalescing, subscription limits and who may watch whom.

use std::time::Duration;

use serde::Deserialize;

/// Who may subscribe to a presentity (besides the owner and `admin`, always allowed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// Any authenticated user whose From domain is the presentity's domain.
    SameDomain,
    /// Any authenticated user.
    AllowAll,
    /// Only the presentity's owner (and `admin`).
    OwnerOnly,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PresenceConfig {
    pub publish_default_expires: u32,
    pub publish_min_expires: u32,
    pub publish_max_expires: u32,
    pub subscribe_default_expires: u32,
    pub subscribe_min_expires: u32,
    pub subscribe_max_expires: u32,
    /// Largest PIDF body accepted, in octets (413 beyond).
    pub max_body_size: usize,
    /// Most live publications one AOR may have (a new one beyond: 403).
    pub max_publications_per_aor: usize,
    /// A watcher gets at most one NOTIFY per this many milliseconds (the latest state).
    pub notify_interval_ms: u64,
    /// Most live subscriptions one authenticated user may hold (403 beyond).
    pub max_subscriptions_per_watcher: usize,
    /// Most live subscriptions to one presentity (503 with Retry-After beyond).
    pub max_subscriptions_per_presentity: usize,
    pub policy: Policy,
}

impl Default for PresenceConfig {
    fn default() -> Self {
        PresenceConfig {
            publish_default_expires: 3600,
            publish_min_expires: 60,
            publish_max_expires: 86_400,
            subscribe_default_expires: 3600,
            subscribe_min_expires: 60,
            subscribe_max_expires: 86_400,
            max_body_size: 16_384,
            max_publications_per_aor: 32,
            notify_interval_ms: 1000,
            max_subscriptions_per_watcher: 100,
            max_subscriptions_per_presentity: 10_000,
            policy: Policy::SameDomain,
        }
    }
}

/// The expiry a request gets: `Ok(0)` removes, `Err(min)` is 423 with Min-Expires.
pub fn granted(asked: Option<u32>, default: u32, min: u32, max: u32) -> Result<u32, u32> {
    let e = asked.unwrap_or(default);
    if e == 0 {
        return Ok(0);
    }
    if e < min {
        return Err(min);
    }
    Ok(e.min(max.max(min)))
}

impl PresenceConfig {
    pub fn notify_interval(&self) -> Duration {
        Duration::from_millis(self.notify_interval_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_bounds() {
        assert_eq!(granted(None, 3600, 60, 7200), Ok(3600));
        assert_eq!(granted(Some(0), 3600, 60, 7200), Ok(0));
        assert_eq!(granted(Some(59), 3600, 60, 7200), Err(60));
        assert_eq!(granted(Some(10_000), 3600, 60, 7200), Ok(7200));
    }
}
