//! The transaction user (RFC 3261 §17): the seam between the SIP core and the services
//! behind it (registrar, presence). It lives here, below them, so they implement it
//! without knowing the server.
//!
//! The core answers OPTIONS and every error itself; a [`Handler`] gets only validated
//! requests for the methods it declares, and says which extensions and bodies it supports
//! so OPTIONS, 405 and 420 tell the truth.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::sip::{Method, Request, Response};
use crate::transport::{Context, Transport};

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
    /// A connection closed (what was tied to it, such as WebSocket bindings, can go).
    fn flow_closed(&self, _id: u64, _transport: Transport) {}
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

/// Several services behind one core: each request goes to the first handler declaring its
/// method; `Supported`, `Accept` and `Allow-Events` are the union of theirs.
pub struct Services {
    handlers: Vec<Arc<dyn Handler>>,
    methods: Vec<Method>,
    supported: Vec<&'static str>,
    accept: Vec<&'static str>,
    events: Vec<&'static str>,
}

impl Services {
    pub fn new(handlers: Vec<Arc<dyn Handler>>) -> Services {
        fn union<T: PartialEq + Clone>(out: &mut Vec<T>, items: &[T]) {
            for i in items {
                if !out.contains(i) {
                    out.push(i.clone());
                }
            }
        }
        let (mut methods, mut supported, mut accept, mut events) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for h in &handlers {
            union(&mut methods, h.methods());
            union(&mut supported, h.supported());
            union(&mut accept, h.accept());
            union(&mut events, h.allow_events());
        }
        Services {
            handlers,
            methods,
            supported,
            accept,
            events,
        }
    }
}

impl Handler for Services {
    fn methods(&self) -> &[Method] {
        &self.methods
    }

    fn supported(&self) -> &[&'static str] {
        &self.supported
    }

    fn accept(&self) -> &[&'static str] {
        &self.accept
    }

    fn allow_events(&self) -> &[&'static str] {
        &self.events
    }

    fn handle(&self, req: Request, ctx: Context) -> Reply {
        match self
            .handlers
            .iter()
            .find(|h| h.methods().contains(&req.method))
        {
            Some(h) => h.handle(req, ctx),
            // The dispatcher only passes declared methods; this is a safety net.
            None => Reply::Now(Response::new(501)),
        }
    }

    fn flow_closed(&self, id: u64, transport: Transport) {
        for h in &self.handlers {
            h.flow_closed(id, transport);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Only(Method, &'static str, u16);

    impl Handler for Only {
        fn methods(&self) -> &[Method] {
            std::slice::from_ref(&self.0)
        }
        fn supported(&self) -> &[&'static str] {
            std::slice::from_ref(&self.1)
        }
        fn handle(&self, _req: Request, _ctx: Context) -> Reply {
            Reply::Now(Response::new(self.2))
        }
    }

    #[test]
    fn services_route_by_method_and_union_capabilities() {
        let s = Services::new(vec![
            Arc::new(Only(Method::Register, "path", 200)),
            Arc::new(Only(Method::Publish, "path", 412)),
            Arc::new(Only(Method::Subscribe, "outbound", 489)),
        ]);
        assert_eq!(
            s.methods(),
            &[Method::Register, Method::Publish, Method::Subscribe]
        );
        assert_eq!(s.supported(), &["path", "outbound"]);
        let raw = "PUBLISH sip:a@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n\
                   From: <sip:a@example.com>;tag=1\r\nTo: <sip:a@example.com>\r\nCall-ID: x\r\n\
                   CSeq: 1 PUBLISH\r\nContent-Length: 0\r\n\r\n";
        let msg = crate::sip::parse_datagram(
            bytes::Bytes::copy_from_slice(raw.as_bytes()),
            &crate::sip::Limits::default(),
        )
        .expect("parses");
        let req = Request::from_message(msg).expect("valid");
        let ctx = Context {
            transport: Transport::Udp,
            source: "127.0.0.1:5070".parse().expect("addr"),
            local: "127.0.0.1:5060".parse().expect("addr"),
            connection: None,
        };
        match s.handle(req, ctx) {
            Reply::Now(r) => assert_eq!(r.status, 412),
            Reply::Later(_) => panic!("expected an immediate answer"),
        }
    }
}
