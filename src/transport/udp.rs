//! The UDP transport: one socket, each datagram parsed and dispatched as it arrives.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use super::Outbound;
use crate::server::{Context, Core, Transport};
use crate::sip::parse_datagram;

/// Binds a non-blocking UDP socket with roomy kernel buffers (dual-stack on `[::]`).
pub fn bind(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        let _ = sock.set_only_v6(false);
    }
    // Bursts of REGISTERs must not overflow the default (small) receive buffer.
    let _ = sock.set_recv_buffer_size(4 << 20);
    let _ = sock.set_send_buffer_size(4 << 20);
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    UdpSocket::from_std(sock.into())
}

/// Receives until `stop` is cancelled.
pub async fn serve(core: Arc<Core>, sock: Arc<UdpSocket>, stop: CancellationToken) {
    // RFC 3261 §18.1.1: a datagram may be up to 65,535 octets.
    let mut buf = vec![0u8; 65_535];
    let out = Outbound::Udp(Arc::clone(&sock));
    loop {
        let (n, source) = tokio::select! {
            _ = stop.cancelled() => return,
            r = sock.recv_from(&mut buf) => match r {
                Ok(v) => v,
                Err(e) => {
                    // ICMP errors surface here on some systems; they are not fatal.
                    tracing::debug!(error = %e, "UDP receive error");
                    continue;
                }
            },
        };
        let data = Bytes::copy_from_slice(&buf[..n]);
        let parsed = parse_datagram(data, &core.limits);
        let ctx = Context {
            transport: Transport::Udp,
            source,
            connection: None,
        };
        core.on_message(parsed, ctx, out.clone());
    }
}
