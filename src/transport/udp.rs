//! The UDP transport: a few OS threads block in `recv_from` on one socket, and each parses
//! and dispatches its datagram in place.
//!
//! Why threads and not a tokio task: a REGISTER answered from memory needs no `await`,
//! and at thousands of datagrams per second the task wake-ups (epoll, waking an idle
//! worker) cost more CPU than the SIP work. A blocked thread is woken by the kernel
//! directly, as Kamailio's UDP children are. Requests whose handler needs asynchronous
//! work are spawned onto the runtime from these threads (they enter it at start).

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use socket2::{Domain, Protocol, Socket, Type};
use tokio_util::sync::CancellationToken;

use super::{Context, Outbound, Receiver, Transport};
use crate::sip::{Limits, parse_datagram};

/// How often a blocked receiver looks at the stop signal.
const STOP_POLL: Duration = Duration::from_millis(100);

/// Binds a blocking UDP socket with roomy kernel buffers (dual-stack on `[::]`).
pub fn bind(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        let _ = sock.set_only_v6(false);
    }
    // Bursts of REGISTERs must not overflow the default (small) receive buffer.
    let _ = sock.set_recv_buffer_size(4 << 20);
    let _ = sock.set_send_buffer_size(4 << 20);
    sock.set_read_timeout(Some(STOP_POLL))?;
    sock.bind(&addr.into())?;
    Ok(sock.into())
}

/// Receiver threads to run: `configured`, or one per CPU when it is 0.
pub fn thread_count(configured: usize) -> usize {
    if configured > 0 {
        return configured;
    }
    std::thread::available_parallelism().map_or(2, |n| n.get().min(8))
}

/// Starts `threads` receivers; they return once `stop` is cancelled.
pub fn serve(
    receiver: Arc<dyn Receiver>,
    sock: Arc<UdpSocket>,
    limits: Limits,
    stop: CancellationToken,
    threads: usize,
) -> std::io::Result<Vec<std::thread::JoinHandle<()>>> {
    let runtime = tokio::runtime::Handle::current();
    (0..threads.max(1))
        .map(|i| {
            let (receiver, sock, stop, runtime) = (
                Arc::clone(&receiver),
                Arc::clone(&sock),
                stop.clone(),
                runtime.clone(),
            );
            std::thread::Builder::new()
                .name(format!("sip-udp-{i}"))
                .spawn(move || {
                    let _entered = runtime.enter();
                    receive(&*receiver, sock, &limits, &stop);
                })
        })
        .collect()
}

fn receive(
    receiver: &dyn Receiver,
    sock: Arc<UdpSocket>,
    limits: &Limits,
    stop: &CancellationToken,
) {
    // RFC 3261 §18.1.1: a datagram may be up to 65,535 octets.
    let mut buf = vec![0u8; 65_535];
    let local = sock
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let out = Outbound::Udp(sock);
    let Outbound::Udp(sock) = &out else { return };
    while !stop.is_cancelled() {
        let (n, source) = match sock.recv_from(&mut buf) {
            Ok(v) => v,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(e) => {
                // ICMP errors surface here on some systems; they are not fatal.
                tracing::debug!(error = %e, "UDP receive error");
                continue;
            }
        };
        let data = Bytes::copy_from_slice(&buf[..n]);
        let ctx = Context {
            transport: Transport::Udp,
            source,
            local,
            connection: None,
        };
        receiver.tap_received(&data, &ctx);
        let parsed = parse_datagram(data, limits);
        receiver.on_message(parsed, ctx, &out);
    }
}
