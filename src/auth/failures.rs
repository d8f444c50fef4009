//! Failed authentications per source address, for throttling repeated failures: a map
//! with a hard bound on its entries whose expired windows are swept as it is used.
//!
//! Over UDP a source address costs an attacker nothing to forge, so the map must not
//! grow with them: at most `max_sources` addresses are tracked. Once that many have
//! failed within one window, failures of further addresses are only counted (in
//! [`Failures::overflowed`]), not tracked: throttling every untracked address together
//! would let the flood lock out everybody else, and throttling a forged address one at a
//! time protects nothing.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use dashmap::DashMap;

/// Failure counts by source address, each with the start of its window (Unix seconds).
pub struct Failures {
    map: DashMap<IpAddr, (u32, u64), foldhash::fast::RandomState>,
    max_sources: AtomicUsize,
    /// When expired windows were last swept (Unix seconds).
    last_sweep: AtomicU64,
    /// Failures not tracked because the map was full.
    overflow: AtomicU64,
}

impl Failures {
    pub fn new(max_sources: usize) -> Failures {
        Failures {
            map: DashMap::with_hasher(foldhash::fast::RandomState::default()),
            max_sources: AtomicUsize::new(max_sources.max(1)),
            last_sweep: AtomicU64::new(0),
            overflow: AtomicU64::new(0),
        }
    }

    /// Changes the bound (reload); a smaller bound takes effect as windows expire.
    pub fn set_max_sources(&self, n: usize) {
        self.max_sources.store(n.max(1), Ordering::Relaxed);
    }

    /// Addresses tracked now.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Failures not tracked because the map was full.
    pub fn overflowed(&self) -> u64 {
        self.overflow.load(Ordering::Relaxed)
    }

    /// `ip`'s failures in its current window and when that window started; an expired
    /// window is removed.
    pub fn current(&self, ip: IpAddr, now: u64, window: u64) -> Option<(u32, u64)> {
        let (count, start) = *self.map.get(&ip)?;
        if now.saturating_sub(start) >= window {
            self.map
                .remove_if(&ip, |_, v| now.saturating_sub(v.1) >= window);
            return None;
        }
        Some((count, start))
    }

    /// Counts one failure of `ip`.
    pub fn record(&self, ip: IpAddr, now: u64, window: u64) {
        if let Some(mut e) = self.map.get_mut(&ip) {
            if now.saturating_sub(e.1) >= window {
                *e = (0, now);
            }
            e.0 = e.0.saturating_add(1);
            return;
        }
        let full = self.map.len() >= self.max_sources.load(Ordering::Relaxed);
        if full || now.saturating_sub(self.last_sweep.load(Ordering::Relaxed)) >= window {
            self.sweep(now, window);
        }
        // Concurrent inserters may each pass this check: the bound can be exceeded by at
        // most the number of threads inserting at once.
        if self.map.len() >= self.max_sources.load(Ordering::Relaxed) {
            self.overflow.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mut e = self.map.entry(ip).or_insert((0, now));
        e.0 = e.0.saturating_add(1);
    }

    /// Removes expired windows; at most once a second, so a full map under a flood is
    /// not rescanned for every packet.
    fn sweep(&self, now: u64, window: u64) {
        let last = self.last_sweep.load(Ordering::Relaxed);
        if now <= last
            || self
                .last_sweep
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        self.map.retain(|_, v| now.saturating_sub(v.1) < window);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(i: u32) -> IpAddr {
        IpAddr::from(std::net::Ipv4Addr::from(0x7f00_0000u32 + i))
    }

    #[test]
    fn counts_per_address_within_the_window() {
        let f = Failures::new(10);
        f.record(ip(1), 100, 60);
        f.record(ip(1), 101, 60);
        f.record(ip(2), 101, 60);
        assert_eq!(f.current(ip(1), 102, 60), Some((2, 100)));
        assert_eq!(f.current(ip(2), 102, 60), Some((1, 101)));
        // The window ends: the entry goes.
        assert_eq!(f.current(ip(1), 160, 60), None);
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn never_tracks_more_than_the_bound() {
        let f = Failures::new(100);
        for i in 0..10_000 {
            f.record(ip(i), 100, 60);
        }
        assert_eq!(f.len(), 100);
        assert_eq!(f.overflowed(), 9_900);
        // Tracked addresses still count.
        f.record(ip(5), 101, 60);
        assert_eq!(f.current(ip(5), 101, 60), Some((2, 100)));
    }

    #[test]
    fn expired_windows_make_room_for_new_addresses() {
        let f = Failures::new(100);
        for i in 0..100 {
            f.record(ip(i), 100, 60);
        }
        f.record(ip(1000), 100, 60);
        assert_eq!(f.current(ip(1000), 100, 60), None, "full: not tracked");
        // A window later the old entries are swept on the next insert.
        f.record(ip(1000), 161, 60);
        assert_eq!(f.current(ip(1000), 161, 60), Some((1, 161)));
        assert_eq!(f.len(), 1);
    }
}
