//! One upgraded WebSocket connection as a SIP flow: every text or binary frame is one
//! SIP message (RFC 7118 §5.1), parsed and handed to the receiver with the flow's
//! [`Context`]; what the server queues for the flow goes out one message per text frame
//! (binary when it is not UTF-8). The same task reads, writes and keeps the connection
//! alive, so nothing is shared between halves.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage, Utf8Bytes};
use tokio_util::sync::CancellationToken;

use super::{Link, WsSettings};
use crate::sip::parse_datagram;
use crate::transport::{Connection, Context, Outbound, Outbox, Streams};

/// Messages queued for one connection before it counts as stuck.
const WRITE_QUEUE: usize = 256;

/// How long a closing handshake may take once sipreg decides to close.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// Why the loop ended: the peer went away, or sipreg closes with this code.
enum Ending {
    Gone,
    Close(CloseCode, &'static str),
}

pub(super) async fn run<S>(
    streams: Streams,
    mut ws: WebSocketStream<S>,
    link: Link,
    settings: &WsSettings,
    stop: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let Link {
        transport,
        peer,
        local,
    } = link;
    let (tx, outbox) = Outbox::new(WRITE_QUEUE);
    let flow = streams.open(Connection {
        transport,
        peer,
        local,
        tx: tx.clone(),
    });
    tracing::debug!(%peer, %transport, flow = flow.id, "WebSocket flow open");
    let ctx = Context {
        transport,
        source: peer,
        local,
        connection: Some(flow.id),
    };
    let out = Outbound::Stream(tx);
    // Checked every tick: the peer's silence first (idle), then whether to ping.
    let period = settings
        .ping_interval
        .min(settings.idle_timeout)
        .max(Duration::from_millis(100));
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    let mut heard = Instant::now();
    let stopped = stop.cancelled();
    tokio::pin!(stopped);
    let ending = loop {
        // Answers to what was just read were queued while it was handled: send them
        // before waiting (see the outbox for why not a channel).
        let queued = outbox.take();
        if !queued.is_empty() {
            if let Err(e) = send_all(&mut ws, queued).await {
                tracing::debug!(%peer, %transport, error = %e, "WebSocket write error");
                break Ending::Gone;
            }
            continue;
        }
        if !outbox.arm() {
            continue;
        }
        tokio::select! {
            biased;
            _ = &mut stopped => break Ending::Close(CloseCode::Away, "server shutting down"),
            _ = outbox.notified() => {},
            frame = ws.next() => match frame {
                None => break Ending::Gone,
                Some(Err(WsError::Capacity(e))) => {
                    tracing::info!(%peer, %transport, error = %e, "closing WebSocket: message over the size limit");
                    break Ending::Close(CloseCode::Size, "message too big");
                }
                Some(Err(e)) => {
                    tracing::debug!(%peer, %transport, error = %e, "WebSocket read error");
                    break Ending::Gone;
                }
                Some(Ok(m)) => {
                    heard = Instant::now();
                    match m {
                        WsMessage::Text(t) => deliver(&streams, Bytes::from(t), ctx, &out),
                        WsMessage::Binary(b) => deliver(&streams, b, ctx, &out),
                        // Pings are answered by tungstenite; a Close is answered there too,
                        // and the next read ends the stream.
                        _ => {}
                    }
                }
            },
            _ = tick.tick() => {
                let silent = heard.elapsed();
                if silent >= settings.idle_timeout {
                    tracing::debug!(%peer, %transport, "closing idle WebSocket");
                    break Ending::Close(CloseCode::Away, "idle timeout");
                }
                if silent >= settings.ping_interval && ws.send(WsMessage::Ping(Bytes::new())).await.is_err() {
                    break Ending::Gone;
                }
            }
        }
        outbox.disarm();
    };
    // The flow goes first: nothing more is queued for it, the layers above learn now.
    drop(flow);
    if let Ending::Close(code, reason) = ending {
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        };
        let _ = tokio::time::timeout(CLOSE_WAIT, async {
            if ws.close(Some(frame)).await.is_ok() {
                // Read until the peer's Close (or anything ends the stream).
                while let Some(Ok(_)) = ws.next().await {}
            }
        })
        .await;
    }
    tracing::debug!(%peer, %transport, "WebSocket flow closed");
}

/// Sends what was queued, a frame per message, with one flush.
async fn send_all<S>(ws: &mut WebSocketStream<S>, queued: VecDeque<Bytes>) -> Result<(), WsError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    for b in queued {
        ws.feed(frame_of(b)).await?;
    }
    ws.flush().await
}

/// One frame's SIP message to the receiver. Frames holding only CRLFs (keep-alives some
/// clients send out of TCP habit) are ignored.
fn deliver(streams: &Streams, data: Bytes, ctx: Context, out: &Outbound) {
    if data.iter().all(|&b| b == b'\r' || b == b'\n') {
        return;
    }
    streams.receiver.tap_received(&data, &ctx);
    let parsed = parse_datagram(data, &streams.limits);
    streams.receiver.on_message(parsed, ctx, out);
}

/// A text frame for UTF-8 (every SIP message without a binary body), binary otherwise.
fn frame_of(b: Bytes) -> WsMessage {
    match Utf8Bytes::try_from(b.clone()) {
        Ok(t) => WsMessage::Text(t),
        Err(_) => WsMessage::Binary(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_goes_as_text_anything_else_as_binary() {
        assert!(matches!(
            frame_of(Bytes::from_static(b"OPTIONS sip:x SIP/2.0\r\n")),
            WsMessage::Text(_)
        ));
        assert!(matches!(
            frame_of(Bytes::from_static(b"\xff\xfe")),
            WsMessage::Binary(_)
        ));
    }
}
