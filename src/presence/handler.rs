//! The SIP-facing side of presence: PUBLISH and SUBSCRIBE go to the
//! [`PresenceService`]; OPTIONS advertises `Allow-Events: presence` and
//! `Accept: application/pidf+xml` through [`Handler::allow_events`] and
//! [`Handler::accept`].

use std::sync::Arc;

use super::model::CONTENT_TYPE;
use super::service::{EVENT, PresenceService};
use crate::sip::{Method, Request, Response};
use crate::transaction::user::{Handler, Reply};
use crate::transport::{Context, Transport};

pub struct PresenceHandler(pub Arc<PresenceService>);

impl Handler for PresenceHandler {
    fn methods(&self) -> &[Method] {
        &[Method::Publish, Method::Subscribe]
    }

    fn accept(&self) -> &[&'static str] {
        &[CONTENT_TYPE]
    }

    fn allow_events(&self) -> &[&'static str] {
        &[EVENT]
    }

    fn handle(&self, req: Request, ctx: Context) -> Reply {
        match req.method {
            Method::Publish => self.0.publish(req, ctx),
            Method::Subscribe => self.0.subscribe(req, ctx),
            _ => Reply::Now(Response::new(501)),
        }
    }

    fn flow_closed(&self, id: u64, transport: Transport) {
        self.0.flow_closed(id, transport);
    }
}
