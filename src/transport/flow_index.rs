//! What the layers above keep per open flow (the AORs registered over a WebSocket, the
//! subscriptions whose NOTIFYs go over it), so that when the flow closes they find what
//! to end without scanning everything they hold.
//!
//! Bounded: an entry lives only while its flow is open (taken when it closes) and holds
//! at most [`FlowIndex::MAX_PER_FLOW`] distinct items; past that it only remembers that
//! it overflowed, and the owner falls back to a scan. The last [`FlowIndex::RECENT`]
//! closed flows are remembered too, so that work finishing after its flow closed (a
//! REGISTER whose token took a store lookup) learns it at once instead of leaving an
//! entry nobody will take.

use std::collections::VecDeque;
use std::sync::Mutex;

use dashmap::DashMap;

/// Items noted per flow id.
pub struct FlowIndex<T> {
    map: DashMap<u64, Noted<T>>,
    /// Recently closed flows, oldest first. Noting and taking hold this lock, so a note
    /// either lands before the take or sees the flow closed.
    closed: Mutex<VecDeque<u64>>,
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
            closed: Mutex::new(VecDeque::new()),
        }
    }
}

impl<T: PartialEq> FlowIndex<T> {
    /// Distinct items remembered per flow.
    pub const MAX_PER_FLOW: usize = 64;
    /// Closed flows remembered.
    pub const RECENT: usize = 1024;

    fn closed(&self) -> std::sync::MutexGuard<'_, VecDeque<u64>> {
        // A panic elsewhere while holding the lock leaves the list valid.
        self.closed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes `item` on `flow` (once); `false` when the flow has already closed (the
    /// owner undoes what it kept on it).
    pub fn note(&self, flow: u64, item: T) -> bool {
        let closed = self.closed();
        if closed.contains(&flow) {
            return false;
        }
        let mut e = self.map.entry(flow).or_default();
        drop(closed);
        if e.items.contains(&item) {
            return true;
        }
        if e.items.len() >= Self::MAX_PER_FLOW {
            e.overflowed = true;
        } else {
            e.items.push(item);
        }
        true
    }

    /// Everything noted on `flow`, forgotten here (the flow closed).
    pub fn take(&self, flow: u64) -> Option<Noted<T>> {
        let mut closed = self.closed();
        if closed.len() >= Self::RECENT {
            closed.pop_front();
        }
        closed.push_back(flow);
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
    fn a_note_after_the_flow_closed_is_refused() {
        let idx = FlowIndex::default();
        assert!(idx.note(3, "a"));
        idx.take(3);
        assert!(!idx.note(3, "b"), "flow 3 closed");
        assert!(idx.is_empty());
        // Only the most recent closings are remembered.
        for f in 100..100 + FlowIndex::<&str>::RECENT as u64 {
            idx.take(f);
        }
        assert!(idx.note(3, "c"));
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
