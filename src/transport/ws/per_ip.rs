//! Open connections per IP address, capped; a slot is given back when its guard drops.

use std::net::IpAddr;
use std::sync::Arc;

use dashmap::DashMap;

/// Counts per address; only addresses with open connections have an entry, so the map
/// is bounded by the listener's connection cap.
pub struct PerIp {
    max: usize,
    open: DashMap<IpAddr, usize>,
}

impl PerIp {
    pub fn new(max: usize) -> PerIp {
        PerIp {
            max,
            open: DashMap::new(),
        }
    }

    /// A slot for one more connection from `ip`, or `None` when it holds `max` already.
    pub fn enter(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        if self.max == 0 {
            return None;
        }
        let mut n = self.open.entry(ip).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(Slot {
            ip,
            owner: Arc::clone(self),
        })
    }
}

/// One open connection's place in the count.
pub struct Slot {
    ip: IpAddr,
    owner: Arc<PerIp>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(mut n) = self.owner.open.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
        }
        self.owner.open.remove_if(&self.ip, |_, n| *n == 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_capped_per_address_and_given_back() {
        let p = Arc::new(PerIp::new(2));
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let b: IpAddr = "192.0.2.2".parse().expect("ip");
        let s1 = p.enter(a).expect("first");
        let _s2 = p.enter(a).expect("second");
        assert!(p.enter(a).is_none(), "third from the same address");
        assert!(p.enter(b).is_some(), "another address is not affected");
        drop(s1);
        assert!(p.enter(a).is_some(), "a slot came back");
    }

    #[test]
    fn closed_addresses_leave_no_entry() {
        let p = Arc::new(PerIp::new(1));
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        drop(p.enter(a));
        assert!(p.open.is_empty());
    }
}
