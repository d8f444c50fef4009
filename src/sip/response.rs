//! Responses sipreg sends, built per RFC 3261 §8.2.6: Via, From, Call-ID and CSeq copied
//! from the request byte for byte, To copied with a tag added, the top Via given
//! `received`/`rport` (RFC 3261 §18.2.1, RFC 3581), then the handler's own fields.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::net::SocketAddr;

use bytes::{BufMut, Bytes, BytesMut};

use super::headers::{HeaderName, TypedHeader, Via};
use super::message::Message;
use super::name_addr::NameAddr;
use super::text::split_commas;

/// The request's header fields a response copies (RFC 3261 §8.2.6.2): Via, From, To,
/// Call-ID and CSeq.
pub fn copied_from_request(name: HeaderName) -> bool {
    matches!(
        name,
        HeaderName::Via | HeaderName::From | HeaderName::To | HeaderName::CallId | HeaderName::CSeq
    )
}

/// A response as a handler describes it; [`Response::encode`] turns it into octets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: Cow<'static, str>,
    /// Extra header fields in order (name as printed, value).
    pub headers: Vec<(Cow<'static, str>, String)>,
    /// Content-Type and body.
    pub body: Option<(Cow<'static, str>, Bytes)>,
    /// The To tag to add when the request has none, chosen by a handler that creates a
    /// dialog (SUBSCRIBE) and must know it; `None` lets the core pick one.
    // Boxed String: a thin pointer keeps `Response` small enough to be an `Err`.
    pub to_tag: Option<Box<String>>,
}

/// The standard reason phrase of a status code (RFC 3261 §21 and extensions).
pub fn default_reason(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        412 => "Conditional Request Failed",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        423 => "Interval Too Brief",
        429 => "Too Many Requests",
        481 => "Call/Transaction Does Not Exist",
        489 => "Bad Event",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        _ => "Unknown",
    }
}

impl Response {
    pub fn new(status: u16) -> Response {
        Response {
            status,
            reason: Cow::Borrowed(default_reason(status)),
            headers: Vec::new(),
            body: None,
            to_tag: None,
        }
    }

    /// Sets the To tag the response adds (a dialog-creating handler's local tag).
    pub fn with_to_tag(mut self, tag: impl Into<String>) -> Response {
        self.to_tag = Some(Box::new(tag.into()));
        self
    }

    /// A reason phrase of the caller's; CR and LF are replaced so it stays one line.
    pub fn with_reason(mut self, reason: impl Into<String>) -> Response {
        let r: String = reason
            .into()
            .chars()
            .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
            .collect();
        self.reason = Cow::Owned(r);
        self
    }

    pub fn header(
        mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<String>,
    ) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn with_body(
        mut self,
        content_type: impl Into<Cow<'static, str>>,
        body: Bytes,
    ) -> Response {
        self.body = Some((content_type.into(), body));
        self
    }

    /// Encodes the response to `request` (which may be only partly valid: fields that are
    /// missing are simply not copied). `source` is where the request came from; `to_tag`
    /// is added to To when it has none.
    pub fn encode(&self, request: &Message, source: SocketAddr, to_tag: &str) -> Bytes {
        let to_tag = self.to_tag.as_deref().map_or(to_tag, String::as_str);
        let mut out = BytesMut::with_capacity(self.encoded_len_hint(request, to_tag));
        let mut num = itoa::Buffer::new();
        out.put_slice(b"SIP/2.0 ");
        out.put_slice(num.format(self.status).as_bytes());
        out.put_slice(b" ");
        out.put_slice(self.reason.as_bytes());
        out.put_slice(b"\r\n");
        let mut first_via = true;
        for h in request.headers.all(HeaderName::Via) {
            for element in split_commas(h.value) {
                out.put_slice(b"Via: ");
                if first_via {
                    first_via = false;
                    match Via::parse(request.headers.src(), element) {
                        Ok(mut via) => {
                            stamp_via(&mut via, source);
                            let _ = write!(Writer(&mut out), "{via}");
                        }
                        // A damaged Via is echoed as received.
                        Err(_) => out.put_slice(element.as_bytes()),
                    }
                } else {
                    out.put_slice(element.as_bytes());
                }
                out.put_slice(b"\r\n");
            }
        }
        copy(&mut out, request, HeaderName::From, "From");
        for h in request.headers.all(HeaderName::To).take(1) {
            out.put_slice(b"To: ");
            out.put_slice(h.value.as_bytes());
            let needs_tag = self.status > 100
                && !to_tag.is_empty()
                && NameAddr::parse(request.headers.src(), h.value).is_ok_and(|a| a.tag().is_none());
            if needs_tag {
                out.put_slice(b";tag=");
                out.put_slice(to_tag.as_bytes());
            }
            out.put_slice(b"\r\n");
        }
        copy(&mut out, request, HeaderName::CallId, "Call-ID");
        copy(&mut out, request, HeaderName::CSeq, "CSeq");
        for (name, value) in &self.headers {
            out.put_slice(name.as_bytes());
            out.put_slice(b": ");
            out.put_slice(value.as_bytes());
            out.put_slice(b"\r\n");
        }
        out.put_slice(concat!("Server: sipreg/", env!("CARGO_PKG_VERSION"), "\r\n").as_bytes());
        match &self.body {
            Some((ct, body)) => {
                out.put_slice(b"Content-Type: ");
                out.put_slice(ct.as_bytes());
                out.put_slice(b"\r\nContent-Length: ");
                out.put_slice(num.format(body.len()).as_bytes());
                out.put_slice(b"\r\n\r\n");
                out.put_slice(body);
            }
            None => out.put_slice(b"Content-Length: 0\r\n\r\n"),
        }
        // An exactly sized copy: a UDP answer stays in the transaction table for Timer J
        // (32 s), so the slack of the working buffer would be kept that long too. The
        // working buffer is freed at once and reused by the next answer.
        Bytes::copy_from_slice(&out)
    }

    /// Room for the encoded response: what is copied from the request, the handler's
    /// fields and body, and slack for the Via's `received`/`rport` and the fixed fields.
    /// Sized from the parts rather than a fixed guess, so a 200 OK listing several
    /// contacts is written without growing (and copying) the working buffer.
    fn encoded_len_hint(&self, request: &Message, to_tag: &str) -> usize {
        let copied: usize = request
            .headers
            .iter()
            .filter(|h| copied_from_request(h.name))
            .map(|h| h.value.len() + 12)
            .sum();
        let own: usize = self
            .headers
            .iter()
            .map(|(n, v)| n.len() + v.len() + 4)
            .sum();
        let body = self
            .body
            .as_ref()
            .map_or(0, |(ct, b)| ct.len() + b.len() + 40);
        copied + own + body + self.reason.len() + to_tag.len() + 160
    }
}

/// Copies every field of one kind verbatim (From, Call-ID and CSeq are echoed exactly).
fn copy(out: &mut BytesMut, request: &Message, name: HeaderName, printed: &str) {
    for h in request.headers.all(name) {
        out.put_slice(printed.as_bytes());
        out.put_slice(b": ");
        out.put_slice(h.value.as_bytes());
        out.put_slice(b"\r\n");
    }
}

/// Adds `received` when the sent-by host is not the packet's source address, and fills an
/// empty `rport` with the source port (RFC 3581 §4: then `received` is always added).
pub fn stamp_via(via: &mut Via, source: SocketAddr) {
    let ip = source.ip().to_string();
    let ip_text = match source {
        SocketAddr::V6(_) => format!("[{ip}]"),
        SocketAddr::V4(_) => ip.clone(),
    };
    let wants_rport = via.rport().is_some();
    if wants_rport {
        via.params.set("rport", Some(&source.port().to_string()));
    }
    let host = via.host.trim_start_matches('[').trim_end_matches(']');
    let same_host = host.parse::<std::net::IpAddr>().ok() == Some(source.ip());
    if wants_rport || !same_host {
        via.params.set("received", Some(&ip_text));
    }
}

struct Writer<'a>(&'a mut BytesMut);

impl std::fmt::Write for Writer<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.put_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::parser::{Limits, parse_datagram};

    #[test]
    fn copies_fields_and_stamps_via() {
        let req = parse_datagram(
            Bytes::from_static(b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP host.example.com;branch=z9hG4bK1;rport, SIP/2.0/TCP other;branch=z9hG4bK2\r\nFrom: \"A\" <sip:a@b>;tag=9\r\nTo: sip:a@b\r\nCall-ID: c1\r\nCSeq: 7 OPTIONS\r\n\r\n"),
            &Limits::default(),
        )
        .unwrap();
        let src: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let out = Response::new(200)
            .header("Allow", "OPTIONS")
            .encode(&req, src, "abc");
        let text = std::str::from_utf8(&out).unwrap();
        assert!(text.starts_with("SIP/2.0 200 OK\r\n"));
        assert!(text.contains("Via: SIP/2.0/UDP host.example.com;branch=z9hG4bK1;rport=40000;received=127.0.0.1\r\nVia: SIP/2.0/TCP other;branch=z9hG4bK2\r\n"));
        assert!(text.contains("From: \"A\" <sip:a@b>;tag=9\r\n"));
        assert!(text.contains("To: sip:a@b;tag=abc\r\n"));
        assert!(text.contains("Call-ID: c1\r\nCSeq: 7 OPTIONS\r\nAllow: OPTIONS\r\n"));
        assert!(text.ends_with("Content-Length: 0\r\n\r\n"));
    }

    #[test]
    fn reason_is_one_line() {
        let r = Response::new(400).with_reason("bad\r\nInjected: x");
        assert_eq!(r.reason, "bad  Injected: x");
    }
}
