//! The UDP side of a lane: one connected loopback socket (so the kernel filters foreign
//! datagrams and `send` needs no address), with large buffers so bursts are not dropped
//! on the generator's side.

use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;

use super::inbox::Inbox;

pub async fn connect(target: SocketAddr) -> std::io::Result<UdpSocket> {
    let sock = Socket::new(
        Domain::for_address(target),
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    let _ = sock.set_recv_buffer_size(4 << 20);
    let _ = sock.set_send_buffer_size(4 << 20);
    sock.set_nonblocking(true)?;
    let local: SocketAddr = if target.is_ipv6() {
        "[::1]:0".parse().map_err(std::io::Error::other)?
    } else {
        "127.0.0.1:0".parse().map_err(std::io::Error::other)?
    };
    sock.bind(&local.into())?;
    let sock = UdpSocket::from_std(sock.into())?;
    sock.connect(target).await?;
    Ok(sock)
}

/// Waits for one datagram, then takes whatever else is already queued (up to a batch),
/// so a busy lane wakes once per batch rather than once per answer.
pub async fn recv(sock: &UdpSocket, buf: &mut [u8], inbox: &mut Inbox) -> std::io::Result<()> {
    let n = sock.recv(buf).await?;
    inbox.push(&buf[..n]);
    for _ in 0..256 {
        match sock.try_recv(buf) {
            Ok(n) => inbox.push(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
