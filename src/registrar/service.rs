//! The REGISTER handler: RFC 3261 §10.3 in order — served domain, authentication
//! (Bearer or Digest), authorization, the AOR, the contacts — then the answer listing
//! every binding, with persistence, expiry scheduling and change events on the side.
//!
//! With a cached Bearer token (or authentication off) the whole request is handled
//! synchronously; anything that needs the token validator or the store runs as a task.
//!
//! The store and the table agree on what was answered 200: in write-behind mode a
//! REGISTER's changes enter the table only together with their place in the bounded
//! write-behind queue (a full queue: 503, table untouched); in sync mode they enter the
//! table only after the store committed them (a failed write: 503, table untouched).

use std::hash::BuildHasher;
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;
use tokio::sync::broadcast;

use super::aor::Aor;
use super::binding::{Binding, Source};
use super::config::{Persistence, RegistrarConfig};
use super::domains::Domains;
use super::expiry::ExpiryQueue;
use super::persist::{Op, Persister};
use super::table::{Applied, BindingTable, Change, Refused, Update};
use crate::auth::sip::{Identity, Outcome, SipAuth};
use crate::clock::unix_now;
use crate::sip::headers::{Date, HeaderName, Path, Supported};
use crate::sip::{Method, Request, Response};
use crate::transaction::user::{Handler, Reply};
use crate::transport::{Context, FlowIndex, Transport};
use crate::users::UsersService;

/// A change to one AOR's bindings, as other services (presence) consume them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingEvent {
    pub aor: Aor,
    pub change: Change,
}

/// A function told of every binding change, on the thread that made it; it must not
/// block.
pub type Listener = Box<dyn Fn(&BindingEvent) + Send + Sync>;

/// The registrar service.
pub struct Registrar {
    pub table: BindingTable,
    expiry: ExpiryQueue<Aor>,
    events: broadcast::Sender<BindingEvent>,
    /// Called inline for every change (set once, by presence). Unlike a broadcast
    /// receiver it costs nothing when it has nothing to do: a receiver task would be
    /// woken, on another thread, for every REGISTER.
    listener: OnceLock<Listener>,
    persister: Option<Persister>,
    persistence: Persistence,
    /// The AORs registered over each open WebSocket flow (removed when it closes).
    flows: FlowIndex<Aor>,
    auth: Option<Arc<SipAuth>>,
    users: Option<Arc<UsersService>>,
    /// Expiry bounds, contact limit and Retry-After: replaced whole on reload (SIGHUP),
    /// read once per request.
    policy: ArcSwap<RegistrarConfig>,
    domains: Domains,
    /// Sync mode: REGISTERs of one AOR take turns from store write to table install, so
    /// two of them cannot store in one order and install in the other. Striped (AORs
    /// sharing a stripe also take turns) to keep the memory fixed whatever the traffic.
    turns: Box<[tokio::sync::Mutex<()>]>,
}

/// Stripes of [`Registrar::turns`].
const TURN_STRIPES: usize = 64;

/// The scope a REGISTER needs.
pub const REGISTER_SCOPE: &str = "sip.register";

impl Registrar {
    /// The write-behind queue: changes queued and the oldest one's age in seconds.
    pub fn write_behind(&self) -> (usize, f64) {
        self.persister.as_ref().map_or((0, 0.0), Persister::backlog)
    }

    /// The store's counters for metrics: changes dropped, REGISTERs refused, failed writes.
    pub fn store_counters(&self) -> [u64; 3] {
        self.persister
            .as_ref()
            .map_or([0; 3], |p| [p.dropped(), p.refused(), p.write_failures()])
    }

    /// A registrar. `auth: None` registers without authentication (lab use);
    /// `persister: None` keeps bindings in memory only.
    pub fn new(
        config: RegistrarConfig,
        domains: Vec<String>,
        auth: Option<Arc<SipAuth>>,
        users: Option<Arc<UsersService>>,
        persister: Option<Persister>,
    ) -> Arc<Registrar> {
        let (events, _) = broadcast::channel(4096);
        Arc::new(Registrar {
            table: BindingTable::new(),
            expiry: ExpiryQueue::default(),
            events,
            listener: OnceLock::new(),
            persister,
            persistence: config.persistence,
            flows: FlowIndex::default(),
            auth,
            users,
            policy: ArcSwap::from_pointee(config),
            domains: Domains::new(domains),
            turns: (0..TURN_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        })
    }

    /// Applies new policy to the REGISTERs that follow (SIGHUP): expiry bounds, the
    /// contact limit and its policy, Retry-After. Bindings are kept as they are (a
    /// lowered maximum applies from their next refresh). The persistence keys are fixed
    /// at start and ignored here.
    pub fn set_policy(&self, config: RegistrarConfig) {
        self.policy.store(Arc::new(config));
    }

    /// The domains served from now on (`[sip] domains`, SIGHUP).
    pub fn set_domains(&self, domains: Vec<String>) {
        self.domains.set(domains);
    }

    /// Binding changes as they happen.
    pub fn subscribe(&self) -> broadcast::Receiver<BindingEvent> {
        self.events.subscribe()
    }

    /// Sets the function told of every change, inline; `false` if one was set before.
    pub fn set_listener(&self, listener: Listener) -> bool {
        self.listener.set(listener).is_ok()
    }

    /// Puts loaded bindings into the table and schedules their expiry.
    pub fn restore(&self, loaded: Vec<(Aor, Binding)>) {
        for (aor, b) in loaded {
            self.restore_one(aor, b);
        }
    }

    /// Puts one loaded binding into the table and schedules its expiry. A WebSocket
    /// binding is dropped (and deleted from the store): its connection ended with the
    /// process that accepted it, so its contact cannot be reached any more.
    pub fn restore_one(&self, aor: Aor, b: Binding) {
        if b.source.transport.is_websocket() {
            tracing::debug!(%aor, uri = %b.uri, "stored WebSocket binding dropped: its connection is gone");
            if let Some(p) = &self.persister {
                p.enqueue([Op::of(&aor, &Change::Removed(b))]);
            }
            return;
        }
        if let Some(at) = self.table.restore(aor.clone(), b) {
            self.expiry.push(at, aor);
        }
    }

    /// Runs the expiry loop until the returned task is aborted.
    pub fn spawn_expiry(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                me.expiry.wait().await;
                let now = unix_now();
                for (at, aor) in me.expiry.take_due(now) {
                    let expired = me.table.expire_due(&aor, at, now);
                    if let Some(next) = expired.next {
                        me.expiry.push(next, aor.clone());
                    }
                    for b in &expired.gone {
                        tracing::debug!(%aor, uri = %b.uri, "binding expired");
                    }
                    let changes: Vec<Change> =
                        expired.gone.into_iter().map(Change::Expired).collect();
                    me.store_behind(&aor, &changes);
                    me.record(&aor, changes);
                }
            }
        })
    }

    /// Writes out what is queued (SIGTERM path).
    pub async fn flush(&self) {
        if let Some(p) = &self.persister {
            p.close().await;
        }
    }

    /// The store writer, for its queue depth and counters (metrics).
    pub fn persister(&self) -> Option<&Persister> {
        self.persister.as_ref()
    }

    /// The store writer when REGISTERs are stored before they are answered.
    fn sync_store(&self) -> Option<&Persister> {
        self.persister
            .as_ref()
            .filter(|_| self.persistence == Persistence::Sync)
    }

    /// Queues changes nobody waits for (expiry, a closed connection) in either mode.
    /// They are never refused: each removes a binding, so the queue cannot outgrow
    /// what the table held.
    fn store_behind(&self, aor: &Aor, changes: &[Change]) {
        if let Some(p) = &self.persister
            && !changes.is_empty()
        {
            p.enqueue(changes.iter().map(|c| Op::of(aor, c)));
        }
    }

    /// The answer when a REGISTER's changes cannot be stored now (RFC 3261 §21.5.4: a
    /// temporary condition; Retry-After says when to try again). 503 rather than 500:
    /// the client, or a proxy with another registrar, knows it may simply retry.
    fn unavailable(&self) -> Response {
        Response::new(503)
            .with_reason("Service Unavailable (bindings cannot be stored now)")
            .header(
                "Retry-After",
                self.policy.load().retry_after_secs.to_string(),
            )
    }

    /// Publishes changes (already stored or queued).
    fn record(&self, aor: &Aor, changes: Vec<Change>) {
        if changes.is_empty() {
            return;
        }
        // A WebSocket binding is noted on its flow; one whose flow closed while its
        // REGISTER was being processed is removed as soon as it is published.
        let mut closed = Vec::new();
        for c in &changes {
            if let Change::Added(b) | Change::Refreshed(b) = c
                && b.source.transport.is_websocket()
                && let Some(flow) = b.source.connection
                && !self.flows.note(flow, aor.clone())
                && !closed.contains(&flow)
            {
                closed.push(flow);
            }
        }
        for c in changes {
            let event = BindingEvent {
                aor: aor.clone(),
                change: c,
            };
            if let Some(listener) = self.listener.get() {
                listener(&event);
            }
            // Nobody subscribed is fine.
            let _ = self.events.send(event);
        }
        for flow in closed {
            self.remove_flow_bindings(aor, flow);
        }
    }

    /// A connection closed: the bindings registered over it, if it was a WebSocket, go
    /// (the client is reachable only over that connection, RFC 7118 §5). Each removal is
    /// stored and published like an unregistration, so presence recomposes.
    pub fn flow_closed(&self, flow: u64, transport: Transport) {
        if !transport.is_websocket() {
            return;
        }
        let Some(noted) = self.flows.take(flow) else {
            return;
        };
        let aors = if noted.overflowed {
            self.table.aors_on_flow(flow)
        } else {
            noted.items
        };
        for aor in aors {
            self.remove_flow_bindings(&aor, flow);
        }
    }

    /// Removes `aor`'s bindings on the closed WebSocket `flow`, stored and published.
    fn remove_flow_bindings(&self, aor: &Aor, flow: u64) {
        let gone = self.table.remove_flow(aor, flow);
        for b in &gone {
            tracing::debug!(%aor, uri = %b.uri, flow, "binding removed: its WebSocket closed");
        }
        let changes: Vec<Change> = gone.into_iter().map(Change::Removed).collect();
        // Nobody waits for this removal: written behind in either mode.
        self.store_behind(aor, &changes);
        self.record(aor, changes);
    }

    fn serves(&self, host: &str) -> bool {
        self.domains.serves(host)
    }

    /// Steps 1 and 5 that need no I/O: the domain and the AOR.
    fn target(&self, req: &Request) -> Result<Aor, Response> {
        if let Some(u) = req.uri.as_sip()
            && !self.serves(&u.host)
        {
            return Err(Response::new(404).with_reason("Domain Not Served"));
        }
        let Some(to) = req.to.uri.as_sip() else {
            return Err(Response::new(400).with_reason("The AOR in To must be a SIP or SIPS URI"));
        };
        let aor = Aor::from_uri(to);
        if !self.serves(aor.host()) {
            return Err(Response::new(404).with_reason("Domain Not Served"));
        }
        Ok(aor)
    }

    /// Step 4: the user may change only their own AOR, unless they hold `admin`.
    fn own_aor(id: &Identity, aor: &Aor) -> bool {
        let user = aor
            .user()
            .map(|u| String::from_utf8_lossy(&crate::sip::text::unescape(u)).into_owned());
        user.as_deref() == Some(id.username.as_str())
    }

    /// Steps 6–8: apply the contacts and build the answer.
    fn bind(&self, req: &Request, aor: &Aor, ctx: Context) -> (Response, Vec<Change>) {
        let now = unix_now();
        let supported: Vec<String> = req
            .msg
            .headers
            .list::<Supported>()
            .map(|v| v.into_iter().map(|s| s.0.to_ascii_lowercase()).collect())
            .unwrap_or_default();
        let path: Vec<Box<str>> = match req.msg.headers.list::<Path>() {
            Ok(p) => p
                .into_iter()
                .map(|p| p.0.to_string().into_boxed_str())
                .collect(),
            Err(_) => {
                return (
                    Response::new(400).with_reason("Malformed Path header"),
                    Vec::new(),
                );
            }
        };
        let up = Update {
            contacts: &req.contacts,
            expires: req.expires(),
            call_id: &req.call_id,
            cseq: req.cseq.seq,
            path: path.clone(),
            source: Source {
                transport: ctx.transport,
                addr: ctx.source,
                connection: ctx.connection,
            },
            user_agent: req.msg.headers.first(HeaderName::UserAgent),
        };
        let (bindings, changes) = match self.change_table(aor, &up, now) {
            Ok(applied) => {
                if let Some(at) = applied.schedule {
                    self.expiry.push(at, aor.clone());
                }
                (applied.bindings, applied.changes)
            }
            Err(Refused::BadRequest(why)) => {
                return (Response::new(400).with_reason(why), Vec::new());
            }
            Err(Refused::IntervalTooBrief(min)) => {
                return (
                    Response::new(423).header("Min-Expires", min.to_string()),
                    Vec::new(),
                );
            }
            Err(Refused::TooManyContacts(max)) => {
                return (
                    Response::new(403)
                        .with_reason(format!("Too many registrations (at most {max})")),
                    Vec::new(),
                );
            }
            Err(Refused::Unavailable) => return (self.unavailable(), Vec::new()),
        };
        let mut resp = Response::new(200);
        resp.headers.reserve(bindings.len() + 1);
        for b in &bindings {
            resp = resp.header("Contact", b.contact_value(now));
        }
        resp = resp.header("Date", Date::now_text());
        if supported.iter().any(|s| s == "path") {
            for p in &path {
                resp = resp.header("Path", p.to_string());
            }
        }
        let outbound = supported.iter().any(|s| s == "outbound")
            && req
                .contacts
                .iter()
                .any(|c| c.instance().is_some() && c.reg_id().is_some());
        if outbound {
            resp = resp.header("Require", "outbound");
        }
        (resp, changes)
    }

    /// Step 6's table change, by persistence mode: write-behind installs it only with
    /// its place in the queue; sync mode only plans it (stored first, installed after,
    /// by [`Registrar::bind_and_store`]); without a store it is installed at once.
    fn change_table(&self, aor: &Aor, up: &Update<'_>, now: u64) -> Result<Applied, Refused> {
        let limits = self.policy.load().limits();
        match (&self.persister, self.persistence) {
            (Some(_), Persistence::Sync) => self.table.plan(aor, up, &limits, now),
            (Some(p), Persistence::WriteBehind) => {
                self.table
                    .apply_if(aor, up, &limits, now, |changes| p.admit(aor, changes))
            }
            (None, _) | (Some(_), Persistence::Memory) => self.table.apply(aor, up, &limits, now),
        }
    }

    /// Step 4's answer when the user may not change `aor`.
    fn forbidden(id: Option<&Identity>, aor: &Aor) -> Option<Response> {
        let id = id?;
        (!Self::own_aor(id, aor) && !id.is_admin())
            .then(|| Response::new(403).with_reason("Forbidden: not your address-of-record"))
    }

    /// Steps 4–8 once the identity is known (`None`: authentication is off).
    fn proceed(
        self: &Arc<Self>,
        req: Request,
        aor: Aor,
        id: Option<&Identity>,
        ctx: Context,
    ) -> Reply {
        if let Some(r) = Self::forbidden(id, &aor) {
            return Reply::Now(r);
        }
        if self.sync_store().is_some() && !req.contacts.is_empty() {
            let me = Arc::clone(self);
            return Reply::Later(Box::pin(
                async move { me.bind_and_store(&req, &aor, ctx).await },
            ));
        }
        Reply::Now(self.bind_now(&req, &aor, ctx))
    }

    /// Binds without waiting on the store: write-behind (the changes are queued with the
    /// table change), memory only, or a sync-mode fetch, whose only changes drop expired
    /// bindings (written behind: an expired row left in the store is ignored by loads).
    fn bind_now(&self, req: &Request, aor: &Aor, ctx: Context) -> Response {
        let (resp, changes) = self.bind(req, aor, ctx);
        if self.sync_store().is_some() && !changes.is_empty() {
            if let Some(at) = self.table.install(aor, &changes) {
                self.expiry.push(at, aor.clone());
            }
            self.store_behind(aor, &changes);
        }
        self.record(aor, changes);
        resp
    }

    /// Binds in sync mode: the changes are planned, written, and only once the store
    /// committed them installed in the table and answered 200. Applying after the commit
    /// (rather than applying first and rolling back on failure) means nobody, not a
    /// concurrent fetch nor the admin API, ever sees a binding the store does not
    /// hold, and a rollback cannot undo a concurrent expiry or removal.
    async fn bind_and_store(&self, req: &Request, aor: &Aor, ctx: Context) -> Response {
        let Some(p) = self.sync_store() else {
            return self.bind_now(req, aor, ctx);
        };
        if req.contacts.is_empty() {
            return self.bind_now(req, aor, ctx);
        }
        let stripe =
            foldhash::fast::FixedState::default().hash_one(aor) as usize % self.turns.len();
        let _turn = self.turns[stripe].lock().await;
        let (resp, changes) = self.bind(req, aor, ctx);
        if changes.is_empty() {
            return resp;
        }
        let ops: Vec<Op> = changes.iter().map(|c| Op::of(aor, c)).collect();
        if let Err(e) = p.write_now(&ops).await {
            p.note_refused();
            // Refused for its content, the same request would fail again: no retry hint.
            let resp = if super::persist::rejects_content(&e) {
                Response::new(500).with_reason("Bindings could not be saved")
            } else {
                self.unavailable()
            };
            tracing::error!(
                error = %e,
                %aor,
                status = resp.status,
                "REGISTER refused: its bindings could not be saved (sync mode); nothing changed"
            );
            return resp;
        }
        if let Some(at) = self.table.install(aor, &changes) {
            self.expiry.push(at, aor.clone());
        }
        self.record(aor, changes);
        resp
    }

    /// Handles a REGISTER.
    pub fn register(self: &Arc<Self>, req: Request, ctx: Context) -> Reply {
        let aor = match self.target(&req) {
            Ok(a) => a,
            Err(r) => return Reply::Now(r),
        };
        let Some(auth) = &self.auth else {
            return self.proceed(req, aor, None, ctx);
        };
        match auth.quick(&req, REGISTER_SCOPE, &ctx) {
            Some(Outcome::Refused(r)) => Reply::Now(r),
            Some(Outcome::Authenticated(id)) if Self::own_aor(&id, &aor) || !id.is_admin() => {
                self.proceed(req, aor, Some(&id), ctx)
            }
            // An admin registering someone else's AOR, or credentials to check: async.
            _ => {
                let me = Arc::clone(self);
                let auth = Arc::clone(auth);
                Reply::Later(Box::pin(async move {
                    let id = match auth.full(&req, REGISTER_SCOPE, &ctx).await {
                        Outcome::Authenticated(id) => id,
                        Outcome::Refused(r) => return r,
                    };
                    if !Self::own_aor(&id, &aor) && id.is_admin() && !me.user_exists(&aor).await {
                        return Response::new(404).with_reason("No Such User");
                    }
                    if let Some(r) = Self::forbidden(Some(&id), &aor) {
                        return r;
                    }
                    me.bind_and_store(&req, &aor, ctx).await
                }))
            }
        }
    }

    async fn user_exists(&self, aor: &Aor) -> bool {
        let (Some(users), Some(user)) = (&self.users, aor.user()) else {
            return false;
        };
        let name = String::from_utf8_lossy(&crate::sip::text::unescape(user)).into_owned();
        users.get_user_by_name(&name).await.is_ok()
    }
}

/// The SIP-facing handler wrapping the registrar.
pub struct RegistrarHandler(pub Arc<Registrar>);

impl Handler for RegistrarHandler {
    fn methods(&self) -> &[Method] {
        &[Method::Register]
    }

    fn supported(&self) -> &[&'static str] {
        &["path", "outbound"]
    }

    fn handle(&self, req: Request, ctx: Context) -> Reply {
        self.0.register(req, ctx)
    }

    fn flow_closed(&self, id: u64, transport: Transport) {
        self.0.flow_closed(id, transport);
    }
}
