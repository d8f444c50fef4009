//! What the layers above keep per open flow (the AORs registered over a WebSocket, the
//! subscriptions whose NOTIFYs go over it), so that when the flow closes they find what
//! to end without scanning everything they hold.
//!
//! Bounded: an entry lives only while its flow is open (taken when it closes) and holds
//! at most [`FlowIndex::MAX_PER_FLOW`] distinct items; past that it only remembers that
//! it overflowed, and the owner falls back to a scan.

use dashmap::DashMap;

/// Items noted per flow id.
pub struct FlowIndex<T> {
    map: DashMap<u64, Noted<T>>,
}

/// What was noted on one flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Noted<T> {
    pub items: Vec<T>,
    /// More distinct items than the cap were noted: `items` is incomplete.
    pub overflowed: bool,
}

impl<T> Default for Noted<T> {
    fn default() -> Self {
        Noted {
            items: Vec::new(),
            overflowed: false,
        }
    }
}

impl<T> Default for FlowIndex<T> {
    fn default() -> Self {
        FlowIndex {
            map: DashMap::new(),
        }
    }
}

impl<T: PartialEq> FlowIndex<T> {
    /// Distinct items remembered per flow.
    pub const MAX_PER_FLOW: usize = 64;

    /// Notes `item` on `flow` (once).
    pub fn note(&self, flow: u64, item: T) {
        let mut e = self.map.entry(flow).or_default();
        if e.items.contains(&item) {
            return;
        }
        if e.items.len() >= Self::MAX_PER_FLOW {
            e.overflowed = true;
        } else {
            e.items.push(item);
        }
    }

    /// Everything noted on `flow`, forgotten here (the flow closed).
    pub fn take(&self, flow: u64) -> Option<Noted<T>> {
        self.map.remove(&flow).map(|(_, n)| n)
    }

    /// Flows with something noted.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_once_per_flow_and_forgets_on_take() {
        let idx = FlowIndex::default();
        idx.note(1, "a");
        idx.note(1, "a");
        idx.note(1, "b");
        idx.note(2, "a");
        assert_eq!(idx.take(1).map(|n| n.items), Some(vec!["a", "b"]));
        assert_eq!(idx.take(1), None);
        assert_eq!(idx.len(), 1);
    }

    #[test]
    fn overflow_is_remembered_not_stored() {
        let idx = FlowIndex::default();
        for i in 0..FlowIndex::<usize>::MAX_PER_FLOW + 5 {
            idx.note(7, i);
        }
        let n = idx.take(7).expect("noted");
        assert_eq!(n.items.len(), FlowIndex::<usize>::MAX_PER_FLOW);
        assert!(n.overflowed);
    }
}
