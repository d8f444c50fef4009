//! What to do with a message, decided without I/O so it can be tested message by message.
//!
//! The order follows RFC 3261 §8.2 as RFC 4475's verdicts need it: syntax and version
//! (400, 505), then the method (501, 405), then the Request-URI scheme (416) and `Require`
//! (420), then the handler. Responses and ACKs are never answered.

use crate::sip::headers::{HeaderName, Require};
use crate::sip::{Message, Method, ParseError, Rejection, Request, Response, Uri};

use crate::transaction::user::Handler;

/// The outcome for one received message.
#[derive(Debug)]
pub enum Decision {
    /// Nothing is sent (responses, ACK, unusable input); the reason is logged.
    Drop(&'static str),
    /// Answer without a transaction: broken requests and INVITE.
    Stateless(Box<Message>, Response),
    /// Answer through a server transaction with this response.
    Respond(Box<Request>, Response),
    /// Pass to the handler through a server transaction.
    Handle(Box<Request>),
}

/// Methods the core names in `Allow`: OPTIONS plus what the handler serves.
pub fn allow_header(handler: &dyn Handler) -> String {
    let mut out = String::from("OPTIONS");
    for m in handler.methods() {
        out.push_str(", ");
        out.push_str(m.as_str());
    }
    out
}

fn is_ack(first_line: &str) -> bool {
    first_line.starts_with("ACK ")
}

/// Decides what to do with the result of parsing one message.
pub fn decide(parsed: Result<Message, ParseError>, handler: &dyn Handler) -> Decision {
    let msg = match parsed {
        Ok(m) => m,
        Err(e) => {
            let Some(partial) = e.partial else {
                return Decision::Drop("unparseable message");
            };
            if partial.is_response() {
                return Decision::Drop("malformed response");
            }
            if is_ack(&partial.first_line) {
                return Decision::Drop("malformed ACK");
            }
            if partial.headers.count(HeaderName::Via) == 0 {
                return Decision::Drop("malformed request without Via");
            }
            let resp = Response::new(e.status).with_reason(e.reason);
            return Decision::Stateless(partial, resp);
        }
    };
    if msg.is_response() {
        return Decision::Drop("response without a client transaction");
    }
    let req = match Request::from_message(msg) {
        Ok(r) => r,
        Err(b) => {
            let (msg, Rejection { status, reason }) = *b;
            if is_ack(&msg.first_line) {
                return Decision::Drop("malformed ACK");
            }
            let mut resp = Response::new(status);
            if status != 505 {
                resp = resp.with_reason(reason);
            }
            return Decision::Stateless(Box::new(msg), resp);
        }
    };
    decide_request(req, handler)
}

fn decide_request(req: Request, handler: &dyn Handler) -> Decision {
    if req.method == Method::Ack {
        return Decision::Drop("ACK");
    }
    let allow = || allow_header(handler);
    let handled = req.method == Method::Options || handler.methods().contains(&req.method);
    if !req.method.is_known() {
        let resp = Response::new(501).header("Allow", allow());
        return Decision::Respond(Box::new(req), resp);
    }
    if req.cseq.method != req.method {
        let resp = Response::new(400).with_reason("CSeq method does not match the request method");
        return stateful_unless_invite(req, resp);
    }
    if !handled {
        let resp = match req.method {
            // Served by sipreg once their services are plugged in.
            Method::Register | Method::Subscribe | Method::Publish => Response::new(501),
            _ => Response::new(405),
        };
        return stateful_unless_invite(req, resp.header("Allow", allow()));
    }
    if !matches!(req.uri, Uri::Sip(_)) {
        return Decision::Respond(Box::new(req), Response::new(416));
    }
    let unsupported: Vec<String> = match req.msg.headers.list::<Require>() {
        Ok(tags) => tags
            .into_iter()
            .filter(|t| {
                !handler
                    .supported()
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(&t.0))
            })
            .map(|t| t.0.to_string())
            .collect(),
        Err(e) => {
            let resp = Response::new(400).with_reason(e.to_string());
            return Decision::Respond(Box::new(req), resp);
        }
    };
    if !unsupported.is_empty() {
        let resp = Response::new(420).header("Unsupported", unsupported.join(", "));
        return Decision::Respond(Box::new(req), resp);
    }
    if req.method == Method::Options {
        let mut resp = Response::new(200)
            .header("Allow", allow())
            .header("Accept", handler.accept().join(", "))
            .header("Supported", handler.supported().join(", "));
        if !handler.allow_events().is_empty() {
            resp = resp.header("Allow-Events", handler.allow_events().join(", "));
        }
        return Decision::Respond(Box::new(req), resp);
    }
    Decision::Handle(Box::new(req))
}

/// INVITE is answered statelessly: sipreg never runs INVITE server transactions.
fn stateful_unless_invite(req: Request, resp: Response) -> Decision {
    if req.method == Method::Invite {
        Decision::Stateless(Box::new(req.msg), resp)
    } else {
        Decision::Respond(Box::new(req), resp)
    }
}
