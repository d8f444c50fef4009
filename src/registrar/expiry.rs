//! Binding expiry: a deadline queue (binary heap) and a task that sleeps until the next
//! deadline, so bindings disappear on time without scanning the table.
//!
//! The registrar keeps one entry per AOR (its earliest binding deadline, recorded in the
//! table too, so a refresh pushes nothing and a superseded entry is recognised and dropped
//! when it comes up). Presence pushes a deadline per refresh; an entry whose item was
//! refreshed meanwhile is skipped when it comes up.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;

use super::aor::Aor;
use crate::clock::unix_now;

/// Pending deadlines: (Unix second, item). The registrar queues AORs; presence queues
/// (id, AOR) pairs.
pub struct ExpiryQueue<T = (u64, Aor)> {
    heap: Mutex<BinaryHeap<Reverse<(u64, T)>>>,
    wake: Notify,
}

impl<T: Ord> Default for ExpiryQueue<T> {
    fn default() -> Self {
        ExpiryQueue {
            heap: Mutex::new(BinaryHeap::new()),
            wake: Notify::new(),
        }
    }
}

impl ExpiryQueue<(u64, Aor)> {
    /// Schedules item `id` of `aor` to be checked at `at` (Unix seconds).
    pub fn schedule(&self, at: u64, id: u64, aor: Aor) {
        self.push(at, (id, aor));
    }

    /// Takes every (id, AOR) due at `now`.
    pub fn due(&self, now: u64) -> Vec<(u64, Aor)> {
        self.take_due(now)
            .into_iter()
            .map(|(_, item)| item)
            .collect()
    }
}

impl<T: Ord> ExpiryQueue<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, BinaryHeap<Reverse<(u64, T)>>> {
        match self.heap.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Schedules `item` to be checked at `at` (Unix seconds).
    pub fn push(&self, at: u64, item: T) {
        let mut heap = self.lock();
        let earlier = heap.peek().is_none_or(|Reverse((t, _))| at < *t);
        heap.push(Reverse((at, item)));
        drop(heap);
        if earlier {
            self.wake.notify_one();
        }
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Takes every entry due at `now`, with its deadline.
    pub fn take_due(&self, now: u64) -> Vec<(u64, T)> {
        let mut heap = self.lock();
        let mut out = Vec::new();
        while heap.peek().is_some_and(|Reverse((t, _))| *t <= now) {
            if let Some(Reverse(entry)) = heap.pop() {
                out.push(entry);
            }
        }
        out
    }

    /// Waits until the earliest deadline passes (or something earlier is scheduled).
    pub async fn wait(&self) {
        let next = self.lock().peek().map(|Reverse((t, _))| *t);
        let sleep = match next {
            Some(t) => Duration::from_secs(t.saturating_sub(unix_now())),
            // Nothing pending: wake up on the next schedule (or re-check each minute).
            None => Duration::from_secs(60),
        };
        if sleep.is_zero() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = self.wake.notified() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_in_deadline_order() {
        let q = ExpiryQueue::default();
        let aor = Aor::parse("sip:a@b").unwrap();
        q.schedule(30, 3, aor.clone());
        q.schedule(10, 1, aor.clone());
        q.schedule(20, 2, aor.clone());
        assert!(q.due(9).is_empty());
        let ids: Vec<u64> = q.due(20).into_iter().map(|(id, _)| id).collect();
        assert_eq!(ids, [1, 2]);
        assert_eq!(q.len(), 1);
    }

    #[tokio::test]
    async fn wait_returns_when_an_earlier_deadline_arrives() {
        let q = std::sync::Arc::new(ExpiryQueue::default());
        let aor = Aor::parse("sip:a@b").unwrap();
        q.schedule(unix_now() + 3600, 1, aor.clone());
        let q2 = q.clone();
        let waiter = tokio::spawn(async move { q2.wait().await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        q.schedule(unix_now(), 2, aor);
        tokio::time::timeout(Duration::from_secs(2), waiter)
            .await
            .unwrap()
            .unwrap();
    }
}
