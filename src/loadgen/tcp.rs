//! The TCP side of a lane: a connection (persistent, or one per call), messages framed
//! by Content-Length with the server's own framing function; TLS frames the same way.

use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::{TcpSocket, TcpStream};

use super::inbox::Inbox;
use crate::sip::{Frame, Limits, frame_stream};

/// Connects to `target`, from `source` when given (a loopback address, any port).
pub async fn connect(target: SocketAddr, source: Option<SocketAddr>) -> std::io::Result<TcpStream> {
    let s = match source {
        None => TcpStream::connect(target).await?,
        Some(from) => {
            let sock = if target.is_ipv4() {
                TcpSocket::new_v4()?
            } else {
                TcpSocket::new_v6()?
            };
            sock.bind(from)?;
            sock.connect(target).await?
        }
    };
    // Requests are written whole; waiting to coalesce them only adds latency.
    s.set_nodelay(true)?;
    Ok(s)
}

/// Reads what the connection has, then moves every complete message into the inbox.
/// Keep-alive CRLFs are dropped; a stream that cannot be framed is an error (the lane
/// stops using the connection).
pub async fn recv<R: AsyncRead + Unpin>(
    read: &mut R,
    pending: &mut Vec<u8>,
    inbox: &mut Inbox,
) -> std::io::Result<()> {
    let mut chunk = [0u8; 16 * 1024];
    let n = read.read(&mut chunk).await?;
    if n == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    pending.extend_from_slice(&chunk[..n]);
    let limits = Limits::default();
    let mut used = 0;
    loop {
        match frame_stream(&pending[used..], &limits) {
            Frame::Message(len) => {
                inbox.push(&pending[used..used + len]);
                used += len;
            }
            Frame::Ping(len) | Frame::Skip(len) => used += len,
            Frame::Incomplete => break,
            Frame::Invalid(why) => return Err(std::io::Error::other(why)),
        }
    }
    pending.drain(..used);
    Ok(())
}
