//! UDP and TCP transports on one address.
//!
//! - [`udp`]: one socket read by a few blocking threads, each datagram parsed in place.
//! - [`tcp`]: a task per connection, Content-Length framing with a bounded buffer,
//!   CRLF keep-alives (RFC 5626 §4.4.1), an idle timeout and a connection cap.
//! - [`Connections`]: the open TCP connections by id, so later requests (NOTIFY) can go
//!   back over the connection a client registered or subscribed on.

pub mod tcp;
pub mod udp;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use dashmap::DashMap;
use tokio::sync::mpsc;

/// How to send octets back.
#[derive(Clone)]
pub enum Outbound {
    /// The shared UDP socket (blocking, so usable from any thread; with a 4 MiB send
    /// buffer a datagram send does not wait in practice).
    Udp(Arc<std::net::UdpSocket>),
    /// The writer of one TCP connection.
    Tcp(mpsc::Sender<Bytes>),
}

impl Outbound {
    /// Sends without waiting. UDP is lossy by nature; a TCP connection whose writer is
    /// this far behind is closed by its reader when the queue is full.
    pub fn send(&self, bytes: Bytes, dest: SocketAddr) {
        match self {
            Outbound::Udp(sock) => {
                if let Err(e) = sock.send_to(&bytes, dest) {
                    tracing::debug!(%dest, error = %e, "UDP send failed");
                }
            }
            Outbound::Tcp(tx) => {
                if tx.try_send(bytes).is_err() {
                    tracing::debug!(%dest, "TCP writer queue full or closed");
                }
            }
        }
    }
}

/// An open TCP connection.
#[derive(Clone)]
pub struct Connection {
    pub peer: SocketAddr,
    pub tx: mpsc::Sender<Bytes>,
}

/// Open TCP connections by id.
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

    pub fn remove(&self, id: u64) {
        self.open.remove(&id);
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

    pub fn len(&self) -> usize {
        self.open.len()
    }

    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
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
