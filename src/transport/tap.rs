//! A tap on the wire: every SIP message received or sent can be shown to a [`Tap`]
//! (the message trace, `crate::trace`), with the octets as they crossed the wire. The
//! transports call it on receipt (through [`Receiver::tap`](super::Receiver::tap)); the
//! layers that send (the server core, client transactions) call it before sending.
//!
//! A tap must return at once: it runs on the receive and send paths.

use std::net::SocketAddr;

use bytes::Bytes;

use super::Transport;

/// Which way a message crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Received,
    Sent,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Received => "recv",
            Direction::Sent => "sent",
        }
    }
}

/// One message on the wire, as a tap sees it.
#[derive(Debug, Clone)]
pub struct Tapped {
    pub direction: Direction,
    pub transport: Transport,
    /// sipreg's address.
    pub local: SocketAddr,
    /// The other side's address.
    pub peer: SocketAddr,
    /// The whole message, unmodified.
    pub bytes: Bytes,
}

/// Sees messages on the wire; must not block.
pub trait Tap: Send + Sync + 'static {
    fn tap(&self, message: Tapped);
}
