//! The write-behind queue: binding changes waiting for the store, one slot per binding.
//!
//! A later change of a binding replaces the earlier one in its slot (each change carries
//! the binding's whole state, or its removal), so a binding refreshed a thousand times
//! during a store outage still occupies one slot. Slots leave the queue only once the
//! store has committed them: the writer takes a copy of the oldest slots, and on success
//! removes those not changed meanwhile; a slot changed while its copy was being written
//! goes to the back with its newer state. A failed write leaves everything in place.
//!
//! The bound counts slots. A change a client asked for ([`Queue::offer`]) is refused when
//! it would need a slot beyond the bound; housekeeping removals (expiry, a closed
//! connection) are always taken ([`Queue::push`]): each stands for a binding that just
//! left the table, so table and queue together never outgrow the table's own peak.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::aor::Aor;
use super::persist::Op;

/// A binding's identity in the store.
type Key = (Aor, u64);

fn key_of(op: &Op) -> Key {
    match op {
        Op::Upsert(aor, b) => (aor.clone(), b.id),
        Op::Delete(aor, id) => (aor.clone(), *id),
    }
}

struct Slot {
    op: Op,
    /// Bumped on every replacement: a written copy whose generation no longer matches
    /// was superseded while it was in flight.
    generation: u64,
    /// When the oldest change not yet in the store arrived.
    since: Instant,
    /// When the slot was first replaced while in flight (its age once requeued).
    replaced_in_flight: Option<Instant>,
}

#[derive(Default)]
struct Inner {
    slots: VecDeque<Slot>,
    /// Each key's position; `slots[pos - head]`.
    index: HashMap<Key, u64, foldhash::fast::RandomState>,
    head: u64,
    /// The generations of the front slots the writer copied (its batch in flight).
    in_flight: Vec<u64>,
    generation: u64,
    /// The writer has stopped: nothing more is taken.
    closed: bool,
}

impl Inner {
    fn insert(&mut self, op: Op, now: Instant) {
        self.generation += 1;
        let generation = self.generation;
        let key = key_of(&op);
        if let Some(&pos) = self.index.get(&key) {
            let i = (pos - self.head) as usize;
            let in_flight = i < self.in_flight.len();
            let slot = &mut self.slots[i];
            slot.op = op;
            slot.generation = generation;
            if in_flight && slot.replaced_in_flight.is_none() {
                slot.replaced_in_flight = Some(now);
            }
            return;
        }
        self.index.insert(key, self.head + self.slots.len() as u64);
        self.slots.push_back(Slot {
            op,
            generation,
            since: now,
            replaced_in_flight: None,
        });
    }

    /// How many new slots `ops` would take (a REGISTER's few changes: the quadratic
    /// check for repeats among them costs less than allocating a set).
    fn new_slots(&self, ops: &[Op]) -> usize {
        ops.iter()
            .enumerate()
            .filter(|(i, op)| {
                let k = key_of(op);
                !self.index.contains_key(&k) && !ops[..*i].iter().any(|o| key_of(o) == k)
            })
            .count()
    }
}

/// Changes waiting for the store, bounded and coalesced per binding.
pub struct Queue {
    inner: Mutex<Inner>,
    bound: usize,
}

/// The queue had no room for a client's change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

impl Queue {
    /// A queue of at most `bound` slots (at least 1) for client changes.
    pub fn new(bound: usize) -> Queue {
        Queue {
            inner: Mutex::new(Inner::default()),
            bound: bound.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Nothing here panics while holding the lock; if something ever did, the slots
        // are still consistent (each step leaves them whole), so keep using them.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a client's changes, all or none: [`Full`] when they need more slots than
    /// the bound leaves. Returns the queue's length before and after.
    pub fn offer(&self, ops: Vec<Op>) -> Result<(usize, usize), Full> {
        let mut q = self.lock();
        let before = q.slots.len();
        if q.closed || before + q.new_slots(&ops) > self.bound {
            return Err(Full);
        }
        let now = Instant::now();
        for op in ops {
            q.insert(op, now);
        }
        Ok((before, q.slots.len()))
    }

    /// Queues changes that may not be refused (they may go past the bound). Returns the
    /// queue's length before and after, or `None` once the queue is closed.
    pub fn push(&self, ops: impl IntoIterator<Item = Op>) -> Option<(usize, usize)> {
        let mut q = self.lock();
        if q.closed {
            return None;
        }
        let before = q.slots.len();
        let now = Instant::now();
        for op in ops {
            q.insert(op, now);
        }
        Some((before, q.slots.len()))
    }

    /// Copies the oldest `max` slots for writing; they stay queued until
    /// [`Queue::committed`] (or are offered again after [`Queue::failed`]).
    pub fn take_batch(&self, max: usize) -> Vec<Op> {
        let mut q = self.lock();
        let n = q.slots.len().min(max.max(1));
        let gens: Vec<u64> = q.slots.iter().take(n).map(|s| s.generation).collect();
        q.in_flight = gens;
        q.slots.iter().take(n).map(|s| s.op.clone()).collect()
    }

    /// The batch from [`Queue::take_batch`] is in the store: its slots leave, except
    /// those replaced meanwhile, which go to the back with their newer state.
    pub fn committed(&self) {
        let n = self.lock().in_flight.len();
        self.settle(&vec![true; n]);
    }

    /// Part of the batch from [`Queue::take_batch`] is settled (`done[i]` for its `i`th
    /// change: stored, or given up on): those slots leave as in [`Queue::committed`];
    /// the others stay at the front, in order, for the next attempt.
    pub fn settle(&self, done: &[bool]) {
        let mut q = self.lock();
        let gens = std::mem::take(&mut q.in_flight);
        let now = Instant::now();
        let mut kept = Vec::new();
        for (i, g) in gens.into_iter().enumerate() {
            let Some(mut slot) = q.slots.pop_front() else {
                break;
            };
            q.head += 1;
            if !done.get(i).copied().unwrap_or(false) {
                slot.replaced_in_flight = None;
                kept.push(slot);
                continue;
            }
            let key = key_of(&slot.op);
            if slot.generation == g {
                q.index.remove(&key);
            } else {
                let pos = q.head + q.slots.len() as u64;
                q.index.insert(key, pos);
                q.slots.push_back(Slot {
                    since: slot.replaced_in_flight.unwrap_or(now),
                    replaced_in_flight: None,
                    ..slot
                });
            }
        }
        for slot in kept.into_iter().rev() {
            q.head -= 1;
            let pos = q.head;
            q.index.insert(key_of(&slot.op), pos);
            q.slots.push_front(slot);
        }
    }

    /// The batch from [`Queue::take_batch`] was not written: everything stays.
    pub fn failed(&self) {
        let mut q = self.lock();
        q.in_flight.clear();
        for s in q.slots.iter_mut() {
            s.replaced_in_flight = None;
        }
    }

    /// Slots queued (bindings whose latest state is not yet in the store).
    pub fn len(&self) -> usize {
        self.lock().slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The slot bound for client changes.
    pub fn bound(&self) -> usize {
        self.bound
    }

    /// How long the oldest change not yet in the store has waited (zero when empty).
    pub fn oldest_age(&self) -> Duration {
        let q = self.lock();
        q.slots
            .iter()
            .map(|s| s.since)
            .min()
            .map_or(Duration::ZERO, |t| t.elapsed())
    }

    /// Closes the queue if it is empty (the writer's last step); `false` while changes
    /// remain to be written.
    pub fn close_if_empty(&self) -> bool {
        let mut q = self.lock();
        q.closed = q.slots.is_empty();
        q.closed
    }

    /// Empties and closes the queue, returning how many slots were thrown away
    /// (shutdown with the store unreachable).
    pub fn discard(&self) -> usize {
        let mut q = self.lock();
        let n = q.slots.len();
        *q = Inner {
            closed: true,
            ..Inner::default()
        };
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registrar::binding::{Binding, Source};
    use crate::transport::Transport;

    fn aor(n: &str) -> Aor {
        Aor::parse(&format!("sip:{n}@example.com")).unwrap()
    }

    fn up(a: &str, id: u64, cseq: u32) -> Op {
        Op::Upsert(
            aor(a),
            Binding {
                id,
                uri: format!("sip:{a}@192.0.2.1").into(),
                instance: None,
                reg_id: None,
                q: None,
                expires_at: 100,
                call_id: "c".into(),
                cseq,
                path: Vec::new(),
                source: Source {
                    transport: Transport::Udp,
                    addr: "127.0.0.1:5060".parse().unwrap(),
                    connection: None,
                },
                user_agent: None,
                registered_at: 0,
            },
        )
    }

    fn cseqs(ops: &[Op]) -> Vec<(u64, Option<u32>)> {
        ops.iter()
            .map(|op| match op {
                Op::Upsert(_, b) => (b.id, Some(b.cseq)),
                Op::Delete(_, id) => (*id, None),
            })
            .collect()
    }

    #[test]
    fn refreshes_of_one_binding_share_a_slot_and_keep_the_latest_state() {
        let q = Queue::new(2);
        for cseq in 1..=1000 {
            q.offer(vec![up("a", 1, cseq)]).unwrap();
        }
        assert_eq!(q.len(), 1);
        q.offer(vec![up("b", 2, 1)]).unwrap();
        // A removal replaces the binding's pending upsert in place.
        q.push([Op::Delete(aor("a"), 1)]);
        assert_eq!(q.len(), 2);
        assert_eq!(cseqs(&q.take_batch(10)), [(1, None), (2, Some(1))]);
    }

    #[test]
    fn a_full_queue_refuses_new_bindings_whole_but_takes_their_refreshes() {
        let q = Queue::new(3);
        q.offer(vec![up("a", 1, 1), up("a", 2, 1)]).unwrap();
        // Two new slots where one is left: nothing of the request is taken.
        assert_eq!(q.offer(vec![up("b", 3, 1), up("b", 4, 1)]), Err(Full));
        assert_eq!(q.len(), 2);
        q.offer(vec![up("b", 3, 1)]).unwrap();
        assert_eq!(q.offer(vec![up("c", 5, 1)]), Err(Full));
        // Changes of bindings already queued need no room.
        assert_eq!(q.offer(vec![up("a", 1, 2), up("b", 3, 2)]), Ok((3, 3)));
        // Housekeeping removals are never refused.
        assert_eq!(q.push([Op::Delete(aor("d"), 9)]), Some((3, 4)));
        assert_eq!(
            cseqs(&q.take_batch(10)),
            [(1, Some(2)), (2, Some(1)), (3, Some(2)), (9, None)]
        );
    }

    #[test]
    fn a_failed_write_keeps_everything_and_a_commit_frees_the_slots_in_order() {
        let q = Queue::new(10);
        q.offer((1..=5).map(|i| up("a", i, 1)).collect()).unwrap();
        assert_eq!(cseqs(&q.take_batch(3)).len(), 3);
        q.failed();
        assert_eq!(q.len(), 5);
        // Retried: the same oldest slots come out first.
        assert_eq!(
            cseqs(&q.take_batch(3)),
            [(1, Some(1)), (2, Some(1)), (3, Some(1))]
        );
        q.committed();
        assert_eq!(q.len(), 2);
        assert_eq!(cseqs(&q.take_batch(10)), [(4, Some(1)), (5, Some(1))]);
        q.committed();
        assert!(q.is_empty());
        assert_eq!(q.oldest_age(), Duration::ZERO);
    }

    #[test]
    fn a_binding_changed_while_in_flight_is_written_again() {
        let q = Queue::new(10);
        q.offer(vec![up("a", 1, 1), up("a", 2, 1)]).unwrap();
        let batch = q.take_batch(10);
        assert_eq!(batch.len(), 2);
        // Binding 1 is refreshed while the batch is being written.
        q.offer(vec![up("a", 1, 2)]).unwrap();
        q.offer(vec![up("a", 3, 1)]).unwrap();
        q.committed();
        // The newer state of 1 is still owed to the store, after 3.
        assert_eq!(cseqs(&q.take_batch(10)), [(3, Some(1)), (1, Some(2))]);
        q.committed();
        assert!(q.is_empty());
    }

    #[test]
    fn a_partly_settled_batch_keeps_the_rest_in_front() {
        let q = Queue::new(10);
        q.offer((1..=4).map(|i| up("a", i, 1)).collect()).unwrap();
        assert_eq!(q.take_batch(3).len(), 3);
        q.offer(vec![up("a", 5, 1)]).unwrap();
        // 1 and 3 settled, 2 not: 2 stays first, ahead of what was behind the batch.
        q.settle(&[true, false, true]);
        assert_eq!(
            cseqs(&q.take_batch(10)),
            [(2, Some(1)), (4, Some(1)), (5, Some(1))]
        );
        // Its index entry still finds it: a refresh replaces it in place.
        q.failed();
        q.offer(vec![up("a", 2, 7)]).unwrap();
        assert_eq!(q.len(), 3);
        assert_eq!(cseqs(&q.take_batch(1)), [(2, Some(7))]);
        q.committed();
        assert_eq!(cseqs(&q.take_batch(10)), [(4, Some(1)), (5, Some(1))]);
    }

    #[test]
    fn oldest_age_is_that_of_the_oldest_unsaved_change() {
        let q = Queue::new(10);
        q.offer(vec![up("a", 1, 1)]).unwrap();
        std::thread::sleep(Duration::from_millis(30));
        // A refresh does not make the slot younger: its first change is still unsaved.
        q.offer(vec![up("a", 1, 2)]).unwrap();
        assert!(q.oldest_age() >= Duration::from_millis(30));
        assert!(!q.close_if_empty(), "a queue with changes stays open");
        assert_eq!(q.discard(), 1);
        assert!(q.is_empty());
        assert_eq!(q.push([Op::Delete(aor("a"), 1)]), None, "closed");
        assert_eq!(q.offer(vec![up("a", 2, 1)]), Err(Full));
    }
}
