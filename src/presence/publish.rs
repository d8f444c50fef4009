//! PUBLISH (RFC 3903 §6) for the `presence` event package: the checks in the order the
//! issue lists them, then the entity-tag lifecycle of [`super::publications`].
//!
//! Order: Request-URI domain (404) → authentication (401/403, scope `presence.write`) →
//! the owner or `admin` (403) → `Event` (489 + Allow-Events) → `SIP-If-Match` (more than
//! one: 400) → `Expires` (malformed: 400; too brief: 423 + Min-Expires) → the body
//! (other type: 415 + Accept; too large: 413; not PIDF: 400 naming the problem) → the
//! publication (unknown or expired tag: 412; a new one beyond `max_publications_per_aor`:
//! 403, so one user cannot grow the store without bound). A 200 carries `SIP-ETag` and `Expires`;
//! removing (`Expires: 0`) answers `Expires: 0` without a tag.

use std::sync::Arc;

use super::config::granted;
use super::model::CONTENT_TYPE;
use super::pidf::{self, Limits};
use super::publications::Updated;
use super::service::{EVENT, PresenceService};
use crate::auth::sip::Identity;
use crate::clock::unix_now;
use crate::sip::Request;
use crate::sip::Response;
use crate::sip::headers::{ContentType, Event, HeaderName, SipIfMatch};
use crate::transaction::user::Reply;
use crate::transport::Context;

/// The scope a PUBLISH needs.
pub const PUBLISH_SCOPE: &str = "presence.write";

/// 489 with the package sipreg serves (RFC 6665 §8.3.1 via RFC 3903 §6 step 2).
pub(crate) fn bad_event() -> Response {
    Response::new(489).header("Allow-Events", EVENT)
}

/// Whether the request is for the `presence` package; `Err` is the answer when not.
pub(crate) fn check_event(req: &Request) -> Result<Event, Response> {
    match req.msg.headers.single::<Event>() {
        Ok(Some(e)) if e.package.eq_ignore_ascii_case(EVENT) => Ok(e),
        Ok(_) => Err(bad_event()),
        Err(e) => Err(Response::new(400).with_reason(e.to_string())),
    }
}

/// The body's document, or the refusal (415, 413, 400). `Ok(None)`: no body.
fn body(req: &Request, max: usize) -> Result<Option<crate::presence::Presence>, Response> {
    if req.msg.body.is_empty() {
        return Ok(None);
    }
    let ct = match req.msg.headers.single::<ContentType>() {
        Ok(ct) => ct,
        Err(e) => return Err(Response::new(400).with_reason(e.to_string())),
    };
    if !ct.is_some_and(|c| c.is("application", "pidf+xml")) {
        return Err(Response::new(415).header("Accept", CONTENT_TYPE));
    }
    let limits = Limits {
        max_body: max,
        ..Limits::default()
    };
    pidf::parse(&req.msg.body, &limits)
        .map(Some)
        .map_err(|e| Response::new(e.sip_status()).with_reason(capitalised(&e.to_string())))
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

impl PresenceService {
    /// Handles a PUBLISH.
    pub fn publish(self: &Arc<Self>, req: Request, ctx: Context) -> Reply {
        let aor = match self.presentity(&req) {
            Ok(a) => a,
            Err(r) => return Reply::Now(r),
        };
        self.with_identity(req, ctx, PUBLISH_SCOPE, move |me, req, id, _| {
            me.publish_as(req, &aor, id)
        })
    }

    fn publish_as(
        self: &Arc<Self>,
        req: &Request,
        aor: &crate::registrar::Aor,
        id: Option<&Identity>,
    ) -> Response {
        if let Some(id) = id
            && !Self::owns(id, aor)
            && !id.is_admin()
        {
            return Response::new(403).with_reason("Forbidden: not your presentity");
        }
        if let Err(r) = check_event(req) {
            return r;
        }
        let if_match = match req.msg.headers.count(HeaderName::SipIfMatch) {
            0 => None,
            1 => match req.msg.headers.single::<SipIfMatch>() {
                Ok(m) => m,
                Err(e) => return Response::new(400).with_reason(e.to_string()),
            },
            _ => return Response::new(400).with_reason("More than one SIP-If-Match"),
        };
        let asked = match req.expires() {
            None => None,
            Some(Ok(e)) => Some(e),
            Some(Err(())) => return Response::new(400).with_reason("Malformed Expires header"),
        };
        let c = &self.config;
        let expires = match granted(
            asked,
            c.publish_default_expires,
            c.publish_min_expires,
            c.publish_max_expires,
        ) {
            Ok(e) => e,
            Err(min) => return Response::new(423).header("Min-Expires", min.to_string()),
        };
        let doc = match body(req, c.max_body_size) {
            Ok(d) => d,
            Err(r) => return r,
        };
        let now = unix_now();
        let Some(tag) = if_match else {
            let Some(doc) = doc else {
                return Response::new(400).with_reason("PUBLISH without SIP-If-Match needs a body");
            };
            if expires == 0 {
                return Response::new(400).with_reason("Expires 0 needs SIP-If-Match");
            }
            let max = self.config.max_publications_per_aor;
            let Some(etag) = self.publications.create(aor, doc, expires, now, max) else {
                return Response::new(403).with_reason(format!(
                    "Too many publications (at most {max} per presentity)"
                ));
            };
            self.changed(aor);
            return ok(&etag, expires);
        };
        match self.publications.update(aor, &tag.0, doc, expires, now) {
            None => Response::new(412),
            Some(Updated::Removed) => {
                self.changed(aor);
                Response::new(200).header("Expires", "0")
            }
            Some(Updated::Kept { etag, body_changed }) => {
                if body_changed {
                    self.changed(aor);
                }
                ok(&etag, expires)
            }
        }
    }
}

fn ok(etag: &str, expires: u32) -> Response {
    Response::new(200)
        .header("SIP-ETag", etag)
        .header("Expires", expires.to_string())
}
