//! The WebSocket side of a lane (RFC 7118): the upgrade offering the `sip` sub-protocol
//! (and an `Origin` when asked), then one SIP message per frame each way. Framing,
//! masking and ping answers are tokio-tungstenite's.

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use super::inbox::Inbox;

/// The sub-protocol of SIP over WebSocket (RFC 7118 §4.1).
pub const SUBPROTOCOL: &str = "sip";

fn invalid(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string())
}

/// Upgrades `stream` (plain TCP or TLS) to a WebSocket at `url`; the server must accept
/// the `sip` sub-protocol (tungstenite refuses an answer that names another or none).
pub async fn handshake<S>(
    stream: S,
    url: &str,
    origin: Option<&str>,
) -> std::io::Result<WebSocketStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut req = url.into_client_request().map_err(invalid)?;
    let h = req.headers_mut();
    h.insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(SUBPROTOCOL),
    );
    if let Some(o) = origin {
        h.insert("Origin", HeaderValue::from_str(o).map_err(invalid)?);
    }
    let (ws, _response) = tokio_tungstenite::client_async(req, stream)
        .await
        .map_err(invalid)?;
    Ok(ws)
}

/// Sends one SIP message as one text frame (SIP is UTF-8; anything else goes binary).
pub async fn send<S>(ws: &mut WebSocketStream<S>, msg: &[u8]) -> std::io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let frame = match Utf8Bytes::try_from(Bytes::copy_from_slice(msg)) {
        Ok(text) => Message::Text(text),
        Err(_) => Message::Binary(Bytes::copy_from_slice(msg)),
    };
    ws.send(frame).await.map_err(std::io::Error::other)
}

/// Waits for the next data frame and moves its message into the inbox. Control frames
/// are handled by tungstenite (pings answered); a close or the end of the stream is an
/// error, as a TCP EOF is.
pub async fn recv<S>(ws: &mut WebSocketStream<S>, inbox: &mut Inbox) -> std::io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                inbox.push(t.as_bytes());
                return Ok(());
            }
            Some(Ok(Message::Binary(b))) => {
                inbox.push(&b);
                return Ok(());
            }
            Some(Ok(Message::Close(_))) | None => {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(std::io::Error::other(e)),
        }
    }
}

/// The URL of the upgrade request for `target` (`ws://127.0.0.1:8080/`).
pub fn url(secure: bool, hostport: &str, path: &str) -> String {
    let scheme = if secure { "wss" } else { "ws" };
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    format!("{scheme}://{hostport}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(url(false, "127.0.0.1:80", "/"), "ws://127.0.0.1:80/");
        assert_eq!(url(true, "[::1]:7443", "sip"), "wss://[::1]:7443/sip");
    }

    /// Runs the client's upgrade against a scripted server answering 101 with
    /// `protocol` (or no protocol header); returns the request and the client's result.
    async fn upgrade(protocol: Option<&str>) -> (String, std::io::Result<()>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (client, mut server) = tokio::io::duplex(4096);
        let client = tokio::spawn(async move {
            handshake(
                client,
                "ws://127.0.0.1:80/",
                Some("https://lab.example.com"),
            )
            .await
            .map(|_| ())
        });
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while !got.ends_with(b"\r\n\r\n") {
            let n = server.read(&mut buf).await.expect("read");
            assert!(n > 0, "the client closed");
            got.extend_from_slice(&buf[..n]);
        }
        let request = String::from_utf8_lossy(&got).to_ascii_lowercase();
        let key = request
            .lines()
            .find_map(|l| l.strip_prefix("sec-websocket-key: "))
            .expect("a key");
        // The key is base64, case-sensitive: take it from the original bytes.
        let start = request.find(key).expect("found");
        let key = String::from_utf8_lossy(&got[start..start + key.len()]).to_string();
        let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
        let mut answer = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {accept}\r\n"
        );
        if let Some(p) = protocol {
            answer.push_str(&format!("Sec-WebSocket-Protocol: {p}\r\n"));
        }
        answer.push_str("\r\n");
        server.write_all(answer.as_bytes()).await.expect("write");
        (request, client.await.expect("joins"))
    }

    #[tokio::test]
    async fn the_upgrade_offers_sip_and_the_origin() {
        let (request, result) = upgrade(Some("sip")).await;
        assert!(request.starts_with("get / http/1.1\r\n"), "{request}");
        assert!(
            request.contains("\r\nsec-websocket-protocol: sip\r\n"),
            "{request}"
        );
        assert!(
            request.contains("\r\norigin: https://lab.example.com\r\n"),
            "{request}"
        );
        assert!(result.is_ok(), "{result:?}");
    }

    #[tokio::test]
    async fn a_server_that_does_not_choose_sip_is_refused() {
        assert!(upgrade(None).await.1.is_err());
        assert!(upgrade(Some("chat")).await.1.is_err());
    }
}
