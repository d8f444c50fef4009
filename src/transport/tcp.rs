//! The TCP transport: a reader task per connection frames messages by Content-Length and
//! dispatches them; a writer task sends what the server queues for that connection.
//!
//! A stream that can no longer be framed (no or bad Content-Length, oversized message) is
//! answered 400 when the header section allows it, then closed (RFC 3261 §18.3).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use super::{Connection, Outbound};
use crate::server::{Context, Core, Transport};
use crate::sip::{Frame, ParseError, frame_stream, parse_datagram};

/// Messages queued for one connection's writer before the connection counts as stuck.
const WRITE_QUEUE: usize = 256;

/// Binds a listening socket (dual-stack on `[::]`, address reuse for quick restarts).
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        let _ = sock.set_only_v6(false);
    }
    sock.set_reuse_address(true)?;
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    sock.listen(1024)?;
    TcpListener::from_std(sock.into())
}

/// Accepts until `stop` is cancelled; at most `tcp_max_connections` at once.
pub async fn serve(core: Arc<Core>, listener: TcpListener, stop: CancellationToken) {
    let slots = Arc::new(Semaphore::new(core.config.sip.tcp_max_connections));
    loop {
        let (stream, peer) = tokio::select! {
            _ = stop.cancelled() => return,
            r = listener.accept() => match r {
                Ok(v) => v,
                Err(e) => {
                    tracing::debug!(error = %e, "TCP accept error");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::warn!(%peer, "TCP connection refused: connection limit reached");
            continue;
        };
        let core2 = Arc::clone(&core);
        let stop = stop.clone();
        core.tracker.spawn(async move {
            connection(core2, stream, peer, stop).await;
            drop(permit);
        });
    }
}

async fn connection(core: Arc<Core>, stream: TcpStream, peer: SocketAddr, stop: CancellationToken) {
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Bytes>(WRITE_QUEUE);
    let id = core.connections.add(Connection {
        peer,
        tx: tx.clone(),
    });
    let writer = tokio::spawn(async move {
        while let Some(b) = rx.recv().await {
            if wr.write_all(&b).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    });
    let out = Outbound::Tcp(tx.clone());
    let idle = Duration::from_secs(core.config.sip.tcp_idle_timeout_secs.max(1));
    let mut buf = BytesMut::with_capacity(4096);
    'conn: loop {
        // Frame everything already buffered.
        loop {
            match frame_stream(&buf, &core.limits) {
                Frame::Incomplete => break,
                Frame::Ping(n) => {
                    buf.advance(n);
                    out.send(Bytes::from_static(b"\r\n"), peer);
                }
                Frame::Skip(n) => buf.advance(n),
                Frame::Message(n) => {
                    let data = buf.split_to(n).freeze();
                    let parsed = parse_datagram(data, &core.limits);
                    let ctx = Context {
                        transport: Transport::Tcp,
                        source: peer,
                        connection: Some(id),
                    };
                    core.on_message(parsed, ctx, &out);
                }
                Frame::Invalid(why) => {
                    tracing::debug!(%peer, why, "closing TCP connection: framing lost");
                    answer_unframable(&core, &buf, why, peer, id, &out);
                    break 'conn;
                }
            }
        }
        let read = tokio::select! {
            _ = stop.cancelled() => break,
            r = tokio::time::timeout(idle, rd.read_buf(&mut buf)) => r,
        };
        match read {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(_)) => {}
            Err(_) => {
                tracing::debug!(%peer, "closing idle TCP connection");
                break;
            }
        }
    }
    core.connections.remove(id);
    drop(out);
    drop(tx);
    let _ = tokio::time::timeout(Duration::from_secs(1), writer).await;
}

/// Sends a 400 for a request whose stream cannot be framed, when its header section is
/// complete enough to build one.
fn answer_unframable(
    core: &Arc<Core>,
    buf: &[u8],
    why: &'static str,
    peer: SocketAddr,
    id: u64,
    out: &Outbound,
) {
    let Some(end) = memchr::memmem::find(buf, b"\r\n\r\n") else {
        return;
    };
    let head = Bytes::copy_from_slice(&buf[..end + 4]);
    let partial = match parse_datagram(head, &core.limits) {
        Ok(m) => m,
        Err(e) => match e.partial {
            Some(m) => *m,
            None => return,
        },
    };
    let err = ParseError {
        reason: format!("Bad Request ({why})"),
        status: 400,
        partial: Some(Box::new(partial)),
    };
    let ctx = Context {
        transport: Transport::Tcp,
        source: peer,
        connection: Some(id),
    };
    core.on_message(Err(err), ctx, out);
}
