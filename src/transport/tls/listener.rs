//! The TLS accept loop. Each accepted TCP connection takes a listener-wide slot and a
//! slot of its IP address before anything else, holds both through the handshake (so
//! connections that never finish one count too), gets [`TlsLimits::handshake_timeout`]
//! to finish it, then runs as a Content-Length-framed SIP connection like TCP.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::acceptor::{ReloadableAcceptor, TlsError};
use super::config::TlsConfig;
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

/// Open connections per IP address, with a cap. An address leaves the map when its last
/// connection closes, so the map never holds more entries than there are connections.
struct PerIp {
    max: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection's place in [`PerIp`], given back on drop.
struct IpSlot {
    ip: IpAddr,
    per_ip: Arc<PerIp>,
}

impl PerIp {
    fn take(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        // A v4 client on a dual-stack socket shows as ::ffff:a.b.c.d: one address either way.
        let ip = ip.to_canonical();
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(IpSlot {
            ip,
            per_ip: Arc::clone(self),
        })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut open = self.per_ip.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
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
    let per_ip = Arc::new(PerIp {
        max: limits.max_connections_per_ip,
        open: Mutex::new(HashMap::new()),
    });
    loop {
        let (stream, peer) = tokio::select! {
            _ = stop.cancelled() => return,
            r = listener.accept() => match r {
                Ok(v) => v,
                Err(e) => {
                    tracing::debug!(error = %e, "TLS accept error");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::warn!(%peer, "TLS connection refused: connection limit reached");
            continue;
        };
        let Some(ip_slot) = per_ip.take(peer.ip()) else {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_ip_slots_are_capped_and_given_back() {
        let p = Arc::new(PerIp {
            max: 2,
            open: Mutex::new(HashMap::new()),
        });
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().expect("ip");
        let b: IpAddr = "192.0.2.2".parse().expect("ip");
        let s1 = p.take(a).expect("first");
        let s2 = p.take(mapped).expect("second, same address");
        assert!(p.take(a).is_none(), "third from the same address");
        let _s3 = p.take(b).expect("another address");
        drop(s1);
        let _s4 = p.take(a).expect("a slot was given back");
        drop(s2);
        drop(_s4);
        assert_eq!(p.open.lock().expect("lock").len(), 1, "only b left");
    }
}
