//! Non-INVITE server transactions (RFC 3261 §17.2.2).
//!
//! A request is processed once; a retransmission that arrives while it is being processed
//! is absorbed, and one that arrives after the final response gets that same response
//! again. A completed transaction is remembered for Timer J (64·T1 on UDP, nothing on TCP)
//! and then forgotten. The table is bounded in bytes (`[sip] transaction_memory_bytes`)
//! and in entries (`[sip] max_transactions`): each entry is accounted at its real cost
//! (the kept response's bytes, the key's text, and a fixed overhead for the map slot,
//! the queue item and the allocations' headers), and past either bound the oldest
//! entries go first. So memory follows the budget, not rate × Timer J × response size.
//!
//! Deadlines are pushed in time order (every entry lives the same 64·T1), so expiry is a
//! queue pop rather than a scan of the table.
//!
//! [`client`] holds the other side: sipreg's own requests (NOTIFY) as non-INVITE client
//! transactions.

pub mod client;
pub mod user;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

use crate::sip::Request;

/// What identifies a transaction (RFC 3261 §17.2.3, with the RFC 2543 fallback).
///
/// The key owns its text in one shared allocation: it lives in the table and the expiry
/// queue for Timer J (32 s), and slices of the request (as `ByteString`s are) would keep
/// every received datagram in memory that long. Cloning it is a reference count.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TxKey {
    /// Branch with the magic cookie, plus sent-by and method.
    Branch {
        /// Where the request came from: a branch reused by another client is another
        /// transaction, and nobody can answer someone else's retransmissions.
        source: SocketAddr,
        port: Option<u16>,
        /// The branch's length in `text`, then the sent-by host's.
        lens: (u32, u32),
        /// Branch, sent-by host and method, one after the other.
        text: Arc<str>,
    },
    /// Pre-RFC 3261 clients: Request-URI, tags, Call-ID, CSeq and the top Via together.
    Legacy(Arc<str>),
}

impl TxKey {
    pub fn of(req: &Request, source: SocketAddr) -> TxKey {
        let via = req.top_via();
        if via.is_rfc3261() {
            let branch = via.params.value("branch").unwrap_or_default();
            let method = req.method.as_str();
            let mut text = String::with_capacity(branch.len() + via.host.len() + method.len());
            text.push_str(branch);
            text.push_str(&via.host);
            text.push_str(method);
            // Header fields are far shorter than 4 GiB (the parser's line limit).
            let len = |s: &str| u32::try_from(s.len()).unwrap_or(u32::MAX);
            return TxKey::Branch {
                source,
                port: via.port,
                lens: (len(branch), len(&via.host)),
                text: text.into(),
            };
        }
        TxKey::Legacy(
            format!(
                "{}\u{0}{}\u{0}{}\u{0}{}\u{0}{}\u{0}{}\u{0}{}",
                source,
                req.uri,
                req.to.tag().unwrap_or(""),
                req.from.tag().unwrap_or(""),
                req.call_id,
                req.cseq,
                via
            )
            .into(),
        )
    }
}

/// The table's answer to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// A new transaction: process the request, then call [`Transactions::complete`].
    New,
    /// A retransmission while the first copy is being processed: absorb it.
    InProgress,
    /// A retransmission after the final response: send this again.
    Completed(Bytes),
}

#[derive(Debug)]
struct Slot {
    response: Option<Bytes>,
    deadline: Instant,
    /// What this entry is accounted at in [`Transactions::bytes`].
    size: usize,
}

/// Bytes an entry costs besides its key's text and its response: the map slot, the
/// expiry queue item, the headers of the key's and the response's allocations, and the
/// encoder's slack (a response's buffer is sized from an estimate a little above its
/// length).
const ENTRY_OVERHEAD: usize =
    std::mem::size_of::<(TxKey, Slot)>() + std::mem::size_of::<(Instant, TxKey)>() + 64 + 160;

impl TxKey {
    /// The key's own allocation (its text).
    fn text_len(&self) -> usize {
        match self {
            TxKey::Branch { text, .. } | TxKey::Legacy(text) => text.len(),
        }
    }
}

/// A final response later than this after the request restarts Timer J from the answer.
const SLOW_ANSWER: Duration = Duration::from_secs(1);

/// The server transaction table.
pub struct Transactions {
    table: DashMap<TxKey, Slot, foldhash::fast::RandomState>,
    queue: Mutex<VecDeque<(Instant, TxKey)>>,
    lifetime: Duration,
    /// The entry bound (changes on reload).
    max: AtomicUsize,
    /// The byte budget (changes on reload), and the bytes accounted now.
    budget: AtomicUsize,
    used: AtomicUsize,
}

impl Transactions {
    /// `lifetime` is Timer J for unreliable transports (64·T1); `max` bounds the table's
    /// entries and `budget` its bytes.
    pub fn new(lifetime: Duration, max: usize, budget: usize) -> Transactions {
        // Sized for the bound up front: growing a table of tens of thousands of entries
        // rehashes (and the queue copies) everything while every receiver waits on the
        // lock, which showed as answers held back for 10-100 ms under load. Pages that
        // are never used are never touched, so this costs address space, not memory.
        let max = max.max(1);
        // The budget holds at most this many entries (each costs the overhead at least).
        let capacity = max.min(budget / ENTRY_OVERHEAD + 1);
        Transactions {
            // foldhash with a random seed per table: far cheaper than SipHash on every
            // request, and still keyed, so clients cannot aim their keys at one bucket.
            table: DashMap::with_capacity_and_hasher(
                capacity,
                foldhash::fast::RandomState::default(),
            ),
            queue: Mutex::new(VecDeque::with_capacity(capacity.saturating_mul(2))),
            lifetime,
            max: AtomicUsize::new(max),
            budget: AtomicUsize::new(budget.max(1)),
            used: AtomicUsize::new(0),
        }
    }

    /// New bounds (SIGHUP): entries and bytes. Lowered ones let the oldest go at once.
    pub fn set_bounds(&self, max: usize, budget: usize) {
        self.max.store(max.max(1), Ordering::Relaxed);
        self.budget.store(budget.max(1), Ordering::Relaxed);
        self.expire(Instant::now());
    }

    /// Bytes the kept transactions are accounted at (at most the budget, once the
    /// oldest have been let go).
    pub fn bytes(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Accounts a change of `from` bytes into `to` bytes.
    fn account(&self, from: usize, to: usize) {
        if to >= from {
            self.used.fetch_add(to - from, Ordering::Relaxed);
        } else {
            self.used.fetch_sub(from - to, Ordering::Relaxed);
        }
    }

    /// Forgets `key`'s entry if `pred` says so, unaccounting it.
    fn remove_if(&self, key: &TxKey, pred: impl FnOnce(&Slot) -> bool) {
        if let Some((_, slot)) = self.table.remove_if(key, |_, e| pred(e)) {
            self.account(slot.size, 0);
        }
    }

    fn over(&self) -> bool {
        self.table.len() > self.max.load(Ordering::Relaxed)
            || self.bytes() > self.budget.load(Ordering::Relaxed)
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Deadlines queued for expiry (one per transaction, plus a second for a slow answer).
    pub fn queued(&self) -> usize {
        match self.queue.lock() {
            Ok(q) => q.len(),
            Err(p) => p.into_inner().len(),
        }
    }

    /// Looks a request up, creating the transaction when it is new.
    pub fn begin(&self, key: &TxKey) -> Lookup {
        let now = Instant::now();
        let deadline = now + self.lifetime;
        let size = ENTRY_OVERHEAD + key.text_len();
        let slot = Slot {
            response: None,
            deadline,
            size,
        };
        match self.table.entry(key.clone()) {
            Entry::Occupied(e) if e.get().deadline > now => match &e.get().response {
                Some(r) => return Lookup::Completed(r.clone()),
                None => return Lookup::InProgress,
            },
            Entry::Occupied(mut e) => {
                let old = e.insert(slot);
                self.account(old.size, size);
            }
            Entry::Vacant(v) => {
                v.insert(slot);
                self.account(0, size);
            }
        }
        self.enqueue(deadline, key.clone(), now);
        Lookup::New
    }

    /// Records the final response. `reliable` transports keep nothing (Timer J = 0).
    pub fn complete(&self, key: &TxKey, response: Bytes, reliable: bool) {
        if reliable {
            self.remove_if(key, |_| true);
            return;
        }
        let now = Instant::now();
        let deadline = now + self.lifetime;
        let requeue = match self.table.get_mut(key) {
            Some(mut e) => {
                let size = ENTRY_OVERHEAD + key.text_len() + response.len();
                self.account(e.size, size);
                e.size = size;
                e.response = Some(response);
                // Answered within a second of arriving (nearly always): the queue item
                // pushed by `begin` stays, and Timer J runs from arrival, a few
                // milliseconds early at most. One item per transaction keeps the queue
                // as long as the table; two made it outgrow its bound under load and
                // the clean-up of a queue four times the bound stalled every receiver.
                if deadline > e.deadline + SLOW_ANSWER {
                    e.deadline = deadline;
                    true
                } else {
                    false
                }
            }
            None => return,
        };
        if requeue {
            self.enqueue(deadline, key.clone(), now);
        } else if self.bytes() > self.budget.load(Ordering::Relaxed) {
            // The response took the table over its budget: the oldest go now.
            self.expire(now);
        }
    }

    /// Forgets a transaction whose processing failed without a response.
    pub fn abandon(&self, key: &TxKey) {
        self.remove_if(key, |_| true);
    }

    fn enqueue(&self, deadline: Instant, key: TxKey, now: Instant) {
        let mut q = match self.queue.lock() {
            Ok(q) => q,
            Err(p) => p.into_inner(),
        };
        q.push_back((deadline, key));
        self.expire_locked(&mut q, now);
    }

    /// Drops transactions whose time is up, and the oldest ones beyond the table's bound.
    pub fn expire(&self, now: Instant) {
        let mut q = match self.queue.lock() {
            Ok(q) => q,
            Err(p) => p.into_inner(),
        };
        self.expire_locked(&mut q, now);
    }

    fn expire_locked(&self, q: &mut VecDeque<(Instant, TxKey)>, now: Instant) {
        while let Some((deadline, _)) = q.front() {
            let over = self.over();
            if *deadline > now && !over {
                break;
            }
            let Some((deadline, key)) = q.pop_front() else {
                break;
            };
            // An entry re-armed later has a later deadline and another queue item.
            self.remove_if(&key, |e| e.deadline <= deadline || over);
        }
        // Queue items for entries already removed are dropped as they reach the front.
        if q.len() > self.max.load(Ordering::Relaxed).saturating_mul(4) {
            q.retain(|(d, k)| self.table.get(k).is_some_and(|e| e.deadline == *d));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::{Limits, parse_datagram};

    fn req(branch: &str) -> Request {
        let text = format!(
            "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch={branch}\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:a@example.com>\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n"
        );
        Request::from_message(parse_datagram(Bytes::from(text), &Limits::default()).unwrap())
            .unwrap()
    }

    fn key(branch: &str) -> TxKey {
        TxKey::of(&req(branch), "127.0.0.1:5000".parse().unwrap())
    }

    #[test]
    fn retransmission_lifecycle() {
        let t = Transactions::new(Duration::from_millis(50), 100, 1 << 20);
        let k = key("z9hG4bKa");
        assert_eq!(t.begin(&k), Lookup::New);
        assert_eq!(t.begin(&k), Lookup::InProgress);
        t.complete(&k, Bytes::from_static(b"resp"), false);
        assert_eq!(t.begin(&k), Lookup::Completed(Bytes::from_static(b"resp")));
        std::thread::sleep(Duration::from_millis(60));
        t.expire(Instant::now());
        assert!(t.is_empty());
        assert_eq!(t.begin(&k), Lookup::New);
    }

    #[test]
    fn reliable_keeps_nothing_and_table_is_bounded() {
        let t = Transactions::new(Duration::from_secs(30), 10, 1 << 20);
        let k = key("z9hG4bKb");
        t.begin(&k);
        t.complete(&k, Bytes::new(), true);
        assert!(t.is_empty());
        for i in 0..100 {
            let k = key(&format!("z9hG4bK{i}"));
            t.begin(&k);
            t.complete(&k, Bytes::new(), false);
        }
        assert!(t.len() <= 11, "table grew to {}", t.len());
    }

    #[test]
    fn one_queue_item_per_transaction_unless_the_answer_was_slow() {
        let t = Transactions::new(Duration::from_millis(1500), 10_000, 1 << 30);
        for i in 0..1000 {
            let k = key(&format!("z9hG4bKq{i}"));
            t.begin(&k);
            t.complete(&k, Bytes::new(), false);
        }
        assert_eq!((t.len(), t.queued()), (1000, 1000));
        // Answered 1.1 s after arriving: Timer J restarts from the answer.
        let slow = key("z9hG4bKslow");
        t.begin(&slow);
        std::thread::sleep(Duration::from_millis(1100));
        t.complete(&slow, Bytes::from_static(b"late"), false);
        assert_eq!(t.queued(), 1002);
        // Past the request's own deadline (1.5 s) but not the answer's (2.6 s).
        std::thread::sleep(Duration::from_millis(500));
        t.expire(Instant::now());
        assert_eq!(
            t.begin(&slow),
            Lookup::Completed(Bytes::from_static(b"late"))
        );
        assert_eq!(t.len(), 1, "the quick ones expired");
    }

    #[test]
    fn the_table_stays_within_its_byte_budget() {
        const BUDGET: usize = 256 * 1024;
        // An entry bound far above what the budget allows: bytes decide.
        let t = Transactions::new(Duration::from_secs(30), 1_000_000, BUDGET);
        let response = |i: usize| Bytes::from(format!("SIP/2.0 401 {i} {}", "x".repeat(1200)));
        for i in 0..5_000 {
            let k = key(&format!("z9hG4bKbudget{i}"));
            assert_eq!(t.begin(&k), Lookup::New);
            t.complete(&k, response(i), false);
            assert!(t.bytes() <= BUDGET, "{} bytes after {i}", t.bytes());
        }
        // About 1.5 KiB an entry: ~170 fit, far fewer than 5,000.
        let kept = t.len();
        assert!(kept > 100 && kept < 200, "{kept} kept");
        // What is accounted is what the kept entries cost.
        let each = ENTRY_OVERHEAD + key("z9hG4bKbudget4999").text_len() + response(4999).len();
        assert!(t.bytes() >= kept * (each - 4) && t.bytes() <= kept * each);
        // The latest request's retransmission gets the same bytes; the first one's is
        // long gone (a new transaction).
        assert_eq!(
            t.begin(&key("z9hG4bKbudget4999")),
            Lookup::Completed(response(4999))
        );
        assert_eq!(t.begin(&key("z9hG4bKbudget0")), Lookup::New);
        // A lowered budget (reload) lets the oldest go at once.
        t.set_bounds(1_000_000, BUDGET / 2);
        assert!(t.bytes() <= BUDGET / 2 && t.len() < kept, "{}", t.len());
        // Forgetting everything gives every byte back.
        t.expire(Instant::now() + Duration::from_secs(31));
        assert_eq!((t.len(), t.bytes()), (0, 0));
    }

    #[test]
    fn legacy_and_branch_keys_differ() {
        let a = key("390skdjuw");
        assert!(matches!(a, TxKey::Legacy(_)));
        assert_ne!(key("z9hG4bK1"), key("z9hG4bK2"));
        let other = TxKey::of(&req("z9hG4bK1"), "127.0.0.1:5001".parse().unwrap());
        assert_ne!(
            key("z9hG4bK1"),
            other,
            "another client's branch is another transaction"
        );
    }
}
