//! The transports, below everything that interprets SIP: they receive octets, frame and
//! parse them, and hand each message with its [`Context`] to a [`Receiver`]; answers and
//! sipreg's own requests go back through an [`Outbound`] handle or a flow id.
//!
//! - [`udp`]: one socket read by a few blocking threads, each datagram parsed in place.
//! - [`tcp`]: a task per connection, Content-Length framing with a bounded buffer,
//!   CRLF keep-alives (RFC 5626 §4.4.1), an idle timeout and a connection cap.
//! - [`tls`]: TCP's framing behind a TLS handshake, with a reloadable certificate.
//! - [`ws`]: SIP over WebSocket (RFC 7118), WS and WSS, one message per frame.
//! - [`Outbox`]: what is queued for one connection, written by the connection's task.
//! - [`Connections`]: the open connections (flows) by id, so later requests (NOTIFY) can
//!   go back over the connection a client registered or subscribed on, and the layers
//!   above learn when a flow closes; [`FlowIndex`] is what they keep per flow to act on it.
//!
//! - [`tap`]: what the message trace sees of the wire.
//!
//! Nothing here knows the server, the registrar or presence: they sit behind [`Receiver`].

mod flow_index;
mod outbox;
pub mod per_ip;
pub mod tap;
pub mod tcp;
pub mod timeouts;
pub mod tls;
pub mod udp;
pub mod ws;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use dashmap::DashMap;
use tokio_util::task::TaskTracker;

use crate::sip::{Limits, Message, ParseError};

pub use flow_index::{FlowIndex, Noted};
pub use outbox::{Outbox, OutboxTx, SendError};
pub use tap::{Direction, Tap, Tapped};
pub use timeouts::StreamTimeouts;

/// How a message reached sipreg (the Via transport token, RFC 3261 §18, RFC 7118 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
    Ws,
    Wss,
}

impl Transport {
    /// Every transport, in the order of their stored codes.
    pub const ALL: [Transport; 5] = [
        Transport::Udp,
        Transport::Tcp,
        Transport::Tls,
        Transport::Ws,
        Transport::Wss,
    ];

    /// The Via token: `UDP`, `TCP`, `TLS`, `WS`, `WSS`.
    pub fn via_token(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
            Transport::Ws => "WS",
            Transport::Wss => "WSS",
        }
    }

    /// Position in `[udp, tcp, tls, ws, wss]` (the order of `crate::metrics::TRANSPORTS`).
    pub fn index(self) -> usize {
        match self {
            Transport::Udp => 0,
            Transport::Tcp => 1,
            Transport::Tls => 2,
            Transport::Ws => 3,
            Transport::Wss => 4,
        }
    }

    /// The `transport=` URI parameter value and the stored name: `udp`, `tcp`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
            Transport::Ws => "ws",
            Transport::Wss => "wss",
        }
    }

    /// The inverse of [`Transport::as_str`] (any case).
    pub fn parse(s: &str) -> Option<Transport> {
        Transport::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s))
    }

    /// A small stable number for compact storage.
    pub fn code(self) -> u8 {
        match self {
            Transport::Udp => 0,
            Transport::Tcp => 1,
            Transport::Tls => 2,
            Transport::Ws => 3,
            Transport::Wss => 4,
        }
    }

    pub fn from_code(c: u8) -> Option<Transport> {
        Transport::ALL.get(usize::from(c)).copied()
    }

    /// Connection-oriented: answers go back over the connection, not to an address.
    pub fn is_stream(self) -> bool {
        self != Transport::Udp
    }

    /// Encrypted between the peer and sipreg (TLS or WebSocket over TLS).
    pub fn is_secure(self) -> bool {
        matches!(self, Transport::Tls | Transport::Wss)
    }

    /// WebSocket: the client can be reached only over its connection (RFC 7118 §5).
    pub fn is_websocket(self) -> bool {
        matches!(self, Transport::Ws | Transport::Wss)
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a message came from and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context {
    pub transport: Transport,
    /// The peer's address (the packet's source, or the connection's peer).
    pub source: SocketAddr,
    /// sipreg's own address the message arrived on.
    pub local: SocketAddr,
    /// The connection (flow) it arrived on, for answers and later requests back over it.
    pub connection: Option<u64>,
}

/// What the transports hand their messages to (the server core).
pub trait Receiver: Send + Sync + 'static {
    /// One parsed (or unparseable) message; answers go out through `out`.
    fn on_message(&self, parsed: Result<Message, ParseError>, ctx: Context, out: &Outbound);

    /// A connection closed: whatever was kept on it (WebSocket bindings, subscriptions)
    /// can go.
    fn on_flow_closed(&self, _id: u64, _transport: Transport) {}

    /// The tap shown every received message before it is parsed (the message trace).
    fn tap(&self) -> Option<&dyn Tap> {
        None
    }

    /// Shows `bytes`, received in `ctx`, to the tap when there is one.
    fn tap_received(&self, bytes: &Bytes, ctx: &Context) {
        if let Some(t) = self.tap() {
            t.tap(Tapped {
                direction: Direction::Received,
                transport: ctx.transport,
                local: ctx.local,
                peer: ctx.source,
                bytes: bytes.clone(),
            });
        }
    }
}

/// How to send octets back.
#[derive(Clone)]
pub enum Outbound {
    /// The shared UDP socket (blocking, so usable from any thread; with a 4 MiB send
    /// buffer a datagram send does not wait in practice).
    Udp(Arc<std::net::UdpSocket>),
    /// The writer of one connection (TCP, TLS or WebSocket: the writer frames).
    Stream(OutboxTx),
}

impl Outbound {
    /// Sends without waiting. UDP is lossy by nature; a connection whose writer is this
    /// far behind is closed by its reader when the queue is full.
    pub fn send(&self, bytes: Bytes, dest: SocketAddr) {
        match self {
            Outbound::Udp(sock) => {
                if let Err(e) = sock.send_to(&bytes, dest) {
                    tracing::debug!(%dest, error = %e, "UDP send failed");
                }
            }
            Outbound::Stream(tx) => {
                if tx.try_send(bytes).is_err() {
                    tracing::debug!(%dest, "connection writer queue full or closed");
                }
            }
        }
    }
}

/// An open connection (a flow, RFC 5626).
#[derive(Clone)]
pub struct Connection {
    pub transport: Transport,
    pub peer: SocketAddr,
    /// sipreg's address on this connection.
    pub local: SocketAddr,
    pub tx: OutboxTx,
}

/// Open connections by id.
#[derive(Default)]
pub struct Connections {
    next: AtomicU64,
    open: DashMap<u64, Connection>,
}

impl Connections {
    pub fn add(&self, conn: Connection) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        self.open.insert(id, conn);
        id
    }

    pub fn remove(&self, id: u64) -> Option<Connection> {
        self.open.remove(&id).map(|(_, c)| c)
    }

    pub fn get(&self, id: u64) -> Option<Connection> {
        self.open.get(&id).map(|c| c.clone())
    }

    /// The newest open connection from `peer`, if any.
    pub fn by_peer(&self, peer: SocketAddr) -> Option<(u64, Connection)> {
        self.open
            .iter()
            .filter(|c| c.peer == peer)
            .max_by_key(|c| *c.key())
            .map(|c| (*c.key(), c.value().clone()))
    }

    /// Open connections from `ip` (for per-address caps).
    pub fn count_from(&self, ip: std::net::IpAddr) -> usize {
        self.open.iter().filter(|c| c.peer.ip() == ip).count()
    }

    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// Open connections by transport, indexed by [`Transport::index`] (for metrics).
    pub fn by_transport(&self) -> [usize; 5] {
        let mut n = [0; 5];
        for c in self.open.iter() {
            n[c.transport.index()] += 1;
        }
        n
    }

    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }
}

/// What the connection-oriented transports share: where messages go, the open flows,
/// the parser's limits and the connection policy.
#[derive(Clone)]
pub struct Streams {
    pub receiver: Arc<dyn Receiver>,
    pub connections: Arc<Connections>,
    pub limits: Limits,
    /// Connection tasks, waited for at shutdown.
    pub tracker: TaskTracker,
    /// Open connections at most, per listener.
    pub max_connections: usize,
    /// The idle and message timeouts, read as each connection opens.
    pub timeouts: Arc<StreamTimeouts>,
}

impl Streams {
    /// Registers a new flow; the returned guard removes it and tells the receiver when
    /// dropped, however the connection ends.
    pub fn open(&self, conn: Connection) -> FlowGuard {
        let transport = conn.transport;
        let id = self.connections.add(conn);
        FlowGuard {
            id,
            transport,
            streams: self.clone(),
        }
    }
}

/// A registered flow; dropping it closes the flow for the layers above.
pub struct FlowGuard {
    pub id: u64,
    transport: Transport,
    streams: Streams,
}

impl Drop for FlowGuard {
    fn drop(&mut self) {
        self.streams.connections.remove(self.id);
        self.streams
            .receiver
            .on_flow_closed(self.id, self.transport);
    }
}

/// Binds UDP and TCP on the same address. With port 0 the TCP listener takes the port
/// the UDP socket got (retrying a few times if another program holds it).
pub fn bind_pair(
    addr: SocketAddr,
) -> std::io::Result<(std::net::UdpSocket, tokio::net::TcpListener)> {
    let mut last_err = None;
    for _ in 0..16 {
        let udp = udp::bind(addr)?;
        let port = udp.local_addr()?.port();
        match tcp::bind(SocketAddr::new(addr.ip(), port)) {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if addr.port() == 0 => last_err = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_err.unwrap_or_else(|| std::io::Error::other("could not bind UDP and TCP")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_names_and_codes_round_trip() {
        for t in Transport::ALL {
            assert_eq!(Transport::parse(t.as_str()), Some(t));
            assert_eq!(Transport::parse(t.via_token()), Some(t));
            assert_eq!(Transport::from_code(t.code()), Some(t));
        }
        assert_eq!(Transport::parse("sctp"), None);
        assert_eq!(Transport::from_code(5), None);
        assert!(Transport::Tls.is_secure() && Transport::Wss.is_secure());
        assert!(!Transport::Ws.is_secure() && !Transport::Tcp.is_secure());
        assert!(!Transport::Udp.is_stream() && Transport::Ws.is_stream());
    }
}
