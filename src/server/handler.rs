//! The seam between the SIP core and the services behind it (registrar, presence).
//!
//! The core answers OPTIONS and every error itself; a [`Handler`] gets only validated
//! requests for the methods it declares, and says which extensions and bodies it supports
//! so OPTIONS, 405 and 420 tell the truth.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use crate::sip::{Method, Request, Response};

/// How a request reached the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// Where a request came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context {
    pub transport: Transport,
    pub source: SocketAddr,
    /// The TCP connection it arrived on, for later requests back to the client.
    pub connection: Option<u64>,
}

/// A handler's answer: ready now (the hot path) or after some asynchronous work.
pub enum Reply {
    Now(Response),
    Later(Pin<Box<dyn Future<Output = Response> + Send>>),
}

/// A service behind the SIP core.
pub trait Handler: Send + Sync + 'static {
    /// Methods this handler processes (besides OPTIONS, which the core answers).
    fn methods(&self) -> &[Method];
    /// Option-tags for `Supported`; a `Require` naming anything else gets 420.
    fn supported(&self) -> &[&'static str] {
        &[]
    }
    /// Body types for `Accept`.
    fn accept(&self) -> &[&'static str] {
        &[]
    }
    /// Event packages for `Allow-Events`.
    fn allow_events(&self) -> &[&'static str] {
        &[]
    }
    fn handle(&self, req: Request, ctx: Context) -> Reply;
}

/// The handler of a bare SIP core: it processes nothing, so REGISTER, SUBSCRIBE and
/// PUBLISH get 501 from the dispatcher until their services are plugged in.
pub struct NoServices;

impl Handler for NoServices {
    fn methods(&self) -> &[Method] {
        &[]
    }

    fn handle(&self, _req: Request, _ctx: Context) -> Reply {
        Reply::Now(Response::new(501))
    }
}
