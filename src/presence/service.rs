//! The presence service: the publications, the composed document of each AOR (cached for
//! the AORs someone watches, invalidated on every change) and the glue to the registrar's
//! binding events. PUBLISH lives in [`super::publish`], SUBSCRIBE and NOTIFY in
//! [`super::subscribe`] and [`super::notifier`].
//!
//! Every change that can alter an AOR's document (a publication added, replaced, removed
//! or expired; a binding added, removed or expired) goes through
//! [`PresenceService::changed`], which drops the cached document and lets the notifier
//! tell the watchers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use dashmap::DashMap;

use super::compose::{RegisteredDevice, compose};
use super::config::PresenceConfig;
use super::model::Presence;
use super::notifier::Notifier;
use super::publications::Publications;
use super::subscriptions::Subscriptions;
use crate::auth::sip::{Identity, Outcome, SipAuth};
use crate::clock::unix_now;
use crate::registrar::Domains;
use crate::registrar::{Aor, Change, Registrar};
use crate::sip::{Request, Response};
use crate::transaction::client::Uac;
use crate::transaction::user::Reply;
use crate::transport::Context;

/// The event package sipreg serves.
pub const EVENT: &str = "presence";

/// The presence service.
pub struct PresenceService {
    pub config: PresenceConfig,
    pub publications: Publications,
    pub subscriptions: Subscriptions,
    pub(crate) notifier: Notifier,
    pub(crate) registrar: Arc<Registrar>,
    pub(crate) auth: Option<Arc<SipAuth>>,
    domains: Domains,
    /// Printed documents of watched AORs: (version, body). A change gives the entry a
    /// new version and drops the body; a body computed before a change is not stored.
    docs: DashMap<Aor, (u64, Option<Bytes>)>,
    /// Versions are drawn from one counter, so an entry dropped and made again never
    /// repeats a version a composition in flight could have read.
    doc_versions: AtomicU64,
}

impl PresenceService {
    /// The service. `auth: None` accepts every request (lab use, like the registrar).
    pub fn new(
        config: PresenceConfig,
        domains: Vec<String>,
        auth: Option<Arc<SipAuth>>,
        registrar: Arc<Registrar>,
        uac: Arc<Uac>,
    ) -> Arc<PresenceService> {
        Arc::new(PresenceService {
            notifier: Notifier::new(uac, config.notify_interval()),
            subscriptions: Subscriptions::default(),
            publications: Publications::new(),
            config,
            registrar,
            auth,
            domains: Domains::new(domains),
            docs: DashMap::new(),
            doc_versions: AtomicU64::new(0),
        })
    }

    /// Starts the background work: publication and subscription expiry, and listening to
    /// the registrar's binding events. Abort the handles to stop.
    pub fn spawn(self: &Arc<Self>) -> Vec<tokio::task::JoinHandle<()>> {
        let me = Arc::clone(self);
        let expiry = tokio::spawn(async move {
            loop {
                me.publications.wait().await;
                for aor in me.publications.expire_due(unix_now()) {
                    tracing::debug!(%aor, "publication expired");
                    me.changed(&aor);
                }
            }
        });
        // Binding changes arrive inline from the registrar; a refresh changes nothing a
        // watcher sees, and an AOR nobody watches costs one map lookup.
        let weak = Arc::downgrade(self);
        if !self.registrar.set_listener(Box::new(move |ev| {
            if !matches!(ev.change, Change::Refreshed(_))
                && let Some(me) = weak.upgrade()
            {
                me.changed(&ev.aor);
            }
        })) {
            tracing::warn!(
                "the registrar already has a listener; presence will not see binding changes"
            );
        }
        let me = Arc::clone(self);
        let subs = tokio::spawn(async move { me.run_subscription_expiry().await });
        vec![expiry, subs]
    }

    pub(crate) fn serves(&self, host: &str) -> bool {
        self.domains.serves(host)
    }

    /// The domains served from now on (`[sip] domains`, SIGHUP).
    pub fn set_domains(&self, domains: Vec<String>) {
        self.domains.set(domains);
    }

    /// The presentity a request is about: its Request-URI as an AOR, in a served domain.
    pub(crate) fn presentity(&self, req: &Request) -> Result<Aor, Response> {
        let Some(u) = req.uri.as_sip() else {
            return Err(Response::new(416));
        };
        if !self.serves(&u.host) {
            return Err(Response::new(404).with_reason("Domain Not Served"));
        }
        Ok(Aor::from_uri(u))
    }

    /// Whether `id` is the user of `aor` (the registrar's rule: the user part is the name).
    pub(crate) fn owns(id: &Identity, aor: &Aor) -> bool {
        let user = aor
            .user()
            .map(|u| String::from_utf8_lossy(&crate::sip::text::unescape(u)).into_owned());
        user.as_deref() == Some(id.username.as_str())
    }

    /// Authenticates `req` for `scope`, then answers with `then` (synchronously when the
    /// credentials are cached or authentication is off, else as a task).
    pub(crate) fn with_identity(
        self: &Arc<Self>,
        req: Request,
        ctx: Context,
        scope: &'static str,
        then: impl FnOnce(&Arc<Self>, &Request, Option<&Identity>, Context) -> Response + Send + 'static,
    ) -> Reply {
        let Some(auth) = &self.auth else {
            return Reply::Now(then(self, &req, None, ctx));
        };
        match auth.quick(&req, scope, &ctx) {
            Some(Outcome::Refused(r)) => Reply::Now(r),
            Some(Outcome::Authenticated(id)) => Reply::Now(then(self, &req, Some(&id), ctx)),
            None => {
                let me = Arc::clone(self);
                let auth = Arc::clone(auth);
                Reply::Later(Box::pin(async move {
                    match auth.full(&req, scope, &ctx).await {
                        Outcome::Authenticated(id) => then(&me, &req, Some(&id), ctx),
                        Outcome::Refused(r) => r,
                    }
                }))
            }
        }
    }

    /// The composed document of `aor` now.
    pub fn document(&self, aor: &Aor) -> Presence {
        let now = unix_now();
        let pubs = self.publications.live(aor, now);
        let devices: Vec<RegisteredDevice> = self
            .registrar
            .table
            .get(aor, now)
            .iter()
            .map(RegisteredDevice::from)
            .collect();
        compose(aor.as_str(), &pubs, &devices, now)
    }

    /// The composed document of `aor` as PIDF octets, from the cache when it is current.
    pub fn pidf(&self, aor: &Aor) -> Bytes {
        let version = match self.docs.get(aor) {
            Some(e) => match &e.1 {
                Some(b) => return b.clone(),
                None => Some(e.0),
            },
            None => None,
        };
        let body = Bytes::from(self.document(aor).to_xml());
        if let Some(v) = version
            && let Some(mut e) = self.docs.get_mut(aor)
            && e.0 == v
        {
            e.1 = Some(body.clone());
        }
        body
    }

    fn next_version(&self) -> u64 {
        self.doc_versions.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Starts caching `aor`'s document (it has a watcher).
    pub(crate) fn watch(&self, aor: &Aor) {
        self.docs
            .entry(aor.clone())
            .or_insert_with(|| (self.next_version(), None));
    }

    /// Stops caching `aor`'s document (its last watcher left).
    pub(crate) fn unwatch(&self, aor: &Aor) {
        if !self.subscriptions.watched(aor) {
            self.docs.remove(aor);
        }
    }

    /// Something `aor`'s document is made of changed: drop the cached document and tell
    /// the watchers. The fan-out runs as a task of its own, so the request that caused
    /// the change is answered first and does not wait for a thousand NOTIFYs to be built.
    pub fn changed(self: &Arc<Self>, aor: &Aor) {
        if let Some(mut e) = self.docs.get_mut(aor) {
            e.0 = self.next_version();
            e.1 = None;
        }
        if self.subscriptions.watched(aor) {
            let me = Arc::clone(self);
            let aor = aor.clone();
            tokio::spawn(async move { me.notify_watchers(&aor) });
        }
    }
}
