//! The TLS accept loop. Each accepted TCP connection takes a listener-wide slot and a
//! slot of its IP address before anything else, holds both through the handshake (so
//! connections that never finish one count too), gets [`TlsLimits::handshake_timeout`]
//! to finish it, then runs as a Content-Length-framed SIP connection like TCP.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::acceptor::{ReloadableAcceptor, TlsError};
use super::config::TlsConfig;
use crate::transport::per_ip::PerIp;
use crate::transport::{Streams, Transport, tcp};

/// The listener's connection policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsLimits {
    pub handshake_timeout: Duration,
    pub max_connections_per_ip: usize,
    pub max_connections: usize,
}

/// A bound TLS listener and its acceptor, ready to serve.
pub struct TlsListener {
    pub acceptor: Arc<ReloadableAcceptor>,
    pub listener: TcpListener,
    pub limits: TlsLimits,
}

impl TlsListener {
    /// Loads the certificate and binds `config.listen`; `None` when no certificate is
    /// configured (TLS off).
    pub fn bind(config: &TlsConfig) -> Result<Option<TlsListener>, TlsError> {
        let Some(settings) = config.settings()? else {
            return Ok(None);
        };
        let acceptor = ReloadableAcceptor::load(&settings)?;
        let listener = tcp::bind(config.listen).map_err(|source| TlsError::Bind {
            addr: config.listen,
            source,
        })?;
        Ok(Some(TlsListener {
            acceptor,
            listener,
            limits: config.limits(),
        }))
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Accepts until `stop` is cancelled.
    pub async fn serve(self, streams: Streams, stop: CancellationToken) {
        serve(streams, self.listener, self.acceptor, self.limits, stop).await
    }
}

/// Accepts TLS connections until `stop` is cancelled.
pub async fn serve(
    streams: Streams,
    listener: TcpListener,
    acceptor: Arc<ReloadableAcceptor>,
    limits: TlsLimits,
    stop: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let per_ip = Arc::new(PerIp::new(limits.max_connections_per_ip));
    loop {
        let Some((stream, peer)) = tcp::accept(&listener, &stop, Transport::Tls).await else {
            return;
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::warn!(%peer, "TLS connection refused: connection limit reached");
            continue;
        };
        let Some(ip_slot) = per_ip.enter(peer.ip()) else {
            tracing::debug!(%peer, "TLS connection refused: per-address limit reached");
            continue;
        };
        let streams2 = streams.clone();
        let stop = stop.clone();
        let tls = acceptor.acceptor();
        streams.tracker.spawn(async move {
            connection(streams2, stream, peer, tls, limits.handshake_timeout, stop).await;
            drop(ip_slot);
            drop(permit);
        });
    }
}

async fn connection(
    streams: Streams,
    stream: TcpStream,
    peer: SocketAddr,
    tls: tokio_rustls::TlsAcceptor,
    handshake_timeout: Duration,
    stop: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let Ok(local) = stream.local_addr() else {
        return;
    };
    let handshake = tokio::select! {
        _ = stop.cancelled() => return,
        r = tokio::time::timeout(handshake_timeout, tls.accept(stream)) => r,
    };
    crate::metrics::tls_handshake(matches!(handshake, Ok(Ok(_))));
    let stream = match handshake {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            return;
        }
    };
    tcp::serve_framed(streams, stream, Transport::Tls, peer, local, stop).await;
}
