//! NOTIFY (RFC 6665 §4.2.2, RFC 3856 §6.7) sent by sipreg as a UAC over the subscription's
//! dialog (RFC 3261 §12.2.1.1: Request-URI the remote target, Route the route set, CSeq
//! one more each time), through the [`Uac`]'s non-INVITE client transactions.
//!
//! - **Where**: over the watcher's TCP connection when the SUBSCRIBE came over TCP, else
//!   over UDP to the SUBSCRIBE's source address (NAT-friendly, like the core's
//!   `force_rport`). The Contact's host is never resolved: sipreg does no DNS.
//! - **Coalescing**: a watcher gets at most one NOTIFY per `notify_interval`; a change
//!   within the interval schedules one NOTIFY at its end, which carries the state of the
//!   moment it is sent. The first NOTIFY of a subscription and the one after a refresh
//!   go at once (RFC 6665 §4.2.1.2).
//! - **Routing**: the route set is sent as loose routing (RFC 3261 §16.12), the remote
//!   target staying the Request-URI; a strict router (a first route without `lr`) is
//!   not rewritten for, as sipreg does not talk to RFC 2543 proxies.
//! - **Failure**: a 481, a 408, Timer F or a closed TCP connection removes the
//!   subscription (RFC 6665 §4.2.2); other failures are logged.
//!
//! The subscription's lock is held only to read and bump its CSeq; the send is awaited
//! in a task of its own.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::model::CONTENT_TYPE;
use super::service::{EVENT, PresenceService};
use super::subscriptions::Subscription;
use crate::clock::unix_now;
use crate::sip::Method;
use crate::transaction::client::{ClientError, OutgoingRequest, Uac};

/// What the Subscription-State of a NOTIFY says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubState {
    Active,
    /// `terminated;reason=...`
    Terminated(&'static str),
}

/// What a change does to one subscription.
enum Plan {
    Now,
    At(Instant),
    Nothing,
}

/// Counters of the notifier.
#[derive(Debug, Default)]
pub struct NotifyStats {
    /// NOTIFY requests started.
    pub sent: AtomicU64,
    /// Subscriptions removed because their watcher failed (481, 408, timeout, TCP gone).
    pub dropped: AtomicU64,
}

/// The sending side: the UAC and the coalescing interval.
pub struct Notifier {
    pub(crate) uac: Arc<Uac>,
    pub(crate) interval: Duration,
    pub stats: NotifyStats,
}

impl Notifier {
    pub fn new(uac: Arc<Uac>, interval: Duration) -> Notifier {
        Notifier {
            uac,
            interval,
            stats: NotifyStats::default(),
        }
    }
}

/// The NOTIFY of `sub` (its CSeq already bumped) with `state` and `body`.
pub fn build(sub: &Subscription, state: SubState, body: Bytes, now: u64) -> OutgoingRequest {
    let mut headers: Vec<(String, String)> = Vec::with_capacity(8 + sub.route_set.len());
    for r in &sub.route_set {
        headers.push(("Route".into(), r.to_string()));
    }
    headers.push(("From".into(), sub.local.to_string()));
    headers.push(("To".into(), sub.remote.to_string()));
    headers.push(("Call-ID".into(), sub.call_id.to_string()));
    headers.push(("CSeq".into(), format!("{} NOTIFY", sub.local_cseq)));
    headers.push(("Contact".into(), sub.contact.to_string()));
    let event = match &sub.event_id {
        Some(id) => format!("{EVENT};id={id}"),
        None => EVENT.to_string(),
    };
    headers.push(("Event".into(), event));
    let ss = match state {
        SubState::Active => format!("active;expires={}", sub.expires_at.saturating_sub(now)),
        SubState::Terminated(reason) => format!("terminated;reason={reason}"),
    };
    headers.push(("Subscription-State".into(), ss));
    OutgoingRequest {
        method: Method::Notify,
        uri: sub.remote_target.to_string(),
        headers,
        body: Some((CONTENT_TYPE.to_string(), body)),
    }
}

impl PresenceService {
    /// A change to `aor`: every watcher gets a NOTIFY now or at the end of its interval.
    pub(crate) fn notify_watchers(self: &Arc<Self>, aor: &crate::registrar::Aor) {
        for id in self.subscriptions.of(aor) {
            self.schedule_notify(id);
        }
    }

    /// Sends subscription `id` a NOTIFY now if its interval has passed, else once at its
    /// end (unless one is already scheduled).
    pub(crate) fn schedule_notify(self: &Arc<Self>, id: u64) {
        let interval = self.notifier.interval;
        let now = Instant::now();
        let plan = self.subscriptions.with(id, |s| {
            if s.scheduled {
                return Plan::Nothing;
            }
            match s.last_sent.map(|t| t + interval).filter(|d| *d > now) {
                Some(at) => {
                    s.scheduled = true;
                    Plan::At(at)
                }
                None => Plan::Now,
            }
        });
        match plan {
            Some(Plan::Now) => self.notify_now(id),
            Some(Plan::At(at)) => {
                let me = Arc::clone(self);
                tokio::spawn(async move {
                    tokio::time::sleep_until(at.into()).await;
                    me.notify_now(id);
                });
            }
            // Gone, or a NOTIFY is already scheduled.
            Some(Plan::Nothing) | None => {}
        }
    }

    /// Sends subscription `id` a NOTIFY with the current state, whatever the interval.
    pub(crate) fn notify_now(self: &Arc<Self>, id: u64) {
        let Some(presentity) = self.subscriptions.with(id, |s| s.presentity.clone()) else {
            return;
        };
        // Composed outside the subscription's lock.
        let body = self.pidf(&presentity);
        let now = unix_now();
        let req = self.subscriptions.with(id, |s| {
            s.local_cseq += 1;
            s.last_sent = Some(Instant::now());
            s.scheduled = false;
            (build(s, SubState::Active, body, now), s.target)
        });
        let Some((req, target)) = req else {
            return;
        };
        self.notifier.stats.sent.fetch_add(1, Ordering::Relaxed);
        let me = Arc::clone(self);
        let send = self.notifier.uac.send(req, target);
        tokio::spawn(async move {
            let outcome = send.await;
            me.after_notify(id, outcome);
        });
    }

    /// Sends the final NOTIFY of a subscription already removed from the store.
    pub(crate) fn notify_final(self: &Arc<Self>, mut sub: Subscription, reason: &'static str) {
        sub.local_cseq += 1;
        let body = self.pidf(&sub.presentity);
        let req = build(&sub, SubState::Terminated(reason), body, unix_now());
        self.notifier.stats.sent.fetch_add(1, Ordering::Relaxed);
        let send = self.notifier.uac.send(req, sub.target);
        tokio::spawn(async move {
            if let Err(e) = send.await {
                tracing::debug!(error = ?e, "final NOTIFY not answered");
            }
        });
    }

    fn after_notify(
        self: &Arc<Self>,
        id: u64,
        outcome: Result<crate::transaction::client::ClientResponse, ClientError>,
    ) {
        let gone = match &outcome {
            Ok(r) if r.status < 300 => false,
            Ok(r) if r.status == 481 || r.status == 408 => true,
            Ok(r) => {
                tracing::debug!(status = r.status, "NOTIFY refused; subscription kept");
                false
            }
            Err(ClientError::Timeout) | Err(ClientError::NoConnection) => true,
            Err(e) => {
                tracing::warn!(error = ?e, "NOTIFY not sent");
                false
            }
        };
        if gone && let Some(sub) = self.subscriptions.remove(id) {
            self.notifier.stats.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(presentity = %sub.presentity, outcome = ?outcome.as_ref().map(|r| r.status), "watcher gone; subscription removed");
            self.unwatch(&sub.presentity);
        }
    }

    /// Ends subscriptions as they expire, each with a final NOTIFY (`reason=timeout`).
    pub(crate) async fn run_subscription_expiry(self: Arc<Self>) {
        loop {
            self.subscriptions.wait().await;
            for id in self.subscriptions.due(unix_now()) {
                if let Some(sub) = self.subscriptions.remove(id) {
                    tracing::debug!(presentity = %sub.presentity, "subscription expired");
                    let aor = sub.presentity.clone();
                    self.notify_final(sub, "timeout");
                    self.unwatch(&aor);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registrar::Aor;
    use crate::transaction::client::Target;

    #[test]
    fn notify_follows_the_dialog() {
        let sub = Subscription {
            id: 1,
            presentity: Aor::parse("sip:alice@example.com").unwrap(),
            watcher: "bob".into(),
            call_id: "c1".into(),
            local_tag: "l1".into(),
            remote_tag: "r1".into(),
            local: "<sip:alice@example.com>;tag=l1".into(),
            remote: "\"Bob\" <sip:bob@example.com>;tag=r1".into(),
            remote_target: "sip:bob@192.0.2.7:5070".into(),
            route_set: vec![
                "<sip:p1.example.com;lr>".into(),
                "<sip:p2.example.com;lr>".into(),
            ],
            contact: "<sip:alice@example.com>".into(),
            event_id: Some("7".into()),
            target: Target::Udp("127.0.0.1:5070".parse().unwrap()),
            local_cseq: 3,
            remote_cseq: 1,
            expires_at: 1600,
            last_sent: None,
            scheduled: false,
        };
        let req = build(&sub, SubState::Active, Bytes::from_static(b"<x/>"), 1000);
        assert_eq!(req.method, Method::Notify);
        assert_eq!(req.uri, "sip:bob@192.0.2.7:5070");
        let h = |n: &str| -> Vec<&str> {
            req.headers
                .iter()
                .filter(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
                .collect()
        };
        assert_eq!(
            h("Route"),
            ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
        );
        assert_eq!(h("From"), ["<sip:alice@example.com>;tag=l1"]);
        assert_eq!(h("To"), ["\"Bob\" <sip:bob@example.com>;tag=r1"]);
        assert_eq!(h("CSeq"), ["3 NOTIFY"]);
        assert_eq!(h("Event"), ["presence;id=7"]);
        assert_eq!(h("Subscription-State"), ["active;expires=600"]);
        assert_eq!(req.body.as_ref().map(|b| b.0.as_str()), Some(CONTENT_TYPE));
        let end = build(&sub, SubState::Terminated("timeout"), Bytes::new(), 1000);
        assert!(end.headers.contains(&(
            "Subscription-State".into(),
            "terminated;reason=timeout".into()
        )));
    }
}
