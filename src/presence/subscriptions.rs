//! The notifier's subscriptions (RFC 6665 §4.2): one dialog each, found by its dialog id
//! (Call-ID, the watcher's tag, sipreg's tag), listed per presentity for fan-out and
//! counted per watcher for the limits. Expiry runs on a deadline queue.
//!
//! Each map is locked on its own and never across an await; [`Subscriptions::insert`]
//! takes the watcher's count and then the presentity's list, and nothing takes them the
//! other way round.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use dashmap::DashMap;

use crate::registrar::Aor;
use crate::registrar::expiry::ExpiryQueue;
use crate::transaction::client::Target;
use crate::transport::FlowIndex;

/// Call-ID, remote (watcher's) tag, local (sipreg's) tag.
pub type DialogId = (Box<str>, Box<str>, Box<str>);

/// One subscription and the dialog it lives in (RFC 3261 §12, sipreg the UAS).
#[derive(Debug, Clone)]
pub struct Subscription {
    pub id: u64,
    pub presentity: Aor,
    /// Who holds it, for the per-watcher limit (the username, or the From AOR when
    /// authentication is off).
    pub watcher: Box<str>,
    pub call_id: Box<str>,
    /// sipreg's tag (the To tag of the 200).
    pub local_tag: Box<str>,
    /// The watcher's tag (the From tag of the SUBSCRIBE).
    pub remote_tag: Box<str>,
    /// NOTIFY's From: the SUBSCRIBE's To with sipreg's tag.
    pub local: Box<str>,
    /// NOTIFY's To: the SUBSCRIBE's From as received.
    pub remote: Box<str>,
    /// The watcher's Contact URI: the NOTIFY's Request-URI.
    pub remote_target: Box<str>,
    /// Record-Route of the SUBSCRIBE, in order: the NOTIFY's Route set.
    pub route_set: Vec<Box<str>>,
    /// sipreg's Contact in NOTIFYs.
    pub contact: Box<str>,
    /// `id` of the Event header, echoed in NOTIFYs.
    pub event_id: Option<Box<str>>,
    /// Where NOTIFYs go: the SUBSCRIBE's source address or its TCP connection.
    pub target: Target,
    /// CSeq of the last NOTIFY sent.
    pub local_cseq: u32,
    /// CSeq of the last SUBSCRIBE accepted.
    pub remote_cseq: u32,
    /// Unix seconds.
    pub expires_at: u64,
    /// When the last NOTIFY went out (coalescing).
    pub last_sent: Option<Instant>,
    /// A NOTIFY is already scheduled; further changes ride on it.
    pub scheduled: bool,
}

impl Subscription {
    pub fn dialog(&self) -> DialogId {
        (
            self.call_id.clone(),
            self.remote_tag.clone(),
            self.local_tag.clone(),
        )
    }
}

/// Why a subscription was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// The watcher holds this many already.
    Watcher(usize),
    /// The presentity has this many watchers already.
    Presentity(usize),
}

#[derive(Default)]
pub struct Subscriptions {
    by_id: DashMap<u64, Subscription>,
    by_dialog: DashMap<DialogId, u64>,
    by_presentity: DashMap<Aor, Vec<u64>>,
    per_watcher: DashMap<Box<str>, usize>,
    /// Subscriptions whose NOTIFYs go over each open connection.
    by_flow: FlowIndex<u64>,
    expiry: ExpiryQueue,
    next_id: AtomicU64,
}

impl Subscriptions {
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Stores `sub` unless a limit is reached.
    pub fn insert(
        &self,
        sub: Subscription,
        per_watcher: usize,
        per_presentity: usize,
    ) -> Result<(), Full> {
        let mut count = self.per_watcher.entry(sub.watcher.clone()).or_insert(0);
        if *count >= per_watcher {
            return Err(Full::Watcher(per_watcher));
        }
        let mut list = self
            .by_presentity
            .entry(sub.presentity.clone())
            .or_default();
        if list.len() >= per_presentity {
            drop(list);
            let empty = *count == 0;
            drop(count);
            if empty {
                self.per_watcher.remove_if(&sub.watcher, |_, n| *n == 0);
            }
            self.by_presentity
                .remove_if(&sub.presentity, |_, v| v.is_empty());
            return Err(Full::Presentity(per_presentity));
        }
        list.push(sub.id);
        *count += 1;
        drop(list);
        drop(count);
        self.expiry
            .schedule(sub.expires_at, sub.id, sub.presentity.clone());
        self.by_dialog.insert(sub.dialog(), sub.id);
        // A flow already closed is not noted: the first NOTIFY over it fails and ends
        // the subscription.
        if let Target::Flow(flow) = sub.target {
            self.by_flow.note(flow, sub.id);
        }
        self.by_id.insert(sub.id, sub);
        Ok(())
    }

    /// Notes that subscription `id`'s NOTIFYs now go over connection `flow` (a refresh
    /// arrived over it).
    pub fn note_flow(&self, flow: u64, id: u64) {
        self.by_flow.note(flow, id);
    }

    /// The subscriptions whose NOTIFYs still go over connection `flow`, which closed
    /// (its index entry is forgotten).
    pub fn take_flow(&self, flow: u64) -> Vec<u64> {
        let Some(noted) = self.by_flow.take(flow) else {
            return Vec::new();
        };
        let on_flow = |s: &Subscription| s.target == Target::Flow(flow);
        if noted.overflowed {
            return self
                .by_id
                .iter()
                .filter(|e| on_flow(e.value()))
                .map(|e| *e.key())
                .collect();
        }
        noted
            .items
            .into_iter()
            .filter(|id| self.by_id.get(id).is_some_and(|s| on_flow(&s)))
            .collect()
    }

    /// The subscription of a dialog.
    pub fn find(&self, dialog: &DialogId) -> Option<u64> {
        self.by_dialog.get(dialog).map(|e| *e)
    }

    pub fn get(&self, id: u64) -> Option<Subscription> {
        self.by_id.get(&id).map(|e| e.clone())
    }

    /// Runs `f` on the stored subscription (under its lock: no await inside).
    pub fn with<R>(&self, id: u64, f: impl FnOnce(&mut Subscription) -> R) -> Option<R> {
        self.by_id.get_mut(&id).map(|mut e| f(&mut e))
    }

    /// Sets a refreshed subscription's deadline.
    pub fn reschedule(&self, id: u64, expires_at: u64) {
        if let Some(aor) = self.with(id, |s| {
            s.expires_at = expires_at;
            s.presentity.clone()
        }) {
            self.expiry.schedule(expires_at, id, aor);
        }
    }

    /// Removes a subscription; `None` when it was already gone.
    pub fn remove(&self, id: u64) -> Option<Subscription> {
        let (_, sub) = self.by_id.remove(&id)?;
        self.by_dialog.remove(&sub.dialog());
        if let Some(mut list) = self.by_presentity.get_mut(&sub.presentity) {
            list.retain(|x| *x != id);
            let empty = list.is_empty();
            drop(list);
            if empty {
                self.by_presentity
                    .remove_if(&sub.presentity, |_, v| v.is_empty());
            }
        }
        if let Some(mut n) = self.per_watcher.get_mut(&sub.watcher) {
            *n = n.saturating_sub(1);
            let zero = *n == 0;
            drop(n);
            if zero {
                self.per_watcher.remove_if(&sub.watcher, |_, n| *n == 0);
            }
        }
        Some(sub)
    }

    /// The subscriptions to `aor`.
    pub fn of(&self, aor: &Aor) -> Vec<u64> {
        self.by_presentity
            .get(aor)
            .map(|v| v.clone())
            .unwrap_or_default()
    }

    /// Whether anyone watches `aor`.
    pub fn watched(&self, aor: &Aor) -> bool {
        self.by_presentity.get(aor).is_some_and(|v| !v.is_empty())
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Subscriptions whose deadline passed at `now` (refreshed ones are skipped).
    pub fn due(&self, now: u64) -> Vec<u64> {
        self.expiry
            .due(now)
            .into_iter()
            .filter(|(id, _)| self.by_id.get(id).is_some_and(|s| s.expires_at <= now))
            .map(|(id, _)| id)
            .collect()
    }

    pub async fn wait(&self) {
        self.expiry.wait().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(s: &Subscriptions, watcher: &str, presentity: &str) -> Subscription {
        let id = s.next_id();
        Subscription {
            id,
            presentity: Aor::parse(presentity).unwrap(),
            watcher: watcher.into(),
            call_id: format!("c{id}").into(),
            local_tag: "l".into(),
            remote_tag: "r".into(),
            local: "<sip:a@example.com>;tag=l".into(),
            remote: "<sip:w@example.com>;tag=r".into(),
            remote_target: "sip:w@192.0.2.1".into(),
            route_set: Vec::new(),
            contact: "<sip:a@example.com>".into(),
            event_id: None,
            target: Target::Udp("127.0.0.1:5060".parse().unwrap()),
            local_cseq: 0,
            remote_cseq: 1,
            expires_at: 1000,
            last_sent: None,
            scheduled: false,
        }
    }

    #[test]
    fn limits_per_watcher_and_per_presentity() {
        let s = Subscriptions::default();
        assert_eq!(
            s.insert(sub(&s, "bob", "sip:alice@example.com"), 2, 2),
            Ok(())
        );
        assert_eq!(
            s.insert(sub(&s, "bob", "sip:carol@example.com"), 2, 2),
            Ok(())
        );
        assert_eq!(
            s.insert(sub(&s, "bob", "sip:dave@example.com"), 2, 2),
            Err(Full::Watcher(2))
        );
        assert_eq!(
            s.insert(sub(&s, "eve", "sip:alice@example.com"), 2, 2),
            Ok(())
        );
        assert_eq!(
            s.insert(sub(&s, "mallory", "sip:alice@example.com"), 2, 2),
            Err(Full::Presentity(2))
        );
        // Refusals leave no trace behind.
        assert_eq!(s.len(), 3);
        assert!(!s.per_watcher.contains_key("mallory"));
        assert!(!s.watched(&Aor::parse("sip:dave@example.com").unwrap()));
    }

    #[test]
    fn removal_frees_every_index() {
        let s = Subscriptions::default();
        let a = sub(&s, "bob", "sip:alice@example.com");
        let (id, dialog) = (a.id, a.dialog());
        s.insert(a, 1, 1).unwrap();
        assert_eq!(s.find(&dialog), Some(id));
        assert!(s.remove(id).is_some());
        assert!(s.remove(id).is_none());
        assert_eq!(s.find(&dialog), None);
        assert!(s.is_empty() && s.per_watcher.is_empty() && s.by_presentity.is_empty());
        // The watcher may subscribe again.
        assert_eq!(
            s.insert(sub(&s, "bob", "sip:alice@example.com"), 1, 1),
            Ok(())
        );
    }

    #[test]
    fn a_closed_flow_yields_the_subscriptions_still_on_it() {
        let s = Subscriptions::default();
        let mut on5 = sub(&s, "bob", "sip:alice@example.com");
        on5.target = Target::Flow(5);
        let mut moved = sub(&s, "eve", "sip:alice@example.com");
        moved.target = Target::Flow(5);
        let mut on6 = sub(&s, "carol", "sip:alice@example.com");
        on6.target = Target::Flow(6);
        let (i5, im, i6) = (on5.id, moved.id, on6.id);
        for x in [on5, moved, on6] {
            s.insert(x, 9, 9).unwrap();
        }
        // eve refreshed over connection 6 since.
        s.with(im, |x| x.target = Target::Flow(6));
        s.note_flow(6, im);
        assert_eq!(s.take_flow(5), vec![i5]);
        assert!(s.take_flow(5).is_empty(), "taken once");
        let mut on_six = s.take_flow(6);
        on_six.sort();
        assert_eq!(on_six, vec![im, i6]);
    }

    #[test]
    fn only_due_and_unrefreshed_subscriptions_expire() {
        let s = Subscriptions::default();
        let a = sub(&s, "bob", "sip:alice@example.com");
        let b = sub(&s, "eve", "sip:alice@example.com");
        let (ia, ib) = (a.id, b.id);
        s.insert(a, 9, 9).unwrap();
        s.insert(b, 9, 9).unwrap();
        s.reschedule(ib, 2000);
        assert!(s.due(999).is_empty());
        assert_eq!(s.due(1000), vec![ia]);
        assert_eq!(s.due(2000), vec![ib]);
    }
}
