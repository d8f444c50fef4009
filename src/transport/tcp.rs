//! The TCP transport: a task per connection frames messages by Content-Length,
//! dispatches them, and writes what the server queues for that connection.
//!
//! A stream that can no longer be framed (no or bad Content-Length, oversized message) is
//! answered 400 when the header section allows it, then closed (RFC 3261 §18.3).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Connection, Context, Outbound, Outbox, Streams, Transport};
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

/// The next connection on `listener`; `None` once `stop` is cancelled. Accept errors
/// (out of descriptors, a connection reset before it was taken) are logged and retried
/// after a short pause, so a burst of them does not spin. Shared by the TCP, TLS and
/// WebSocket listeners.
pub async fn accept(
    listener: &TcpListener,
    stop: &CancellationToken,
    transport: Transport,
) -> Option<(TcpStream, SocketAddr)> {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return None,
            r = listener.accept() => match r {
                Ok(v) => return Some(v),
                Err(e) => {
                    tracing::debug!(error = %e, %transport, "accept error");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
        }
    }
}

/// Accepts until `stop` is cancelled; at most `streams.max_connections` at once.
pub async fn serve(streams: Streams, listener: TcpListener, stop: CancellationToken) {
    let slots = Arc::new(Semaphore::new(streams.max_connections));
    loop {
        let Some((stream, peer)) = accept(&listener, &stop, Transport::Tcp).await else {
            return;
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::warn!(%peer, "TCP connection refused: connection limit reached");
            continue;
        };
        let streams2 = streams.clone();
        let stop = stop.clone();
        streams.tracker.spawn(async move {
            connection(streams2, stream, peer, stop).await;
            drop(permit);
        });
    }
}

async fn connection(
    streams: Streams,
    stream: TcpStream,
    peer: SocketAddr,
    stop: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let Ok(local) = stream.local_addr() else {
        return;
    };
    serve_framed(streams, stream, Transport::Tcp, peer, local, stop).await;
}

/// Runs one connection whose SIP messages are framed by Content-Length (TCP, and TLS
/// once its handshake is done) until the peer closes it, it idles out, its framing is
/// lost, or `stop` is cancelled.
///
/// One task reads and writes: the answers to what it just read were queued while the
/// receiver handled them, so it writes them before it waits again, with no second task
/// to wake and no lock between halves of the stream (a wake-up on another thread costs
/// more than the TLS record). Requests sipreg sends later (NOTIFY) wake it through the
/// same queue.
pub async fn serve_framed<S>(
    streams: Streams,
    stream: S,
    transport: Transport,
    peer: SocketAddr,
    local: SocketAddr,
    stop: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    tokio::pin!(stream);
    let (tx, outbox) = Outbox::new(WRITE_QUEUE);
    let flow = streams.open(Connection {
        transport,
        peer,
        local,
        tx: tx.clone(),
    });
    let ctx = Context {
        transport,
        source: peer,
        local,
        connection: Some(flow.id),
    };
    let out = Outbound::Stream(tx);
    let idle = streams.timeouts.idle();
    let message_timeout = streams.timeouts.message();
    // One timer for the connection's life, moved only when it fires: arming a timer per
    // read would cost more than the read. It is also brought forward, once per message,
    // when a message stays incomplete after a read: it must be whole `message_timeout`
    // after its first byte, however the sender trickles it (slowloris).
    let mut heard = Instant::now();
    let mut begun: Option<Instant> = None;
    let deadline = tokio::time::sleep_until(heard + idle);
    tokio::pin!(deadline);
    let stopped = stop.cancelled();
    tokio::pin!(stopped);
    let mut buf = BytesMut::with_capacity(4096);
    let mut pending = BytesMut::new();
    'conn: loop {
        // Frame everything already buffered.
        loop {
            match frame_stream(&buf, &streams.limits) {
                Frame::Incomplete => break,
                Frame::Ping(n) => {
                    buf.advance(n);
                    out.send(Bytes::from_static(b"\r\n"), peer);
                }
                Frame::Skip(n) => buf.advance(n),
                Frame::Message(n) => {
                    let data = buf.split_to(n).freeze();
                    streams.receiver.tap_received(&data, &ctx);
                    let parsed = parse_datagram(data, &streams.limits);
                    streams.receiver.on_message(parsed, ctx, &out);
                }
                Frame::Invalid(why) => {
                    tracing::debug!(%peer, %transport, why, "closing connection: framing lost");
                    answer_unframable(&streams, &buf, why, ctx, &out);
                    outbox.drain_into(&mut pending);
                    let _ =
                        write_out(&mut stream, &mut pending, deadline.as_mut(), heard, idle).await;
                    break 'conn;
                }
            }
        }
        if buf.is_empty() {
            begun = None;
        } else if begun.is_none() {
            let due = heard + message_timeout;
            begun = Some(heard);
            if due < deadline.deadline() {
                deadline.as_mut().reset(due);
            }
        }
        outbox.drain_into(&mut pending);
        if !pending.is_empty() {
            if !write_out(&mut stream, &mut pending, deadline.as_mut(), heard, idle).await {
                break;
            }
            // More may have been queued while the peer took it.
            continue;
        }
        if !outbox.arm() {
            continue;
        }
        let woke = tokio::select! {
            biased;
            _ = &mut stopped => break,
            _ = outbox.notified() => Ok(()),
            r = stream.read_buf(&mut buf) => match r {
                Ok(0) | Err(_) => Err("closed"),
                Ok(_) => {
                    heard = Instant::now();
                    Ok(())
                }
            },
            _ = &mut deadline => {
                let cut = begun.map(|b| b + message_timeout);
                if heard.elapsed() >= idle {
                    Err("idle")
                } else if cut.is_some_and(|c| c <= Instant::now()) {
                    Err("message incomplete too long")
                } else {
                    let next = heard + idle;
                    deadline.as_mut().reset(cut.map_or(next, |c| c.min(next)));
                    Ok(())
                }
            }
        };
        outbox.disarm();
        if let Err(why) = woke {
            tracing::debug!(%peer, %transport, why, "closing connection");
            break;
        }
    }
    drop(flow);
    // What was queued before the end still goes out, if the peer takes it promptly.
    outbox.drain_into(&mut pending);
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all_buf(&mut pending).await?;
        stream.shutdown().await
    })
    .await;
}

/// Writes and flushes `pending`; false when the connection failed, or when the peer
/// has not taken it `idle` after it was last heard from (a peer that stops reading is
/// cut off like a silent one).
async fn write_out<S: AsyncWrite>(
    stream: &mut Pin<&mut S>,
    pending: &mut BytesMut,
    mut deadline: Pin<&mut tokio::time::Sleep>,
    heard: Instant,
    idle: Duration,
) -> bool {
    let io = async {
        stream.write_all_buf(pending).await?;
        stream.flush().await
    };
    tokio::pin!(io);
    loop {
        tokio::select! {
            r = &mut io => return r.is_ok(),
            _ = deadline.as_mut() => {
                if heard.elapsed() >= idle {
                    return false;
                }
                deadline.as_mut().reset(heard + idle);
            }
        }
    }
}

/// Sends a 400 for a request whose stream cannot be framed, when its header section is
/// complete enough to build one. Shared by every stream transport that frames by
/// Content-Length (TCP, TLS).
pub fn answer_unframable(
    streams: &Streams,
    buf: &[u8],
    why: &'static str,
    ctx: Context,
    out: &Outbound,
) {
    let Some(end) = memchr::memmem::find(buf, b"\r\n\r\n") else {
        return;
    };
    let head = Bytes::copy_from_slice(&buf[..end + 4]);
    streams.receiver.tap_received(&head, &ctx);
    let partial = match parse_datagram(head, &streams.limits) {
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
    streams.receiver.on_message(Err(err), ctx, out);
}
