//! A lane's socket or connection over any of the five transports, and the [`Dialer`]
//! that opens them: TCP, then the TLS handshake (TLS, WSS), then the WebSocket upgrade
//! (WS, WSS). The dialer is built once per run so TLS sessions are shared by the lanes.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::Instant;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;

use super::inbox::Inbox;
use super::plan::{Plan, Proto};
use super::{tcp, tls, udp, ws};

/// One open socket or connection.
pub enum Io {
    Udp {
        sock: UdpSocket,
        buf: Vec<u8>,
    },
    Tcp {
        read: OwnedReadHalf,
        write: OwnedWriteHalf,
        pending: Vec<u8>,
    },
    Tls {
        stream: Box<TlsStream<TcpStream>>,
        pending: Vec<u8>,
    },
    Ws(Box<WebSocketStream<TcpStream>>),
    Wss(Box<WebSocketStream<TlsStream<TcpStream>>>),
}

/// How a connection was opened: what the TLS handshake was and how long connecting took.
#[derive(Debug, Clone, Copy)]
pub struct Opened {
    pub local: SocketAddr,
    /// None without TLS; Some(true) when the session was resumed.
    pub resumed: Option<bool>,
    /// TCP connect + TLS handshake + WebSocket upgrade.
    pub took: Duration,
}

impl Io {
    pub async fn send(&mut self, msg: &[u8]) -> std::io::Result<()> {
        match self {
            Io::Udp { sock, .. } => sock.send(msg).await.map(|_| ()),
            Io::Tcp { write, .. } => write.write_all(msg).await,
            Io::Tls { stream, .. } => write_flush(stream.as_mut(), msg).await,
            Io::Ws(w) => ws::send(w, msg).await,
            Io::Wss(w) => ws::send(w, msg).await,
        }
    }

    /// Waits for what arrives next; cancel-safe (the lane selects it against its timers).
    pub async fn recv(&mut self, inbox: &mut Inbox) -> std::io::Result<()> {
        match self {
            Io::Udp { sock, buf } => udp::recv(sock, buf, inbox).await,
            Io::Tcp { read, pending, .. } => tcp::recv(read, pending, inbox).await,
            Io::Tls { stream, pending } => tcp::recv(stream.as_mut(), pending, inbox).await,
            Io::Ws(w) => ws::recv(w, inbox).await,
            Io::Wss(w) => ws::recv(w, inbox).await,
        }
    }

    /// Closes the connection politely (TLS close_notify, WebSocket close frame), so the
    /// server sees a client that hangs up rather than one that vanishes.
    pub async fn close(self) {
        // The connection is being dropped either way; its errors tell nothing.
        match self {
            Io::Udp { .. } => {}
            Io::Tcp { mut write, .. } => {
                let _ = write.shutdown().await;
            }
            Io::Tls { mut stream, .. } => {
                let _ = stream.shutdown().await;
            }
            Io::Ws(mut w) => {
                let _ = w.close(None).await;
            }
            Io::Wss(mut w) => {
                let _ = w.close(None).await;
            }
        }
    }
}

/// TLS buffers what is written; the flush puts the record on the wire now.
async fn write_flush<W: AsyncWrite + Unpin>(w: &mut W, msg: &[u8]) -> std::io::Result<()> {
    w.write_all(msg).await?;
    w.flush().await
}

/// Opens connections to the run's target.
#[derive(Clone)]
pub struct Dialer {
    proto: Proto,
    target: SocketAddr,
    tls: Option<tls::Client>,
    ws_url: String,
    origin: Option<String>,
    /// Spread over 127.0.0.1..=127.0.0.N (per lane) so tens of thousands of connections
    /// do not run out of ephemeral ports; 1 binds nothing.
    sources: u8,
}

impl Dialer {
    pub fn new(plan: &Plan) -> Result<Dialer, String> {
        let c = &plan.connect;
        let tls = if plan.proto.is_tls() {
            Some(tls::Client::new(c, &plan.target.ip().to_string())?)
        } else {
            None
        };
        Ok(Dialer {
            proto: plan.proto,
            target: plan.target,
            tls,
            ws_url: ws::url(
                plan.proto == Proto::Wss,
                &plan.target_hostport(),
                &c.ws_path,
            ),
            origin: c.origin.clone(),
            sources: c.sources.max(1),
        })
    }

    /// Opens lane `lane`'s socket or connection.
    pub async fn open(&self, lane: u32) -> std::io::Result<(Io, Opened)> {
        let t0 = Instant::now();
        let opened = |local, resumed| Opened {
            local,
            resumed,
            took: t0.elapsed(),
        };
        if self.proto == Proto::Udp {
            let sock = udp::connect(self.target).await?;
            let local = sock.local_addr()?;
            let io = Io::Udp {
                sock,
                buf: vec![0u8; 65_535],
            };
            return Ok((io, opened(local, None)));
        }
        let s = tcp::connect(self.target, self.source(lane)).await?;
        let local = s.local_addr()?;
        Ok(match (self.proto, &self.tls) {
            (Proto::Tcp, _) => {
                let (read, write) = s.into_split();
                let io = Io::Tcp {
                    read,
                    write,
                    pending: Vec::with_capacity(64 * 1024),
                };
                (io, opened(local, None))
            }
            (Proto::Ws, _) => {
                let w = ws::handshake(s, &self.ws_url, self.origin.as_deref()).await?;
                (Io::Ws(Box::new(w)), opened(local, None))
            }
            (Proto::Tls, Some(client)) => {
                let (stream, resumed) = client.handshake(s).await?;
                let io = Io::Tls {
                    stream: Box::new(stream),
                    pending: Vec::with_capacity(64 * 1024),
                };
                (io, opened(local, Some(resumed)))
            }
            (Proto::Wss, Some(client)) => {
                let (stream, resumed) = client.handshake(s).await?;
                let w = ws::handshake(stream, &self.ws_url, self.origin.as_deref()).await?;
                (Io::Wss(Box::new(w)), opened(local, Some(resumed)))
            }
            _ => return Err(std::io::Error::other("TLS is not configured")),
        })
    }

    /// The loopback source address of lane `lane` (None: let the kernel choose).
    fn source(&self, lane: u32) -> Option<SocketAddr> {
        match self.target {
            SocketAddr::V4(_) if self.sources > 1 => {
                let last = 1 + (lane % u32::from(self.sources)) as u8;
                Some(SocketAddr::from(([127, 0, 0, last], 0)))
            }
            _ => None,
        }
    }
}
