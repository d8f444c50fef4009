//! SIP over WebSocket (RFC 7118): the accept loop shared by WS and WSS. A WSS listener
//! is the same code with a TLS handshake in front ([`TlsAccept`]); after the upgrade
//! ([`upgrade`]) each connection runs as a flow (`session`) whose frames each carry
//! one SIP message.
//!
//! Refusals: a connection over the per-address cap or the listener's cap is closed
//! before any handshake; a TLS or upgrade handshake that does not finish within
//! [`HANDSHAKE_TIMEOUT`] is dropped; the upgrade's own refusals are HTTP answers
//! (see [`upgrade`]).

pub mod config;
mod session;
pub mod upgrade;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::per_ip::PerIp;
use super::{Streams, Transport};
pub use config::WebSocketConfig;

/// The TLS side of a WSS listener: called for every connection, so a reloaded
/// certificate is used from the next connection on.
pub type TlsAccept = Arc<dyn Fn() -> tokio_rustls::TlsAcceptor + Send + Sync>;

/// How long a new connection has to finish its TLS and WebSocket handshakes.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The WebSocket policy of a listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsSettings {
    /// Origins allowed to upgrade (`scheme://host[:port]`, compared without case). Empty:
    /// any. A request without `Origin` (not a browser) is always allowed.
    pub origins: Vec<String>,
    /// Largest SIP message (and frame) accepted, in octets; larger closes with 1009.
    pub max_message_size: usize,
    /// A WebSocket ping is sent after this long without traffic from the peer.
    pub ping_interval: Duration,
    /// A connection with no frame from the peer (not even a pong) for this long is closed.
    pub idle_timeout: Duration,
    /// Open WebSocket connections from one IP address at most, on this listener.
    pub max_connections_per_ip: usize,
}

impl Default for WsSettings {
    fn default() -> Self {
        WsSettings {
            origins: Vec::new(),
            max_message_size: 65_536,
            ping_interval: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(90),
            max_connections_per_ip: 100,
        }
    }
}

/// Accepts WebSocket connections until `stop` is cancelled: WS when `tls` is `None`, WSS
/// otherwise. At most `streams.max_connections` at once.
pub async fn serve(
    streams: Streams,
    listener: TcpListener,
    tls: Option<TlsAccept>,
    settings: WsSettings,
    stop: CancellationToken,
) {
    let transport = if tls.is_some() {
        Transport::Wss
    } else {
        Transport::Ws
    };
    let settings = Arc::new(settings);
    let slots = Arc::new(Semaphore::new(streams.max_connections));
    let per_ip = Arc::new(PerIp::new(settings.max_connections_per_ip));
    loop {
        let Some((stream, peer)) = super::tcp::accept(&listener, &stop, transport).await else {
            return;
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::warn!(%peer, %transport, "connection refused: connection limit reached");
            continue;
        };
        let Some(ip_slot) = per_ip.enter(peer.ip()) else {
            tracing::warn!(%peer, %transport, "connection refused: too many connections from this address");
            continue;
        };
        let Ok(local) = stream.local_addr() else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (streams2, settings, tls, stop) = (
            streams.clone(),
            Arc::clone(&settings),
            tls.clone(),
            stop.clone(),
        );
        streams.tracker.spawn(async move {
            let link = Link {
                transport,
                peer,
                local,
            };
            match tls {
                None => accept(streams2, stream, link, &settings, stop).await,
                Some(tls) => {
                    let acceptor = tls();
                    let handshake =
                        tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
                    crate::metrics::tls_handshake(matches!(handshake, Ok(Ok(_))));
                    match handshake {
                        Ok(Ok(s)) => accept(streams2, s, link, &settings, stop).await,
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
            drop(ip_slot);
            drop(permit);
        });
    }
}

/// The addresses and transport of one connection.
#[derive(Debug, Clone, Copy)]
struct Link {
    transport: Transport,
    peer: SocketAddr,
    local: SocketAddr,
}

/// The WebSocket upgrade, then the session.
async fn accept<S>(
    streams: Streams,
    stream: S,
    link: Link,
    settings: &WsSettings,
    stop: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let check = upgrade::Check::new(&settings.origins, link.peer);
    // SIP messages are small: an 8 KiB read buffer per connection instead of 128 KiB.
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .max_message_size(Some(settings.max_message_size))
        .max_frame_size(Some(settings.max_message_size));
    let ws = tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        tokio_tungstenite::accept_hdr_async_with_config(stream, check, Some(config)),
    )
    .await;
    match ws {
        Ok(Ok(ws)) => session::run(streams, ws, link, settings, stop).await,
        Ok(Err(e)) => tracing::debug!(peer = %link.peer, error = %e, "WebSocket upgrade failed"),
        Err(_) => tracing::debug!(peer = %link.peer, "WebSocket upgrade timed out"),
    }
}
