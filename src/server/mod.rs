//! The server: binds UDP and TCP on one address (and serves TLS when given a
//! [`TlsListener`] through [`Server::with_tls`], and the WebSocket listeners when
//! configured, [`websocket`]), turns each received message into a
//! [`dispatch::Decision`], runs server transactions, calls the [`Handler`], and sends the
//! answer back the way RFC 3261 §18.2.2 and RFC 3581 say (by default to the packet's source).
//!
//! Shutdown: [`Server::run`] stops receiving and accepting when its shutdown future
//! resolves, lets in-flight requests finish (bounded wait), and returns.

pub mod app;
pub mod dispatch;
pub mod observe;
pub mod pike;
pub mod reload;
pub mod websocket;

use std::future::Future;
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::sip::headers::HeaderName;
use crate::sip::{Limits, Message, ParseError};
use crate::transaction::client::Uac;
use crate::transaction::{Lookup, Transactions, TxKey};
use crate::transport::tls::{ReloadableAcceptor, TlsListener};
use crate::transport::{
    Connections, Direction, Outbound, Receiver, StreamTimeouts, Streams, Tap, Tapped, tcp, udp,
};

pub use crate::transaction::user::{Handler, NoServices, Reply, Services};
pub use crate::transport::{Context, Transport};
pub use dispatch::Decision;

/// Counters an operator (and the tests) can read.
#[derive(Debug, Default)]
pub struct Stats {
    /// Messages received (datagrams and framed stream messages).
    pub received: AtomicU64,
    /// Requests passed to the handler.
    pub handled: AtomicU64,
    /// Retransmissions answered or absorbed by the transaction table.
    pub retransmissions: AtomicU64,
    /// Messages that did not parse or validate.
    pub rejected: AtomicU64,
    /// Messages dropped without an answer.
    pub dropped: AtomicU64,
}

/// Everything the transports share.
pub struct Core {
    pub config: Config,
    pub limits: Limits,
    pub handler: Arc<dyn Handler>,
    pub transactions: Transactions,
    /// Client transactions: sipreg's own requests (NOTIFY) and their answers.
    pub uac: Arc<Uac>,
    pub connections: Arc<Connections>,
    pub stats: Stats,
    /// The listeners are serving (set by [`Server::run`], cleared when it stops): `/ready`.
    pub serving: std::sync::atomic::AtomicBool,
    /// The per-address request rate limit (`[limits]`; a rate of 0 passes everything).
    pub pike: pike::Pike,
    /// TCP/TLS idle and message timeouts (`[sip] tcp_idle_timeout_secs`, `[limits]
    /// sip_message_timeout_secs`), for connections opened from now on.
    pub stream_timeouts: Arc<StreamTimeouts>,
    tags: std::collections::hash_map::RandomState,
    pub(crate) tracker: TaskTracker,
    /// The message trace, when on ([`Core::set_tap`]).
    tap: OnceLock<Arc<dyn Tap>>,
    /// Itself, for the work a handler finishes later (the transports hold `&dyn Receiver`).
    me: Weak<Core>,
}

impl Core {
    pub fn new(config: Config, handler: Arc<dyn Handler>) -> Arc<Core> {
        let uac = Uac::new(Duration::from_millis(config.sip.t1_ms));
        Core::with_uac(config, handler, uac)
    }

    /// A core whose client transactions are `uac` (shared with the services that send
    /// requests).
    pub fn with_uac(config: Config, handler: Arc<dyn Handler>, uac: Arc<Uac>) -> Arc<Core> {
        let limits = Limits {
            max_message_size: config.sip.max_message_size,
            max_headers: config.sip.max_headers,
            max_header_line: config.sip.max_header_line,
        };
        let timer_j = Duration::from_millis(config.sip.t1_ms.saturating_mul(64));
        Arc::new_cyclic(|me| Core {
            limits,
            handler,
            transactions: Transactions::new(
                timer_j,
                config.sip.max_transactions,
                config.sip.transaction_memory_bytes,
            ),
            uac,
            connections: Arc::new(Connections::default()),
            stats: Stats::default(),
            serving: std::sync::atomic::AtomicBool::new(false),
            pike: pike::Pike::new(&config.limits),
            stream_timeouts: Arc::new(StreamTimeouts::new(
                config.sip.tcp_idle_timeout_secs,
                config.limits.sip_message_timeout_secs,
            )),
            tags: std::collections::hash_map::RandomState::new(),
            tracker: TaskTracker::new(),
            tap: OnceLock::new(),
            me: me.clone(),
            config,
        })
    }

    /// Shows every message received and sent (this core's answers, and the client
    /// transactions' requests) to `tap`; set once, before serving.
    pub fn set_tap(&self, tap: Arc<dyn Tap>) {
        self.uac.set_tap(Arc::clone(&tap));
        let _ = self.tap.set(tap);
    }

    /// Sends an answer through `out`, shown to the tap first.
    fn send_answer(&self, out: &Outbound, bytes: Bytes, dest: SocketAddr, ctx: Context) {
        if let Some(t) = self.tap.get() {
            t.tap(Tapped {
                direction: Direction::Sent,
                transport: ctx.transport,
                local: ctx.local,
                peer: dest,
                bytes: bytes.clone(),
            });
        }
        out.send(bytes, dest);
    }

    /// What the connection-oriented transports need of the core.
    pub fn streams(self: &Arc<Self>) -> Streams {
        Streams {
            receiver: Arc::clone(self) as Arc<dyn Receiver>,
            connections: Arc::clone(&self.connections),
            limits: self.limits,
            tracker: self.tracker.clone(),
            max_connections: self.config.sip.tcp_max_connections,
            timeouts: Arc::clone(&self.stream_timeouts),
        }
    }

    /// A To tag derived from the request, so every copy of a request gets the same tag
    /// even when answered statelessly.
    fn to_tag(&self, msg: &Message) -> String {
        let h = self.tags.hash_one((
            msg.headers.first(HeaderName::CallId).map(|v| v.as_bytes()),
            msg.headers.first(HeaderName::From).map(|v| v.as_bytes()),
            msg.headers.first(HeaderName::Via).map(|v| v.as_bytes()),
        ));
        hex16(h)
    }

    /// Where a UDP response goes: the source address with `force_rport` or `rport`,
    /// otherwise the source IP and the Via's sent-by port (RFC 3261 §18.2.2). `maddr` is
    /// never followed: sipreg answers only the address that spoke to it.
    fn udp_destination(&self, msg: &Message, source: SocketAddr) -> SocketAddr {
        if self.config.sip.force_rport {
            return source;
        }
        match msg.top_via() {
            Some(v) if v.rport().is_none() => SocketAddr::new(source.ip(), v.port.unwrap_or(5060)),
            _ => source,
        }
    }

    /// Where the answer to `msg` goes: over a connection back on it (its peer), over
    /// UDP as [`Core::udp_destination`] decides.
    fn destination(&self, msg: &Message, ctx: Context) -> SocketAddr {
        if ctx.transport.is_stream() {
            ctx.source
        } else {
            self.udp_destination(msg, ctx.source)
        }
    }

    /// Processes one message from any transport.
    pub fn on_message(
        self: &Arc<Self>,
        parsed: Result<Message, ParseError>,
        ctx: Context,
        out: &Outbound,
    ) {
        self.stats.received.fetch_add(1, Ordering::Relaxed);
        let send = |msg: &Message, bytes: Bytes| {
            self.send_answer(out, bytes, self.destination(msg, ctx), ctx);
        };
        // Responses answer sipreg's own requests (NOTIFY) and are matched to them below;
        // only requests (and what does not parse) spend the source's rate.
        let is_response = matches!(&parsed, Ok(m) if m.is_response());
        if !is_response {
            let p = &self.pike;
            match p.check(ctx.source.ip()) {
                pike::Verdict::Pass => {}
                verdict => {
                    self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                    if verdict == pike::Verdict::Reject
                        && let Ok(msg) = &parsed
                        && !msg.first_line.starts_with("ACK ")
                    {
                        let resp = crate::sip::Response::new(503)
                            .header("Retry-After", p.retry_after().to_string());
                        send(msg, resp.encode(msg, ctx.source, &self.to_tag(msg)));
                    }
                    return;
                }
            }
        }
        let parsed = match parsed {
            Ok(msg) if msg.is_response() => {
                if !self.uac.on_response(msg) {
                    self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(source = %ctx.source, "dropped a response matching no client transaction");
                }
                return;
            }
            other => other,
        };
        match dispatch::decide(parsed, &*self.handler) {
            Decision::Drop(why) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(source = %ctx.source, why, "dropped");
            }
            Decision::Stateless(msg, resp) => {
                if resp.status >= 400 {
                    self.stats.rejected.fetch_add(1, Ordering::Relaxed);
                }
                tracing::debug!(source = %ctx.source, status = resp.status, reason = %resp.reason, "stateless answer");
                let method = crate::metrics::labels::method_of_line(&msg.first_line);
                crate::metrics::sip_request(method, resp.status, ctx.transport.as_str());
                let bytes = resp.encode(&msg, ctx.source, &self.to_tag(&msg));
                send(&msg, bytes);
            }
            Decision::Respond(req, resp) => {
                let key = TxKey::of(&req, ctx.source);
                if !self.begin(&key, &req.msg, &send) {
                    return;
                }
                tracing::debug!(source = %ctx.source, method = %req.method, status = resp.status, "answer");
                let method = crate::metrics::labels::method(&req.method);
                crate::metrics::sip_request(method, resp.status, ctx.transport.as_str());
                let bytes = resp.encode(&req.msg, ctx.source, &self.to_tag(&req.msg));
                self.transactions
                    .complete(&key, bytes.clone(), ctx.transport.is_stream());
                send(&req.msg, bytes);
            }
            Decision::Handle(req) => {
                let key = TxKey::of(&req, ctx.source);
                if !self.begin(&key, &req.msg, &send) {
                    return;
                }
                self.stats.handled.fetch_add(1, Ordering::Relaxed);
                let msg = answer_fields(&req.msg);
                let method = req.method.clone();
                let label = crate::metrics::labels::method(&method);
                match self.handler.handle(*req, ctx) {
                    Reply::Now(resp) => {
                        tracing::debug!(source = %ctx.source, %method, status = resp.status, "handled");
                        crate::metrics::sip_request(label, resp.status, ctx.transport.as_str());
                        let bytes = resp.encode(&msg, ctx.source, &self.to_tag(&msg));
                        self.transactions
                            .complete(&key, bytes.clone(), ctx.transport.is_stream());
                        send(&msg, bytes);
                    }
                    Reply::Later(fut) => {
                        let core = Arc::clone(self);
                        let out = out.clone();
                        self.tracker.spawn(async move {
                            let resp = fut.await;
                            tracing::debug!(source = %ctx.source, %method, status = resp.status, "handled");
                            crate::metrics::sip_request(label, resp.status, ctx.transport.as_str());
                            let bytes = resp.encode(&msg, ctx.source, &core.to_tag(&msg));
                            core.transactions.complete(
                                &key,
                                bytes.clone(),
                                ctx.transport.is_stream(),
                            );
                            core.send_answer(&out, bytes, core.destination(&msg, ctx), ctx);
                        });
                    }
                }
            }
        }
    }

    /// Starts a transaction; `false` when the request was a retransmission (handled here).
    fn begin(&self, key: &TxKey, msg: &Message, send: &impl Fn(&Message, Bytes)) -> bool {
        match self.transactions.begin(key) {
            Lookup::New => true,
            Lookup::InProgress => {
                self.stats.retransmissions.fetch_add(1, Ordering::Relaxed);
                false
            }
            Lookup::Completed(bytes) => {
                self.stats.retransmissions.fetch_add(1, Ordering::Relaxed);
                send(msg, bytes);
                false
            }
        }
    }
}

impl Receiver for Core {
    fn on_message(&self, parsed: Result<Message, ParseError>, ctx: Context, out: &Outbound) {
        // The core is only ever built inside an Arc (Core::with_uac), so this upgrade
        // holds while any transport can call it.
        if let Some(me) = self.me.upgrade() {
            Core::on_message(&me, parsed, ctx, out);
        }
    }

    fn on_flow_closed(&self, id: u64, transport: Transport) {
        self.handler.flow_closed(id, transport);
    }

    fn tap(&self) -> Option<&dyn Tap> {
        self.tap.get().map(|t| &**t as &dyn Tap)
    }
}

/// What the answer to `msg` is built from once the handler has taken the request: the
/// start line and the fields [`Response::encode`](crate::sip::Response::encode), the To
/// tag and the destination read (Via, From, To, Call-ID, CSeq), in their order. Half the
/// fields of a REGISTER, and none of the long ones (Authorization, Contact).
fn answer_fields(msg: &Message) -> Message {
    Message {
        first_line: msg.first_line.clone(),
        headers: msg
            .headers
            .filtered(crate::sip::response::copied_from_request),
        body: Bytes::new(),
    }
}

/// `format!("{h:016x}")` without the formatting machinery (a tag per answer).
fn hex16(h: u64) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    (0..16)
        .map(|i| char::from(DIGITS[((h >> (60 - 4 * i)) & 0xf) as usize]))
        .collect()
}

/// A bound server, ready to run.
pub struct Server {
    core: Arc<Core>,
    udp: Arc<std::net::UdpSocket>,
    tcp: tokio::net::TcpListener,
    /// SIP over TLS, when a certificate is configured ([`Server::with_tls`]).
    tls: Option<TlsListener>,
    /// How often the TLS files are checked for changes.
    tls_poll: Option<Duration>,
    ws: websocket::WsListeners,
}

impl Server {
    /// Binds UDP and TCP on `config.sip.listen` (with port 0, both get the same free port).
    pub async fn bind(config: Config, handler: Arc<dyn Handler>) -> std::io::Result<Server> {
        let uac = Uac::new(Duration::from_millis(config.sip.t1_ms));
        Server::bind_with(config, handler, uac).await
    }

    /// Binds, and lends the sockets to `uac` so services can send requests from them.
    pub async fn bind_with(
        config: Config,
        handler: Arc<dyn Handler>,
        uac: Arc<Uac>,
    ) -> std::io::Result<Server> {
        let (udp, tcp) = crate::transport::bind_pair(config.sip.listen)?;
        let ws = websocket::WsListeners::bind(&config.websocket)?;
        let udp = Arc::new(udp);
        let core = Core::with_uac(config, handler, uac);
        core.uac
            .attach(Arc::clone(&udp), Arc::clone(&core.connections));
        if let Some(tracer) = crate::trace::Tracer::start(&core.config.trace)? {
            core.set_tap(tracer);
        }
        Ok(Server {
            core,
            udp,
            tcp,
            tls: None,
            tls_poll: None,
            ws,
        })
    }

    /// Serves SIP over TLS on `tls` too (bound by [`TlsListener::bind`]); its files are
    /// checked for changes every `config.tls.reload_poll_secs`. The WSS listener, when
    /// configured, serves the same certificate.
    pub fn with_tls(mut self, tls: Option<TlsListener>) -> Server {
        self.tls_poll = self.core.config.tls.reload_poll();
        if let Some(t) = &tls {
            let acceptor = Arc::clone(&t.acceptor);
            self.ws.set_tls(Arc::new(move || acceptor.acceptor()));
        }
        self.tls = tls;
        self
    }

    /// The TLS acceptor (reload it, or share it with another TLS listener).
    pub fn tls(&self) -> Option<Arc<ReloadableAcceptor>> {
        self.tls.as_ref().map(|t| Arc::clone(&t.acceptor))
    }

    /// Where SIP over TLS listens, when it does.
    pub fn sips_addr(&self) -> Option<SocketAddr> {
        self.tls.as_ref().and_then(TlsListener::local_addr)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.udp
            .local_addr()
            .unwrap_or_else(|_| self.core.config.sip.listen)
    }

    pub fn core(&self) -> Arc<Core> {
        Arc::clone(&self.core)
    }

    /// The WS listener's address, when `[websocket] ws_listen` is set.
    pub fn ws_addr(&self) -> Option<SocketAddr> {
        self.ws.ws_addr()
    }

    /// The WSS listener's address, when `[websocket] wss_listen` is set.
    pub fn wss_addr(&self) -> Option<SocketAddr> {
        self.ws.wss_addr()
    }

    /// The TLS side of WSS; without it a configured WSS listener is not served.
    pub fn set_wss_tls(&mut self, tls: crate::transport::ws::TlsAccept) {
        self.ws.set_tls(tls);
    }

    /// Serves until `shutdown` resolves, then drains in-flight work (at most 5 s).
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
        let stop = CancellationToken::new();
        let core = self.core;
        let udp_threads = udp::serve(
            Arc::clone(&core) as Arc<dyn Receiver>,
            Arc::clone(&self.udp),
            core.limits,
            stop.clone(),
            udp::thread_count(core.config.sip.udp_threads),
        )?;
        let tcp_task = tokio::spawn(tcp::serve(core.streams(), self.tcp, stop.clone()));
        let mut tls_tasks = Vec::new();
        if let Some(tls) = self.tls {
            if let Some(every) = self.tls_poll {
                tls_tasks.push(tokio::spawn(crate::transport::tls::reload::watch_files(
                    Arc::clone(&tls.acceptor),
                    every,
                    stop.clone(),
                )));
            }
            tls_tasks.push(tokio::spawn(tls.serve(core.streams(), stop.clone())));
        }
        let ws_tasks = self.ws.spawn(&core, &stop);
        let sweeper = {
            let core = Arc::clone(&core);
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(500));
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tick.tick() => core.transactions.expire(Instant::now()),
                    }
                }
            })
        };
        core.serving.store(true, Ordering::Release);
        shutdown.await;
        core.serving.store(false, Ordering::Release);
        tracing::info!("shutting down: no new requests, draining");
        stop.cancel();
        let _ = tokio::task::spawn_blocking(move || {
            for t in udp_threads {
                let _ = t.join();
            }
        })
        .await;
        let _ = tcp_task.await;
        for t in tls_tasks.into_iter().chain(ws_tasks) {
            let _ = t.await;
        }
        let _ = sweeper.await;
        core.tracker.close();
        if tokio::time::timeout(Duration::from_secs(5), core.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("in-flight requests still running after 5 s; exiting anyway");
        }
        Ok(())
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// `sipreg serve`: builds everything, logs where it listens, and runs until SIGINT or
/// SIGTERM. SIGHUP reloads the TLS certificate.
pub async fn run_until_signal(config: Config) -> std::io::Result<()> {
    run_until_signal_with(config, None, None).await
}

/// [`run_until_signal`], where SIGHUP also re-reads `config_file` and applies what can
/// change live, the log level through `log` ([`reload`]).
pub async fn run_until_signal_with(
    config: Config,
    config_file: Option<std::path::PathBuf>,
    log: Option<crate::logs::LogHandle>,
) -> std::io::Result<()> {
    let app = app::App::build(config)
        .await
        .map_err(std::io::Error::other)?;
    tracing::info!(
        sip = %app.sip_addr(),
        http = ?app.http_addr(),
        "sipreg listening (SIP on UDP and TCP, admin API on HTTP)"
    );
    match (app.sips_addr(), app.tls()) {
        (Some(addr), Some(tls)) => {
            tracing::info!(sips = %addr, cert = %tls.settings().cert_file.display(), "SIP over TLS listening (SIGHUP reloads the certificate)");
        }
        _ => tracing::info!("SIP over TLS is off (no [tls] cert_file configured)"),
    }
    if app.ws_addr().is_some() || app.wss_addr().is_some() {
        tracing::info!(ws = ?app.ws_addr(), wss = ?app.wss_addr(), "SIP over WebSocket listening");
    }
    reload::on_sighup(reload::Reloader::new(
        config_file,
        reload::Targets {
            log,
            auth: app.auth.clone(),
            tls: app.tls(),
            core: Some(app.sip.core()),
            registrar: Some(app.registrar.clone()),
            presence: Some(app.presence.clone()),
            validator: Some(app.users.validator()),
        },
    ));
    app.run(shutdown_signal()).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::{Response, parse_datagram};

    #[test]
    fn answers_from_the_kept_fields_are_the_same() {
        let raw = "REGISTER sip:example.com SIP/2.0\r\n\
                   Via: SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bK1;rport, SIP/2.0/TCP p;branch=z9hG4bK0\r\n\
                   Max-Forwards: 70\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:a@example.com>\r\n\
                   Contact: <sip:a@192.0.2.1:5070>\r\nVia: SIP/2.0/UDP q;branch=z9hG4bK2\r\n\
                   Call-ID: x@y\r\nCSeq: 1 REGISTER\r\nAuthorization: Bearer abc\r\n\
                   Content-Length: 0\r\n\r\n";
        let msg = parse_datagram(Bytes::from(raw), &Limits::default()).expect("parses");
        let kept = answer_fields(&msg);
        assert_eq!(kept.headers.len(), 6);
        let src: SocketAddr = "198.51.100.7:4000".parse().expect("addr");
        let resp = Response::new(200).header("Contact", "<sip:a@192.0.2.1:5070>;expires=60");
        assert_eq!(resp.encode(&kept, src, "t"), resp.encode(&msg, src, "t"));
    }

    #[test]
    fn hex16_is_zero_padded_lower_hex() {
        for h in [
            0,
            1,
            0xabc,
            0x0123_4567_89ab_cdef,
            u64::MAX,
            0x8000_0000_0000_0000,
        ] {
            assert_eq!(super::hex16(h), format!("{h:016x}"));
        }
    }
}
