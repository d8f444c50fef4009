//! A request rate limit per source address, like Kamailio's `pike`: a token bucket per
//! IP over every SIP request received (responses to sipreg's own requests are not
//! counted), with `[limits] requests_per_ip_per_sec` as its
//! rate and `request_burst` as its depth. Over the limit a request is answered 503 with
//! Retry-After (RFC 3261 §21.5.4) or dropped, and counted.
//!
//! The buckets are bounded (`max_rate_sources`): a bucket idle long enough to have
//! refilled is the same as none and is swept; once the map is full of busy addresses,
//! further addresses share one overflow bucket, as if they were one address.
//!
//! The settings change live ([`Pike::set`], on SIGHUP): the next request is counted
//! under them, and the buckets (with their tokens, capped by the new burst) are kept.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arc_swap::ArcSwap;
use dashmap::DashMap;

use crate::config::{LimitsConfig, RateLimitAction};

/// What to do with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Over the limit: answer 503 with Retry-After (requests other than ACK).
    Reject,
    /// Over the limit: drop silently.
    Drop,
}

/// One address's tokens, as of `at_ms` (milliseconds since [`Pike::base`]).
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f32,
    at_ms: u64,
}

/// What `[limits]` asks of the limiter.
struct Settings {
    /// Tokens per millisecond; 0: no limit.
    rate: f32,
    burst: f32,
    action: RateLimitAction,
    retry_after: u32,
    exempt: Vec<(IpAddr, u8)>,
    max_sources: usize,
}

impl Settings {
    fn new(c: &LimitsConfig) -> Settings {
        let exempt = c
            .rate_limit_exempt
            .iter()
            .filter_map(|s| {
                let net = parse_cidr(s);
                if net.is_none() {
                    tracing::warn!(entry = %s, "[limits] rate_limit_exempt: not an address or prefix, ignored");
                }
                net
            })
            .collect();
        Settings {
            rate: c.requests_per_ip_per_sec as f32 / 1000.0,
            burst: c.request_burst.max(1) as f32,
            action: c.rate_limit_action,
            retry_after: c.rate_limit_retry_after_secs.max(1),
            exempt,
            max_sources: c.max_rate_sources.max(1),
        }
    }

    /// How long an empty bucket takes to fill (after that it is the same as none).
    fn refill_ms(&self) -> u64 {
        (self.burst / self.rate).ceil() as u64
    }
}

/// The rate limiter.
pub struct Pike {
    settings: ArcSwap<Settings>,
    buckets: DashMap<IpAddr, Bucket, foldhash::fast::RandomState>,
    overflow: Mutex<Bucket>,
    base: Instant,
    /// When idle buckets were last swept (milliseconds since `base`).
    last_sweep: AtomicU64,
    limited: AtomicU64,
}

impl Pike {
    /// The limiter `[limits]` asks for (a rate of 0: every message passes).
    pub fn new(c: &LimitsConfig) -> Pike {
        let settings = Settings::new(c);
        Pike {
            buckets: DashMap::with_hasher(foldhash::fast::RandomState::default()),
            overflow: Mutex::new(Bucket {
                tokens: settings.burst,
                at_ms: 0,
            }),
            settings: ArcSwap::from_pointee(settings),
            base: Instant::now(),
            last_sweep: AtomicU64::new(0),
            limited: AtomicU64::new(0),
        }
    }

    /// Counts the messages that follow under `c` (SIGHUP). The buckets are kept.
    pub fn set(&self, c: &LimitsConfig) {
        self.settings.store(Arc::new(Settings::new(c)));
    }

    /// Whether a limit is set (a rate above 0).
    pub fn is_on(&self) -> bool {
        self.settings.load().rate > 0.0
    }

    /// Counts one message from `ip` and says what to do with it.
    pub fn check(&self, ip: IpAddr) -> Verdict {
        let s = self.settings.load();
        if s.rate <= 0.0 {
            return Verdict::Pass;
        }
        let ip = ip.to_canonical();
        if s.exempt.iter().any(|&(net, len)| in_prefix(ip, net, len)) {
            return Verdict::Pass;
        }
        let now = self.base.elapsed().as_millis() as u64;
        let ok = self.take(&s, ip, now);
        if ok {
            return Verdict::Pass;
        }
        self.limited.fetch_add(1, Ordering::Relaxed);
        match s.action {
            RateLimitAction::Reject => Verdict::Reject,
            RateLimitAction::Drop => Verdict::Drop,
        }
    }

    /// Messages over the limit so far (answered 503 or dropped).
    pub fn limited(&self) -> u64 {
        self.limited.load(Ordering::Relaxed)
    }

    /// Addresses tracked now.
    pub fn tracked(&self) -> usize {
        self.buckets.len()
    }

    /// The Retry-After of a 503, in seconds.
    pub fn retry_after(&self) -> u32 {
        self.settings.load().retry_after
    }

    fn take(&self, s: &Settings, ip: IpAddr, now: u64) -> bool {
        if let Some(mut b) = self.buckets.get_mut(&ip) {
            return spend(s, &mut b, now);
        }
        let full = self.buckets.len() >= s.max_sources;
        if full || now.saturating_sub(self.last_sweep.load(Ordering::Relaxed)) >= s.refill_ms() {
            self.sweep(s, now);
        }
        if self.buckets.len() >= s.max_sources {
            let mut b = match self.overflow.lock() {
                Ok(b) => b,
                Err(poisoned) => poisoned.into_inner(),
            };
            return spend(s, &mut b, now);
        }
        let mut b = self.buckets.entry(ip).or_insert(Bucket {
            tokens: s.burst,
            at_ms: now,
        });
        spend(s, &mut b, now)
    }

    /// Removes the buckets that have refilled; at most once per refill time, so a full
    /// map under a flood is not rescanned for every packet.
    fn sweep(&self, s: &Settings, now: u64) {
        let last = self.last_sweep.load(Ordering::Relaxed);
        if now.saturating_sub(last) < s.refill_ms().min(1000)
            || self
                .last_sweep
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let refill = s.refill_ms();
        self.buckets
            .retain(|_, b| now.saturating_sub(b.at_ms) < refill);
    }
}

/// Refills `b` for the time since it was last used and takes a token if it has one.
fn spend(s: &Settings, b: &mut Bucket, now: u64) -> bool {
    let elapsed = now.saturating_sub(b.at_ms) as f32;
    b.tokens = (b.tokens + elapsed * s.rate).min(s.burst);
    b.at_ms = now;
    if b.tokens >= 1.0 {
        b.tokens -= 1.0;
        true
    } else {
        false
    }
}

/// `"10.0.0.0/8"`, `"::1"`, `"192.0.2.7/32"`: an address and its prefix length.
fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, len) = match s.trim().split_once('/') {
        Some((a, l)) => (a, Some(l.parse::<u8>().ok()?)),
        None => (s.trim(), None),
    };
    let ip: IpAddr = addr.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = len.unwrap_or(max);
    (len <= max).then_some((ip.to_canonical(), len))
}

fn in_prefix(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(rate: u32, burst: u32) -> LimitsConfig {
        LimitsConfig {
            requests_per_ip_per_sec: rate,
            request_burst: burst,
            ..LimitsConfig::default()
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_burst_passes_then_the_address_is_limited() {
        let p = Pike::new(&limits(1, 5));
        let passed = (0..20)
            .filter(|_| p.check(ip("192.0.2.1")) == Verdict::Pass)
            .count();
        assert_eq!(passed, 5);
        assert_eq!(p.limited(), 15);
        // Another address has its own bucket.
        assert_eq!(p.check(ip("192.0.2.2")), Verdict::Pass);
    }

    #[test]
    fn drop_action_and_exemptions() {
        let c = LimitsConfig {
            rate_limit_action: RateLimitAction::Drop,
            rate_limit_exempt: vec!["10.0.0.0/8".into(), "::1".into(), "junk".into()],
            ..limits(1, 1)
        };
        let p = Pike::new(&c);
        assert_eq!(p.check(ip("192.0.2.1")), Verdict::Pass);
        assert_eq!(p.check(ip("192.0.2.1")), Verdict::Drop);
        for _ in 0..10 {
            assert_eq!(p.check(ip("10.9.8.7")), Verdict::Pass);
            assert_eq!(p.check(ip("::1")), Verdict::Pass);
            assert_eq!(p.check(ip("::ffff:10.1.1.1")), Verdict::Pass);
        }
        assert_eq!(p.check(ip("11.0.0.1")), Verdict::Pass);
        assert_eq!(p.check(ip("11.0.0.1")), Verdict::Drop);
    }

    #[test]
    fn zero_rate_is_no_limit_and_settings_change_live() {
        let p = Pike::new(&limits(0, 1));
        assert!(!p.is_on());
        for _ in 0..100 {
            assert_eq!(p.check(ip("192.0.2.1")), Verdict::Pass);
        }
        p.set(&LimitsConfig {
            rate_limit_retry_after_secs: 9,
            ..limits(1, 2)
        });
        assert!(p.is_on());
        assert_eq!(p.retry_after(), 9);
        let passed = (0..10)
            .filter(|_| p.check(ip("192.0.2.1")) == Verdict::Pass)
            .count();
        assert_eq!(passed, 2);
        // Exempted by a later change: passes at once, its bucket kept.
        p.set(&LimitsConfig {
            rate_limit_exempt: vec!["192.0.2.0/24".into()],
            ..limits(1, 2)
        });
        assert_eq!(p.check(ip("192.0.2.1")), Verdict::Pass);
        assert_eq!(p.tracked(), 1);
    }

    #[test]
    fn the_map_is_bounded_and_overflow_shares_one_bucket() {
        let c = LimitsConfig {
            max_rate_sources: 100,
            ..limits(1, 3)
        };
        let p = Pike::new(&c);
        for i in 0..10_000u32 {
            p.check(IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i)));
        }
        assert_eq!(p.tracked(), 100);
        // 100 tracked addresses passed once each; the 9,900 others shared 3 tokens.
        assert_eq!(p.limited(), 9_900 - 3);
    }

    #[test]
    fn cidr_parsing() {
        assert_eq!(parse_cidr("10.0.0.0/8"), Some((ip("10.0.0.0"), 8)));
        assert_eq!(parse_cidr("::1"), Some((ip("::1"), 128)));
        assert_eq!(parse_cidr("10.0.0.0/33"), None);
        assert_eq!(parse_cidr("example.com"), None);
        assert!(in_prefix(ip("127.1.2.3"), ip("127.0.0.0"), 8));
        assert!(!in_prefix(ip("128.1.2.3"), ip("127.0.0.0"), 8));
        assert!(in_prefix(ip("1.2.3.4"), ip("0.0.0.0"), 0));
    }
}
