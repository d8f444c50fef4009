//! The binding table: every AOR's bindings in memory, keyed by AOR on a `DashMap`.
//!
//! One REGISTER's changes to an AOR are computed on a copy of its bindings and committed
//! only if every contact was acceptable (RFC 3261 §10.3 steps 6–8: any failure leaves the
//! AOR untouched). The map's shard lock is held only for that synchronous step, never
//! across an await.
//!
//! Each AOR is stored packed ([`Packed`]) with the deadline of its one entry in the
//! expiry queue: the earliest of its bindings' expiries, or earlier. A refresh that only
//! pushes deadlines later queues nothing; the queue holds about one entry per AOR.

use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

use super::aor::Aor;
use super::binding::{Binding, Source};
use super::packed::Packed;
use crate::sip::Uri;
use crate::sip::headers::ContactValue;

/// What to do when a REGISTER would leave more than `max_contacts` bindings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MaxContactsPolicy {
    /// Refuse the request with 403 "Too many registrations".
    Reject,
    /// Drop the oldest bindings to make room.
    EvictOldest,
}

/// Expiry bounds and the per-AOR contact limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub default_expires: u32,
    pub min_expires: u32,
    pub max_expires: u32,
    pub max_contacts: usize,
    pub policy: MaxContactsPolicy,
}

/// The parts of a REGISTER the table needs.
#[derive(Debug, Clone)]
pub struct Update<'a> {
    pub contacts: &'a [ContactValue],
    /// The Expires header: absent, valid, or malformed (treated as absent).
    pub expires: Option<Result<u32, ()>>,
    pub call_id: &'a str,
    pub cseq: u32,
    pub path: Vec<Box<str>>,
    pub source: Source,
    pub user_agent: Option<&'a str>,
}

/// Why a REGISTER's binding changes were refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// 400 with this reason.
    BadRequest(&'static str),
    /// 423 with Min-Expires.
    IntervalTooBrief(u32),
    /// 403: more than the allowed number of contacts.
    TooManyContacts(usize),
    /// 503: the changes could not be queued for the store (write-behind queue full).
    Unavailable,
}

/// One change to the table, as the presence service and persistence consume it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Added(Binding),
    Refreshed(Binding),
    Removed(Binding),
    Expired(Binding),
}

impl Change {
    pub fn binding(&self) -> &Binding {
        match self {
            Change::Added(b) | Change::Refreshed(b) | Change::Removed(b) | Change::Expired(b) => b,
        }
    }
}

/// What one REGISTER did to an AOR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The AOR's bindings afterwards.
    pub bindings: Vec<Binding>,
    /// The changes made (empty for a fetch).
    pub changes: Vec<Change>,
    /// A deadline to queue for the AOR: its earliest expiry moved before the one queued.
    pub schedule: Option<u64>,
}

/// What an expiry check did to an AOR.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Expired {
    pub gone: Vec<Binding>,
    /// The AOR's next deadline to queue, when bindings remain.
    pub next: Option<u64>,
}

/// All bindings, by AOR.
#[derive(Default)]
pub struct BindingTable {
    /// Hashed with foldhash and a random seed per table: far cheaper than SipHash on
    /// every REGISTER, and still not predictable from outside.
    map: DashMap<Aor, Packed, foldhash::fast::RandomState>,
    next_id: AtomicU64,
}

/// The earliest expiry of `list`.
fn earliest(list: &[Binding]) -> Option<u64> {
    list.iter().map(|b| b.expires_at).min()
}

/// The deadline to record for an AOR whose earliest expiry is `first`, and the one to
/// queue: none while the deadline queued before (`scheduled`, 0 for none) still comes first.
fn deadline(scheduled: u64, first: u64) -> (u64, Option<u64>) {
    if scheduled != 0 && scheduled <= first {
        (scheduled, None)
    } else {
        (first, Some(first))
    }
}

/// The bindings of a stored AOR (the table wrote them, so they unpack; if they ever did
/// not, the AOR reads as empty rather than taking the process down).
fn unpack(p: &Packed) -> (u64, Vec<Binding>) {
    p.unpack().unwrap_or_else(|| {
        tracing::error!("a stored AOR did not unpack; treating it as empty");
        (0, Vec::new())
    })
}

/// RFC 3261 §19.1.4 equality of a stored contact and a new one (`text` is `uri` printed).
/// A refresh nearly always repeats the URI to the octet, which needs no parsing.
fn same_uri(stored: &Binding, uri: &Uri, text: &str) -> bool {
    if *stored.uri == *text {
        return true;
    }
    match (stored.parsed_uri(), uri) {
        (Some(a), Uri::Sip(b)) => a.equivalent(b),
        _ => false,
    }
}

impl BindingTable {
    pub fn new() -> BindingTable {
        BindingTable::default()
    }

    /// Number of AORs with at least one binding.
    pub fn aors(&self) -> usize {
        self.map.len()
    }

    /// Number of bindings in all.
    pub fn bindings(&self) -> usize {
        self.map.iter().map(|e| e.value().len()).sum()
    }

    /// The live bindings of an AOR.
    pub fn get(&self, aor: &Aor, now: u64) -> Vec<Binding> {
        let Some(p) = self.map.get(aor) else {
            return Vec::new();
        };
        let (_, mut list) = unpack(&p);
        drop(p);
        list.retain(|b| b.expires_at > now);
        list
    }

    /// The deadline queued for an AOR (0: none).
    pub fn scheduled(&self, aor: &Aor) -> u64 {
        self.map.get(aor).map_or(0, |p| p.scheduled())
    }

    /// A page of AORs in order, for operators.
    pub fn list(&self, offset: usize, limit: usize, now: u64) -> Vec<(Aor, Vec<Binding>)> {
        let mut aors: Vec<Aor> = self.map.iter().map(|e| e.key().clone()).collect();
        aors.sort();
        aors.into_iter()
            .skip(offset)
            .take(limit)
            .map(|a| {
                let b = self.get(&a, now);
                (a, b)
            })
            .filter(|(_, b)| !b.is_empty())
            .collect()
    }

    /// Puts back a binding loaded from storage (keeps its id unique from then on).
    /// Returns the deadline to queue for the AOR, if its earliest expiry moved earlier.
    pub fn restore(&self, aor: Aor, binding: Binding) -> Option<u64> {
        self.next_id.fetch_max(binding.id, Ordering::Relaxed);
        let at = binding.expires_at;
        match self.map.entry(aor) {
            Entry::Vacant(v) => {
                v.insert(Packed::pack(at, std::slice::from_ref(&binding)));
                Some(at)
            }
            Entry::Occupied(mut e) => {
                let (scheduled, mut list) = unpack(e.get());
                list.push(binding);
                let (keep, push) = deadline(scheduled, at);
                e.insert(Packed::pack(keep, &list));
                push
            }
        }
    }

    /// A fresh binding id (for bindings loaded without one).
    pub fn new_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The expiry check of `aor` queued for `at`: removes the bindings expired by `now`
    /// and names the AOR's next deadline. An entry superseded by an earlier one (the AOR
    /// records which deadline it queued last) does nothing.
    pub fn expire_due(&self, aor: &Aor, at: u64, now: u64) -> Expired {
        let Entry::Occupied(mut e) = self.map.entry(aor.clone()) else {
            return Expired::default();
        };
        if e.get().scheduled() != at {
            return Expired::default();
        }
        let (_, list) = unpack(e.get());
        let (gone, kept): (Vec<Binding>, Vec<Binding>) =
            list.into_iter().partition(|b| b.expires_at <= now);
        let next = earliest(&kept);
        match next {
            None => {
                e.remove();
            }
            Some(n) => {
                e.insert(Packed::pack(n, &kept));
            }
        }
        Expired { gone, next }
    }

    /// Applies one REGISTER to `aor` atomically: the AOR's bindings afterwards, the
    /// changes made (empty for a fetch) and the deadline to queue for the AOR. Bindings
    /// found expired on the way are dropped and reported as [`Change::Expired`].
    pub fn apply(
        &self,
        aor: &Aor,
        up: &Update<'_>,
        limits: &Limits,
        now: u64,
    ) -> Result<Applied, Refused> {
        self.apply_if(aor, up, limits, now, |_| true)
    }

    /// [`BindingTable::apply`], installed only if `admit` accepts the changes; it runs
    /// under the AOR's lock, so whatever it records (the write-behind queue) sees each
    /// AOR's changes in the order the table made them. Refused: the AOR is untouched and
    /// the answer is [`Refused::Unavailable`]. A fetch that changes nothing skips it.
    pub fn apply_if(
        &self,
        aor: &Aor,
        up: &Update<'_>,
        limits: &Limits,
        now: u64,
        admit: impl FnOnce(&[Change]) -> bool,
    ) -> Result<Applied, Refused> {
        let entry = self.map.entry(aor.clone());
        let (scheduled, stored) = match &entry {
            Entry::Occupied(e) => unpack(e.get()),
            Entry::Vacant(_) => (0, Vec::new()),
        };
        let (current, stale): (Vec<Binding>, Vec<Binding>) =
            stored.into_iter().partition(|b| b.expires_at > now);
        let (next, mut changes) = self.compute(current, up, limits, now)?;
        if up.contacts.is_empty() && stale.is_empty() {
            // A fetch that found nothing to drop writes nothing.
            return Ok(Applied {
                bindings: next,
                changes,
                schedule: None,
            });
        }
        changes.extend(stale.into_iter().map(Change::Expired));
        if !changes.is_empty() && !admit(&changes) {
            return Err(Refused::Unavailable);
        }
        let schedule = match earliest(&next) {
            None => {
                if let Entry::Occupied(e) = entry {
                    e.remove();
                }
                None
            }
            Some(first) => {
                let (keep, push) = deadline(scheduled, first);
                entry.insert(Packed::pack(keep, &next));
                push
            }
        };
        Ok(Applied {
            bindings: next,
            changes,
            schedule,
        })
    }

    /// What one REGISTER would do to `aor`, without doing it (sync mode: the changes are
    /// stored first, then [`BindingTable::install`]ed). The caller keeps other
    /// REGISTERs of the AOR out until then; `schedule` is always `None` here.
    pub fn plan(
        &self,
        aor: &Aor,
        up: &Update<'_>,
        limits: &Limits,
        now: u64,
    ) -> Result<Applied, Refused> {
        let stored = self.map.get(aor).map(|p| unpack(&p).1).unwrap_or_default();
        let (current, stale): (Vec<Binding>, Vec<Binding>) =
            stored.into_iter().partition(|b| b.expires_at > now);
        let (next, mut changes) = self.compute(current, up, limits, now)?;
        changes.extend(stale.into_iter().map(Change::Expired));
        Ok(Applied {
            bindings: next,
            changes,
            schedule: None,
        })
    }

    /// Installs planned changes into `aor`, binding by binding (by id), so that a
    /// removal made meanwhile by expiry or a closed connection is kept. Returns the
    /// deadline to queue for the AOR, if any.
    pub fn install(&self, aor: &Aor, changes: &[Change]) -> Option<u64> {
        if changes.is_empty() {
            return None;
        }
        let entry = self.map.entry(aor.clone());
        let (scheduled, mut list) = match &entry {
            Entry::Occupied(e) => unpack(e.get()),
            Entry::Vacant(_) => (0, Vec::new()),
        };
        for c in changes {
            match c {
                Change::Added(b) | Change::Refreshed(b) => {
                    match list.iter_mut().find(|x| x.id == b.id) {
                        Some(x) => *x = b.clone(),
                        None => list.push(b.clone()),
                    }
                }
                Change::Removed(b) | Change::Expired(b) => list.retain(|x| x.id != b.id),
            }
        }
        match earliest(&list) {
            None => {
                if let Entry::Occupied(e) = entry {
                    e.remove();
                }
                None
            }
            Some(first) => {
                let (keep, push) = deadline(scheduled, first);
                entry.insert(Packed::pack(keep, &list));
                push
            }
        }
    }

    /// Removes `aor`'s WebSocket bindings that arrived over connection `flow`, which has
    /// closed: their contacts cannot be reached any more (RFC 7118 §5). Returns them.
    pub fn remove_flow(&self, aor: &Aor, flow: u64) -> Vec<Binding> {
        let Entry::Occupied(mut e) = self.map.entry(aor.clone()) else {
            return Vec::new();
        };
        let (scheduled, list) = unpack(e.get());
        let (gone, kept): (Vec<Binding>, Vec<Binding>) = list
            .into_iter()
            .partition(|b| b.source.connection == Some(flow) && b.source.transport.is_websocket());
        if gone.is_empty() {
            return gone;
        }
        if kept.is_empty() {
            e.remove();
        } else {
            // The queued deadline stays: its check finds the next one among those kept.
            e.insert(Packed::pack(scheduled, &kept));
        }
        gone
    }

    /// The AORs holding a WebSocket binding on connection `flow` (a full scan, for when
    /// the per-flow index overflowed).
    pub fn aors_on_flow(&self, flow: u64) -> Vec<Aor> {
        self.map
            .iter()
            .filter(|e| {
                unpack(e.value())
                    .1
                    .iter()
                    .any(|b| b.source.connection == Some(flow) && b.source.transport.is_websocket())
            })
            .map(|e| e.key().clone())
            .collect()
    }

    fn compute(
        &self,
        mut list: Vec<Binding>,
        up: &Update<'_>,
        limits: &Limits,
        now: u64,
    ) -> Result<(Vec<Binding>, Vec<Change>), Refused> {
        let mut changes = Vec::new();
        if up.contacts.is_empty() {
            return Ok((list, changes));
        }
        let header_expires = up.expires.and_then(Result::ok);
        if up.contacts.iter().any(|c| matches!(c, ContactValue::Star)) {
            if up.contacts.len() != 1 {
                return Err(Refused::BadRequest("Contact * must be the only Contact"));
            }
            if header_expires != Some(0) {
                return Err(Refused::BadRequest("Contact * requires Expires: 0"));
            }
            for b in &list {
                if b.call_id.as_ref() == up.call_id && up.cseq <= b.cseq {
                    return Err(Refused::BadRequest("CSeq out of order"));
                }
            }
            changes.extend(list.drain(..).map(Change::Removed));
            return Ok((list, changes));
        }
        for c in up.contacts {
            let ContactValue::Addr(addr) = c else {
                continue;
            };
            let requested = c
                .expires()
                .and_then(Result::ok)
                .or(header_expires)
                .unwrap_or(limits.default_expires);
            if requested != 0 && requested < limits.min_expires {
                return Err(Refused::IntervalTooBrief(limits.min_expires));
            }
            let expires = requested.min(limits.max_expires);
            let instance = c.instance();
            let reg_id = match c.reg_id() {
                Some(Ok(r)) => Some(r),
                Some(Err(())) => return Err(Refused::BadRequest("Malformed reg-id")),
                None => None,
            };
            let q = c.q().and_then(Result::ok);
            let uri_text = addr.uri.to_string().into_boxed_str();
            let pos = list.iter().position(|b| match &instance {
                Some(i) => b.same_instance(i, reg_id),
                None => b.instance.is_none() && same_uri(b, &addr.uri, &uri_text),
            });
            if let Some(p) = pos {
                let old = &list[p];
                if old.call_id.as_ref() == up.call_id && up.cseq <= old.cseq {
                    return Err(Refused::BadRequest("CSeq out of order"));
                }
            }
            match (pos, expires) {
                (Some(p), 0) => changes.push(Change::Removed(list.remove(p))),
                (None, 0) => {}
                (Some(p), _) => {
                    let b = &mut list[p];
                    b.uri = uri_text;
                    b.q = q;
                    b.expires_at = now + u64::from(expires);
                    b.call_id = up.call_id.into();
                    b.cseq = up.cseq;
                    b.path = up.path.clone();
                    b.source = up.source;
                    b.user_agent = up.user_agent.map(Into::into);
                    changes.push(Change::Refreshed(b.clone()));
                }
                (None, _) => {
                    let b = Binding {
                        id: self.new_id(),
                        uri: uri_text,
                        instance: instance.map(String::into_boxed_str),
                        reg_id,
                        q,
                        expires_at: now + u64::from(expires),
                        call_id: up.call_id.into(),
                        cseq: up.cseq,
                        path: up.path.clone(),
                        source: up.source,
                        user_agent: up.user_agent.map(Into::into),
                        registered_at: now,
                    };
                    changes.push(Change::Added(b.clone()));
                    list.push(b);
                }
            }
        }
        if list.len() > limits.max_contacts {
            match limits.policy {
                MaxContactsPolicy::Reject => {
                    return Err(Refused::TooManyContacts(limits.max_contacts));
                }
                MaxContactsPolicy::EvictOldest => {
                    list.sort_by_key(|b| (b.registered_at, b.id));
                    let excess = list.len() - limits.max_contacts;
                    changes.extend(list.drain(..excess).map(Change::Removed));
                }
            }
        }
        Ok((list, changes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::headers::TypedHeader;
    use crate::transport::Transport;

    const LIMITS: Limits = Limits {
        default_expires: 3600,
        min_expires: 60,
        max_expires: 86_400,
        max_contacts: 3,
        policy: MaxContactsPolicy::Reject,
    };

    fn contacts(list: &[&str]) -> Vec<ContactValue> {
        list.iter()
            .map(|c| ContactValue::parse_str(c).unwrap())
            .collect()
    }

    fn src(port: u16) -> Source {
        Source {
            transport: Transport::Udp,
            addr: ([127, 0, 0, 1], port).into(),
            connection: None,
        }
    }

    fn reg(
        t: &BindingTable,
        c: &[ContactValue],
        expires: Option<u32>,
        call_id: &str,
        cseq: u32,
        limits: &Limits,
    ) -> Result<(Vec<Binding>, Vec<Change>), Refused> {
        let up = Update {
            contacts: c,
            expires: expires.map(Ok),
            call_id,
            cseq,
            path: Vec::new(),
            source: src(5060),
            user_agent: Some("test"),
        };
        t.apply(
            &Aor::parse("sip:alice@example.com").unwrap(),
            &up,
            limits,
            1_000,
        )
        .map(|a| (a.bindings, a.changes))
    }

    #[test]
    fn closing_a_websocket_flow_removes_only_its_bindings() {
        let t = BindingTable::new();
        let alice = Aor::parse("sip:alice@example.com").unwrap();
        let on = |transport, connection, c: &[ContactValue], call_id| {
            let up = Update {
                contacts: c,
                expires: None,
                call_id,
                cseq: 1,
                path: Vec::new(),
                source: Source {
                    transport,
                    addr: ([127, 0, 0, 1], 40_000).into(),
                    connection,
                },
                user_agent: None,
            };
            t.apply(&alice, &up, &LIMITS, 1_000).unwrap();
        };
        on(
            Transport::Ws,
            Some(7),
            &contacts(&["<sip:a@x.invalid;transport=ws>"]),
            "w7",
        );
        on(
            Transport::Ws,
            Some(8),
            &contacts(&["<sip:a@y.invalid;transport=ws>"]),
            "w8",
        );
        // A TCP binding on a connection with the same id is not a WebSocket's.
        on(
            Transport::Tcp,
            Some(7),
            &contacts(&["<sip:a@192.0.2.1;transport=tcp>"]),
            "t7",
        );
        assert_eq!(t.aors_on_flow(7), vec![alice.clone()]);
        let gone = t.remove_flow(&alice, 7);
        assert_eq!(gone.len(), 1);
        assert_eq!(&*gone[0].uri, "sip:a@x.invalid;transport=ws");
        assert!(t.aors_on_flow(7).is_empty());
        assert_eq!(t.get(&alice, 1_000).len(), 2);
        assert!(
            t.remove_flow(&alice, 7).is_empty(),
            "nothing left on flow 7"
        );
        assert_eq!(t.remove_flow(&alice, 8).len(), 1);
        // The last binding removed leaves the TCP one; its expiry check still runs.
        let left = t.get(&alice, 1_000);
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].source.transport, Transport::Tcp);
        assert_eq!(
            t.expire_due(&alice, t.scheduled(&alice), 1_000 + 3_600)
                .gone
                .len(),
            1
        );
        assert_eq!(t.aors(), 0);
    }

    #[test]
    fn add_fetch_refresh_remove() {
        let t = BindingTable::new();
        let two = contacts(&["<sip:a@192.0.2.1>", "<sip:a@192.0.2.2>;expires=120"]);
        let (now, changes) = reg(&t, &two, None, "c1", 1, &LIMITS).unwrap();
        assert_eq!(now.len(), 2);
        assert_eq!(now[0].expires_at, 1_000 + 3600);
        assert_eq!(now[1].expires_at, 1_000 + 120);
        assert!(changes.iter().all(|c| matches!(c, Change::Added(_))));
        // A fetch changes nothing.
        let (now, changes) = reg(&t, &[], None, "c2", 1, &LIMITS).unwrap();
        assert_eq!((now.len(), changes.len()), (2, 0));
        // Same Call-ID, CSeq not higher: refused, nothing changed.
        let one = contacts(&["<sip:a@192.0.2.1>;expires=0"]);
        assert_eq!(
            reg(&t, &one, None, "c1", 1, &LIMITS),
            Err(Refused::BadRequest("CSeq out of order"))
        );
        assert_eq!(t.bindings(), 2);
        // Higher CSeq removes.
        let (now, changes) = reg(&t, &one, None, "c1", 2, &LIMITS).unwrap();
        assert_eq!(now.len(), 1);
        assert!(matches!(&changes[0], Change::Removed(b) if &*b.uri == "sip:a@192.0.2.1"));
        // Another Call-ID may update with a lower CSeq.
        let (_, changes) = reg(
            &t,
            &contacts(&["<sip:a@192.0.2.2>;expires=600"]),
            None,
            "other",
            1,
            &LIMITS,
        )
        .unwrap();
        assert!(matches!(&changes[0], Change::Refreshed(b) if b.expires_at == 1_600));
    }

    #[test]
    fn expiry_bounds() {
        let t = BindingTable::new();
        let c = contacts(&["<sip:a@192.0.2.1>;expires=30"]);
        assert_eq!(
            reg(&t, &c, None, "c", 1, &LIMITS),
            Err(Refused::IntervalTooBrief(60))
        );
        let c = contacts(&["<sip:a@192.0.2.1>"]);
        let (now, _) = reg(&t, &c, Some(999_999), "c", 2, &LIMITS).unwrap();
        assert_eq!(now[0].expires_at, 1_000 + 86_400, "capped at the maximum");
        // A malformed expires parameter falls back to the Expires header.
        let c = contacts(&["<sip:a@192.0.2.1>;expires=99999999999999999999"]);
        let (now, _) = reg(&t, &c, Some(300), "c", 3, &LIMITS).unwrap();
        assert_eq!(now[0].expires_at, 1_300);
    }

    #[test]
    fn failure_leaves_the_aor_untouched() {
        let t = BindingTable::new();
        reg(&t, &contacts(&["<sip:a@192.0.2.1>"]), None, "c", 1, &LIMITS).unwrap();
        let mixed = contacts(&["<sip:a@192.0.2.9>", "<sip:a@192.0.2.1>;expires=10"]);
        assert!(reg(&t, &mixed, None, "c", 2, &LIMITS).is_err());
        let now = t.get(&Aor::parse("sip:alice@example.com").unwrap(), 1_000);
        assert_eq!(now.len(), 1);
        assert_eq!(&*now[0].uri, "sip:a@192.0.2.1");
        assert_eq!(now[0].cseq, 1);
    }

    #[test]
    fn a_refused_admission_leaves_the_aor_untouched() {
        let t = BindingTable::new();
        let alice = Aor::parse("sip:alice@example.com").unwrap();
        reg(&t, &contacts(&["<sip:a@192.0.2.1>"]), None, "c", 1, &LIMITS).unwrap();
        let c = contacts(&["<sip:a@192.0.2.2>", "<sip:a@192.0.2.1>;expires=0"]);
        let mut seen = Vec::new();
        let r = t.apply_if(&alice, &up(&c, "c", 2), &LIMITS, 1_000, |changes| {
            seen.extend(changes.iter().cloned());
            false
        });
        assert_eq!(r, Err(Refused::Unavailable));
        // The admission saw the whole request: one binding added, one removed.
        assert!(matches!(&seen[..], [Change::Added(_), Change::Removed(_)]));
        let now = t.get(&alice, 1_000);
        assert_eq!(now.len(), 1);
        assert_eq!((&*now[0].uri, now[0].cseq), ("sip:a@192.0.2.1", 1));
        // A fetch changes nothing, so it is never put to the admission.
        let fetch = t.apply_if(&alice, &up(&[], "f", 1), &LIMITS, 1_000, |_| {
            panic!("a fetch needs no admission")
        });
        assert_eq!(fetch.unwrap().bindings.len(), 1);
    }

    #[test]
    fn plan_changes_nothing_until_installed() {
        let t = BindingTable::new();
        let alice = Aor::parse("sip:alice@example.com").unwrap();
        let c = contacts(&["<sip:a@192.0.2.1>", "<sip:a@192.0.2.2>"]);
        let plan = t.plan(&alice, &up(&c, "c", 1), &LIMITS, 1_000).unwrap();
        assert_eq!(plan.changes.len(), 2);
        assert!(t.get(&alice, 1_000).is_empty(), "not installed yet");
        assert_eq!(t.install(&alice, &plan.changes), Some(1_000 + 3600));
        assert_eq!(t.get(&alice, 1_000), plan.bindings);
        // A plan made, then one of its bindings removed by someone else (a closed
        // connection) before the install: the install keeps that removal.
        let c2 = contacts(&["<sip:a@192.0.2.3>"]);
        let plan = t.plan(&alice, &up(&c2, "c", 2), &LIMITS, 1_000).unwrap();
        let first = t.get(&alice, 1_000)[0].clone();
        t.install(&alice, &[Change::Removed(first.clone())]);
        t.install(&alice, &plan.changes);
        let uris: Vec<String> = t
            .get(&alice, 1_000)
            .iter()
            .map(|b| b.uri.to_string())
            .collect();
        assert_eq!(uris, ["sip:a@192.0.2.2", "sip:a@192.0.2.3"]);
        // Removing everything removes the AOR.
        let all: Vec<Change> = t
            .get(&alice, 1_000)
            .into_iter()
            .map(Change::Removed)
            .collect();
        assert_eq!(t.install(&alice, &all), None);
        assert_eq!(t.aors(), 0);
    }

    #[test]
    fn star_rules() {
        let t = BindingTable::new();
        reg(
            &t,
            &contacts(&["<sip:a@192.0.2.1>", "<sip:a@192.0.2.2>"]),
            None,
            "c",
            1,
            &LIMITS,
        )
        .unwrap();
        assert!(reg(&t, &contacts(&["*"]), Some(10), "d", 1, &LIMITS).is_err());
        assert!(reg(&t, &contacts(&["*"]), None, "d", 1, &LIMITS).is_err());
        assert!(
            reg(
                &t,
                &contacts(&["*", "<sip:a@192.0.2.3>"]),
                Some(0),
                "d",
                1,
                &LIMITS
            )
            .is_err()
        );
        assert_eq!(
            reg(&t, &contacts(&["*"]), Some(0), "c", 1, &LIMITS),
            Err(Refused::BadRequest("CSeq out of order"))
        );
        let (now, changes) = reg(&t, &contacts(&["*"]), Some(0), "c", 2, &LIMITS).unwrap();
        assert!(now.is_empty());
        assert_eq!(changes.len(), 2);
        assert_eq!(t.aors(), 0);
    }

    #[test]
    fn instance_identity_replaces_binding_from_new_address() {
        let t = BindingTable::new();
        let first = contacts(&["<sip:a@192.0.2.1:5060>;+sip.instance=\"<urn:uuid:1>\";reg-id=1"]);
        reg(&t, &first, None, "c", 1, &LIMITS).unwrap();
        let moved =
            contacts(&["<sip:a@198.51.100.7:40000>;+sip.instance=\"<urn:uuid:1>\";reg-id=1"]);
        let (now, changes) = reg(&t, &moved, None, "c", 2, &LIMITS).unwrap();
        assert_eq!(now.len(), 1);
        assert_eq!(&*now[0].uri, "sip:a@198.51.100.7:40000");
        assert!(matches!(changes[0], Change::Refreshed(_)));
        // Another instance is another device.
        let other =
            contacts(&["<sip:a@198.51.100.7:40000>;+sip.instance=\"<urn:uuid:2>\";reg-id=1"]);
        let (now, _) = reg(&t, &other, None, "c2", 1, &LIMITS).unwrap();
        assert_eq!(now.len(), 2);
    }

    #[test]
    fn uri_equivalence_decides_identity() {
        let t = BindingTable::new();
        reg(
            &t,
            &contacts(&["sip:+19725552222@gw1.example.net;unknownparam"]),
            None,
            "c1",
            1,
            &LIMITS,
        )
        .unwrap();
        let (now, changes) = reg(
            &t,
            &contacts(&["<sip:+19725552222@gw1.example.net;unknownparam>"]),
            None,
            "c2",
            1,
            &LIMITS,
        )
        .unwrap();
        assert_eq!(now.len(), 1, "cparam01 and cparam02 name one binding");
        assert_eq!(
            &*now[0].uri,
            "sip:+19725552222@gw1.example.net;unknownparam"
        );
        assert!(matches!(changes[0], Change::Refreshed(_)));
        let (now, _) = reg(
            &t,
            &contacts(&[
                "<sip:%00@host5.example.com>",
                "<sip:%00%00@host5.example.com>",
            ]),
            None,
            "c3",
            1,
            &LIMITS,
        )
        .unwrap();
        assert_eq!(now.len(), 3);
    }

    #[test]
    fn contact_limit_reject_or_evict() {
        let t = BindingTable::new();
        let four = contacts(&[
            "<sip:a@192.0.2.1>",
            "<sip:a@192.0.2.2>",
            "<sip:a@192.0.2.3>",
            "<sip:a@192.0.2.4>",
        ]);
        assert_eq!(
            reg(&t, &four, None, "c", 1, &LIMITS),
            Err(Refused::TooManyContacts(3))
        );
        assert_eq!(t.bindings(), 0);
        let evict = Limits {
            policy: MaxContactsPolicy::EvictOldest,
            ..LIMITS
        };
        let (now, changes) = reg(&t, &four, None, "c", 2, &evict).unwrap();
        assert_eq!(now.len(), 3);
        assert_eq!(
            changes
                .iter()
                .filter(|c| matches!(c, Change::Removed(_)))
                .count(),
            1
        );
    }

    #[test]
    fn expire_removes_only_what_is_due() {
        let t = BindingTable::new();
        let (now, _) = reg(
            &t,
            &contacts(&["<sip:a@192.0.2.1>;expires=60"]),
            None,
            "c",
            1,
            &LIMITS,
        )
        .unwrap();
        let aor = Aor::parse("sip:alice@example.com").unwrap();
        assert_eq!(t.scheduled(&aor), 1_060);
        // A stale entry (another deadline than the one recorded) does nothing.
        assert_eq!(t.expire_due(&aor, 1_000, 1_070), Expired::default());
        assert_eq!(t.aors(), 1);
        let e = t.expire_due(&aor, 1_060, 1_060);
        assert_eq!(e.gone.len(), 1);
        assert_eq!(e.gone[0].id, now[0].id);
        assert_eq!(e.next, None);
        assert_eq!(t.aors(), 0);
    }

    fn up<'a>(c: &'a [ContactValue], call_id: &'a str, cseq: u32) -> Update<'a> {
        Update {
            contacts: c,
            expires: None,
            call_id,
            cseq,
            path: Vec::new(),
            source: src(5060),
            user_agent: None,
        }
    }

    #[test]
    fn one_queued_deadline_per_aor() {
        let t = BindingTable::new();
        let aor = Aor::parse("sip:alice@example.com").unwrap();
        let long = contacts(&["<sip:a@192.0.2.1>;expires=600"]);
        let a = t.apply(&aor, &up(&long, "c", 1), &LIMITS, 1_000).unwrap();
        assert_eq!(
            a.schedule,
            Some(1_600),
            "a new AOR queues its first deadline"
        );
        // Refreshes that push the deadline later queue nothing more.
        for (cseq, now) in [(2, 1_100), (3, 1_200)] {
            let a = t.apply(&aor, &up(&long, "c", cseq), &LIMITS, now).unwrap();
            assert_eq!(a.schedule, None);
            assert!(matches!(&a.changes[..], [Change::Refreshed(_)]));
        }
        assert_eq!(t.scheduled(&aor), 1_600);
        // A second phone expiring sooner queues the earlier deadline.
        let short = contacts(&["<sip:b@192.0.2.2>;expires=120"]);
        let a = t.apply(&aor, &up(&short, "d", 1), &LIMITS, 1_200).unwrap();
        assert_eq!(a.schedule, Some(1_320));
        // The superseded entry (1,600) does nothing when it comes up early ...
        assert_eq!(t.expire_due(&aor, 1_600, 1_320), Expired::default());
        // ... the current one expires the short binding and names the next deadline.
        let e = t.expire_due(&aor, 1_320, 1_320);
        assert_eq!(e.gone.len(), 1);
        assert_eq!(&*e.gone[0].uri, "sip:b@192.0.2.2");
        assert_eq!(
            e.next,
            Some(1_800),
            "the refreshed binding now expires at 1,800"
        );
        assert_eq!(t.scheduled(&aor), 1_800);
        assert_eq!(t.bindings(), 1);
        // Not yet due: the check keeps the binding and queues the same deadline again.
        let e = t.expire_due(&aor, 1_800, 1_799);
        assert_eq!((e.gone.len(), e.next), (0, Some(1_800)));
    }

    #[test]
    fn restore_queues_the_earliest_deadline_once() {
        let t = BindingTable::new();
        let aor = Aor::parse("sip:alice@example.com").unwrap();
        let (list, _) = reg(
            &t,
            &contacts(&[
                "<sip:a@192.0.2.1>;expires=600",
                "<sip:a@192.0.2.2>;expires=300",
            ]),
            None,
            "c",
            1,
            &LIMITS,
        )
        .unwrap();
        let fresh = BindingTable::new();
        assert_eq!(fresh.restore(aor.clone(), list[0].clone()), Some(1_600));
        assert_eq!(fresh.restore(aor.clone(), list[1].clone()), Some(1_300));
        assert_eq!(fresh.restore(aor.clone(), list[0].clone()), None);
        assert_eq!(fresh.scheduled(&aor), 1_300);
        assert_eq!(fresh.bindings(), 3);
        assert_eq!(fresh.get(&aor, 1_000).len(), 3);
    }
}
