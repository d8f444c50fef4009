//! SUBSCRIBE for `presence` (RFC 6665 §4.2.1, RFC 3856 §6): creating, refreshing and
//! ending subscriptions, each a dialog with sipreg as the UAS.
//!
//! Order: Request-URI domain (404; not for in-dialog requests, which are sent to sipreg's
//! own Contact) → authentication (401/403, scope `presence.read`) →
//! `Event` (489 + Allow-Events) → `Accept` without PIDF (406 + Accept) → `Expires` (400,
//! 423 + Min-Expires) → then
//!
//! - **in a dialog** (To has a tag): unknown dialog → 481; another watcher → 403; a CSeq
//!   not above the last → 500 (RFC 3261 §12.2.2); `Expires: 0` → 200 and a final NOTIFY
//!   `terminated;reason=timeout`; else 200 with the new Expires and a NOTIFY with the
//!   current state (RFC 6665 §4.2.1.2). The Contact, if given, becomes the new remote
//!   target.
//! - **new**: the policy (403, see below) → Contact (400 without exactly one SIP URI) →
//!   limits (403 over the watcher's, 503 + Retry-After over the presentity's) → 200 (never
//!   202) with a To tag, Expires and a Contact naming sipreg itself ([`own_contact`]: the
//!   address and transport the SUBSCRIBE arrived on), then an immediate NOTIFY. `Expires: 0` is
//!   a fetch: 200, one NOTIFY `terminated;reason=timeout` with the state, nothing kept.
//!
//! Policy: the owner and `admin` may always watch; `same-domain` lets any authenticated
//! user whose From is in the presentity's domain watch; `allow-all` anyone
//! authenticated; `owner-only` nobody else. A refused subscription is answered **403**
//! rather than accepted and terminated with `reason=rejected`: the watcher learns at once,
//! and no dialog is created for it. Subscribing to a user that does not exist is not
//! refused (the document then says `closed`), so SUBSCRIBE does not reveal who exists.
//!
//! An unsubscription's final NOTIFY says `reason=timeout`, as an expiry's does: an
//! `Expires: 0` SUBSCRIBE is a subscription whose expiry is now (the reading of RFC 6665
//! §4.2.1.4 the issue asks for; `deactivated`, `probation`, `rejected`, `noresource` and
//! `giveup` all mean something else to the watcher).

use std::sync::Arc;
use std::time::Duration;

use super::config::{Policy, granted};
use super::contact::own_contact;
use super::service::PresenceService;
use super::subscriptions::{Full, Subscription};
use crate::auth::sip::Identity;
use crate::clock::unix_now;
use crate::registrar::Aor;
use crate::sip::headers::{ContactValue, HeaderName, RecordRoute};
use crate::sip::{Request, Response, Uri};
use crate::transaction::client::Target;
use crate::transaction::user::Reply;
use crate::transport::Context;

/// The scope a SUBSCRIBE needs.
pub const SUBSCRIBE_SCOPE: &str = "presence.read";

/// How long the immediate NOTIFY waits so the 200 normally leaves first (RFC 6665
/// §4.1.2.4 allows either order; some user agents and sipp scenarios expect the 200).
const NOTIFY_AFTER_200: Duration = Duration::from_millis(2);

fn random_tag() -> String {
    let mut b = [0u8; 8];
    rand::fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The remote target: the one Contact's URI, which must be SIP or SIPS.
fn remote_target(req: &Request) -> Result<String, Response> {
    match req.contacts.as_slice() {
        [ContactValue::Addr(a)] if matches!(a.uri, Uri::Sip(_)) => Ok(a.uri.to_string()),
        [] => Err(Response::new(400).with_reason("SUBSCRIBE without Contact")),
        [_] => Err(Response::new(400).with_reason("Contact must be a SIP or SIPS URI")),
        _ => Err(Response::new(400).with_reason("SUBSCRIBE with more than one Contact")),
    }
}

/// Whether the SUBSCRIBE's `Accept` (absent: PIDF, RFC 3856 §6.7) allows
/// `application/pidf+xml`; `*/*` and `application/*` do.
fn accepts_pidf(req: &Request) -> bool {
    let mut fields = req.msg.headers.all(HeaderName::Accept).peekable();
    if fields.peek().is_none() {
        return true;
    }
    fields.any(|h| {
        crate::sip::text::split_commas(h.value).any(|range| {
            let media = range.split(';').next().unwrap_or("").trim();
            ["application/pidf+xml", "application/*", "*/*"]
                .iter()
                .any(|ok| media.eq_ignore_ascii_case(ok))
        })
    })
}

impl PresenceService {
    /// Handles a SUBSCRIBE.
    pub fn subscribe(self: &Arc<Self>, req: Request, ctx: Context) -> Reply {
        let aor = match self.presentity(&req) {
            Ok(a) => a,
            // An in-dialog request is sent to sipreg's Contact, whose host is sipreg's
            // address rather than a served domain: the dialog names the subscription.
            Err(_)
                if req.to.tag().is_some()
                    && let Some(u) = req.uri.as_sip() =>
            {
                Aor::from_uri(u)
            }
            Err(r) => return Reply::Now(r),
        };
        self.with_identity(req, ctx, SUBSCRIBE_SCOPE, move |me, req, id, ctx| {
            me.subscribe_as(req, aor, id, ctx)
        })
    }

    /// Whether the policy lets `id` (or, without authentication, the From address)
    /// watch `aor`.
    fn may_watch(&self, req: &Request, aor: &Aor, id: Option<&Identity>) -> bool {
        if let Some(id) = id
            && (Self::owns(id, aor) || id.is_admin())
        {
            return true;
        }
        let from = req.from.uri.as_sip().map(Aor::from_uri);
        match self.config.policy {
            Policy::AllowAll => true,
            Policy::SameDomain => from.is_some_and(|f| {
                f.host().eq_ignore_ascii_case(aor.host()) && self.serves(f.host())
            }),
            Policy::OwnerOnly => id.is_none() && from.as_ref() == Some(aor),
        }
    }

    fn subscribe_as(
        self: &Arc<Self>,
        req: &Request,
        aor: Aor,
        id: Option<&Identity>,
        ctx: Context,
    ) -> Response {
        let event_id: Option<Box<str>> = match super::publish::check_event(req) {
            Ok(e) => e.id().map(Into::into),
            Err(r) => return r,
        };
        if !accepts_pidf(req) {
            return Response::new(406).header("Accept", super::model::CONTENT_TYPE);
        }
        let asked = match req.expires() {
            None => None,
            Some(Ok(e)) => Some(e),
            Some(Err(())) => return Response::new(400).with_reason("Malformed Expires header"),
        };
        let c = &self.config;
        let expires = match granted(
            asked,
            c.subscribe_default_expires,
            c.subscribe_min_expires,
            c.subscribe_max_expires,
        ) {
            Ok(e) => e,
            Err(min) => return Response::new(423).header("Min-Expires", min.to_string()),
        };
        let watcher: Box<str> = match id {
            Some(id) => id.username.as_str().into(),
            None => req
                .from
                .uri
                .as_sip()
                .map(|u| Aor::from_uri(u).to_string())
                .unwrap_or_default()
                .into(),
        };
        let Some(remote_tag) = req.from.tag() else {
            return Response::new(400).with_reason("From without a tag");
        };
        if let Some(local_tag) = req.to.tag() {
            return self.refresh(req, remote_tag, local_tag, &watcher, expires, ctx);
        }
        if !self.may_watch(req, &aor, id) {
            return Response::new(403)
                .with_reason("Forbidden: not allowed to watch this presentity");
        }
        let target_uri = match remote_target(req) {
            Ok(t) => t,
            Err(r) => return r,
        };
        let route_set = match req.msg.headers.list::<RecordRoute>() {
            Ok(rr) => rr.into_iter().map(|r| r.0.to_string().into()).collect(),
            Err(e) => return Response::new(400).with_reason(e.to_string()),
        };
        let target = Target::back_to(&ctx);
        let local_tag = random_tag();
        let to_value = req
            .msg
            .headers
            .first(HeaderName::To)
            .map(|v| v.to_string())
            .unwrap_or_default();
        let from_value = req
            .msg
            .headers
            .first(HeaderName::From)
            .map(|v| v.to_string())
            .unwrap_or_default();
        let contact = match req.uri.as_sip() {
            Some(u) => own_contact(&ctx, u.user.as_ref()),
            None => return Response::new(416),
        };
        let sub = Subscription {
            id: self.subscriptions.next_id(),
            presentity: aor.clone(),
            watcher,
            call_id: Box::<str>::from(&*req.call_id),
            local_tag: local_tag.as_str().into(),
            remote_tag: remote_tag.into(),
            local: format!("{to_value};tag={local_tag}").into(),
            remote: from_value.into(),
            remote_target: target_uri.into(),
            route_set,
            contact: contact.as_str().into(),
            event_id,
            target,
            local_cseq: 0,
            remote_cseq: req.cseq.seq,
            expires_at: unix_now() + u64::from(expires),
            last_sent: None,
            scheduled: false,
        };
        let ok = Response::new(200)
            .with_to_tag(local_tag)
            .header("Expires", expires.to_string())
            .header("Contact", contact);
        if expires == 0 {
            // A fetch: the state once, no subscription kept.
            let me = Arc::clone(self);
            tokio::spawn(async move {
                tokio::time::sleep(NOTIFY_AFTER_200).await;
                me.notify_final(sub, "timeout");
            });
            return ok;
        }
        let sub_id = sub.id;
        self.watch(&aor);
        if let Err(full) = self.subscriptions.insert(
            sub,
            c.max_subscriptions_per_watcher,
            c.max_subscriptions_per_presentity,
        ) {
            self.unwatch(&aor);
            return match full {
                Full::Watcher(n) => Response::new(403)
                    .with_reason(format!("Too many subscriptions (at most {n} per watcher)")),
                Full::Presentity(n) => Response::new(503)
                    .with_reason(format!(
                        "Too many watchers of this presentity (at most {n})"
                    ))
                    .header("Retry-After", "60"),
            };
        }
        self.notify_soon(sub_id);
        ok
    }

    /// The immediate NOTIFY of a new or refreshed subscription, just after the 200.
    fn notify_soon(self: &Arc<Self>, id: u64) {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(NOTIFY_AFTER_200).await;
            me.notify_now(id);
        });
    }

    fn refresh(
        self: &Arc<Self>,
        req: &Request,
        remote_tag: &str,
        local_tag: &str,
        watcher: &str,
        expires: u32,
        ctx: Context,
    ) -> Response {
        let dialog = (
            Box::<str>::from(&*req.call_id),
            Box::<str>::from(remote_tag),
            Box::<str>::from(local_tag),
        );
        let Some(sub_id) = self.subscriptions.find(&dialog) else {
            return Response::new(481).with_reason("Subscription Does Not Exist");
        };
        let new_target = match req.contacts.is_empty() {
            true => None,
            false => match remote_target(req) {
                Ok(t) => Some(t),
                Err(r) => return r,
            },
        };
        enum Check {
            Ok,
            OtherWatcher,
            OldCSeq,
        }
        let check = self.subscriptions.with(sub_id, |s| {
            if &*s.watcher != watcher {
                return Check::OtherWatcher;
            }
            if req.cseq.seq <= s.remote_cseq {
                return Check::OldCSeq;
            }
            s.remote_cseq = req.cseq.seq;
            if let Some(t) = new_target {
                s.remote_target = t.into();
            }
            s.target = Target::back_to(&ctx);
            Check::Ok
        });
        match check {
            None => return Response::new(481).with_reason("Subscription Does Not Exist"),
            Some(Check::OtherWatcher) => {
                return Response::new(403).with_reason("Forbidden: not your subscription");
            }
            Some(Check::OldCSeq) => return Response::new(500).with_reason("CSeq out of order"),
            Some(Check::Ok) => {}
        }
        if let Target::Flow(flow) = Target::back_to(&ctx) {
            self.subscriptions.note_flow(flow, sub_id);
        }
        let ok = Response::new(200).header("Expires", expires.to_string());
        if expires == 0 {
            if let Some(sub) = self.subscriptions.remove(sub_id) {
                let aor = sub.presentity.clone();
                let me = Arc::clone(self);
                tokio::spawn(async move {
                    tokio::time::sleep(NOTIFY_AFTER_200).await;
                    me.notify_final(sub, "timeout");
                    me.unwatch(&aor);
                });
            }
            return ok;
        }
        self.subscriptions
            .reschedule(sub_id, unix_now() + u64::from(expires));
        self.notify_soon(sub_id);
        ok
    }
}
