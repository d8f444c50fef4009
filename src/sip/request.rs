//! The validated view of a request: the start line and the header fields every request
//! must carry (RFC 3261 §8.1.1) parsed once, so handlers work on typed values.
//!
//! Validation only judges syntax. Whether the method, the URI scheme or the extensions are
//! acceptable is the dispatcher's business (`server::dispatch`), in the order RFC 4475's
//! verdicts need.

use bytestring::ByteString;

use super::headers::{
    Authorization, CSeq, CallId, ContactValue, Expires, From, HeaderError, HeaderName, MaxForwards,
    To, TypedHeader, Via,
};
use super::message::Message;
use super::method::Method;
use super::name_addr::NameAddr;
use super::text::find_byte;
use super::uri::Uri;

/// A request whose mandatory header fields are present and well formed.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    pub uri: Uri,
    /// Every Via element, topmost first.
    pub vias: Vec<Via>,
    pub from: NameAddr,
    pub to: NameAddr,
    pub call_id: ByteString,
    pub cseq: CSeq,
    pub max_forwards: Option<u32>,
    /// Contact elements, parsed for the methods that use them (REGISTER, SUBSCRIBE).
    pub contacts: Vec<ContactValue>,
    pub msg: Message,
}

/// Why a request is refused before it reaches a handler: status code and reason phrase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub status: u16,
    pub reason: String,
}

impl Rejection {
    pub fn bad_request(reason: impl Into<String>) -> Rejection {
        Rejection {
            status: 400,
            reason: reason.into(),
        }
    }
}

fn required<H: TypedHeader>(msg: &Message) -> Result<H, Rejection> {
    let mut fields = msg.headers.all(H::NAME);
    let Some(h) = fields.next() else {
        return Err(Rejection::bad_request(format!(
            "Missing {} header",
            H::NAME
        )));
    };
    if fields.next().is_some() {
        return Err(Rejection::bad_request(format!(
            "Multiple {} headers",
            H::NAME
        )));
    }
    H::parse(msg.headers.src(), h.value).map_err(malformed)
}

/// The 400 for a malformed header field, its reason phrase naming the field.
fn malformed(e: HeaderError) -> Rejection {
    Rejection::bad_request(capitalise(e.to_string()))
}

fn capitalise(mut s: String) -> String {
    if let Some(f) = s.get_mut(0..1) {
        f.make_ascii_uppercase();
    }
    s
}

impl Request {
    /// Validates `msg` (which must be a request). On failure the message comes back with
    /// the rejection so the caller can still answer it.
    ///
    /// The fields are parsed into locals and the request is built once at the end: an
    /// intermediate struct would be one more copy of about a kilobyte per request.
    pub fn from_message(msg: Message) -> Result<Request, Box<(Message, Rejection)>> {
        // On a rejection the message goes back to the caller with it.
        macro_rules! check {
            ($e:expr) => {
                match $e {
                    Ok(v) => v,
                    Err(r) => return Err(Box::new((msg, r))),
                }
            };
        }
        let (method, uri) = check!(request_line(&msg.first_line));
        let vias = check!(msg.headers.list::<Via>().map_err(malformed));
        if vias.is_empty() {
            check!(Err(Rejection::bad_request("Missing Via header")));
        }
        if vias[0].branch() == Some(super::headers::MAGIC_COOKIE) {
            check!(Err(Rejection::bad_request(
                "Missing transaction identifier (branch is only the magic cookie)",
            )));
        }
        let from = check!(required::<From>(&msg)).0;
        let to = check!(required::<To>(&msg)).0;
        let call_id = check!(required::<CallId>(&msg)).0;
        let cseq = check!(required::<CSeq>(&msg));
        let max_forwards = match msg.headers.first(HeaderName::MaxForwards) {
            None => None,
            Some(_) => Some(check!(required::<MaxForwards>(&msg)).0),
        };

        let mut contacts = Vec::new();
        if matches!(method, Method::Register | Method::Subscribe) {
            contacts = check!(msg.headers.list::<ContactValue>().map_err(malformed));
        }
        if method == Method::Register && to.uri.as_sip().is_none() {
            check!(Err(Rejection::bad_request(
                "The address-of-record in To must be a SIP or SIPS URI",
            )));
        }
        Ok(Request {
            method,
            uri,
            vias,
            from,
            to,
            call_id,
            cseq,
            max_forwards,
            contacts,
            msg,
        })
    }

    pub fn top_via(&self) -> &Via {
        // Validation guarantees at least one Via.
        &self.vias[0]
    }

    /// The Expires header: `None` when absent, `Some(Err)` when malformed.
    pub fn expires(&self) -> Option<Result<u32, ()>> {
        match self.msg.headers.single::<Expires>() {
            Ok(v) => v.map(|e| Ok(e.0)),
            Err(_) => Some(Err(())),
        }
    }

    /// The first `Authorization` header, parsed.
    pub fn authorization(&self) -> Option<Result<Authorization, HeaderError>> {
        let raw = self.msg.headers.first(HeaderName::Authorization)?;
        Some(Authorization::parse(self.msg.headers.src(), raw))
    }
}

/// `Method SP Request-URI SP SIP-Version` with exactly two single spaces.
fn request_line(line: &ByteString) -> Result<(Method, Uri), Rejection> {
    let b = line.as_bytes();
    let sp = |from: usize| find_byte(b' ', &b[from..]).map(|n| from + n);
    let (Some(s1), Some(s2)) = (sp(0), sp(0).and_then(|s1| sp(s1 + 1))) else {
        return Err(Rejection::bad_request("Malformed Request-Line"));
    };
    if sp(s2 + 1).is_some() {
        return Err(Rejection::bad_request("Malformed Request-Line"));
    }
    let (m, u, v) = (&line[..s1], &line[s1 + 1..s2], &line[s2 + 1..]);
    let method =
        Method::parse(line, m).ok_or_else(|| Rejection::bad_request("Malformed method"))?;
    check_version(v)?;
    let uri = Uri::parse(line, u).map_err(|_| Rejection::bad_request("Malformed Request-URI"))?;
    if let Uri::Sip(s) = &uri
        && s.headers().is_some()
    {
        return Err(Rejection::bad_request("Request-URI must not carry headers"));
    }

    Ok((method, uri))
}

/// `SIP/2.0`, anything else well formed is 505, anything else 400.
fn check_version(v: &str) -> Result<(), Rejection> {
    let Some(rest) = v
        .get(..4)
        .filter(|p| p.eq_ignore_ascii_case("SIP/"))
        .map(|_| &v[4..])
    else {
        return Err(Rejection::bad_request("Malformed SIP-Version"));
    };
    let Some((major, minor)) = rest.split_once('.') else {
        return Err(Rejection::bad_request("Malformed SIP-Version"));
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(major) || !digits(minor) {
        return Err(Rejection::bad_request("Malformed SIP-Version"));
    }
    if major.trim_start_matches('0') != "2" || !minor.trim_start_matches('0').is_empty() {
        return Err(Rejection {
            status: 505,
            reason: "Version Not Supported".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::parser::{Limits, parse_datagram};
    use bytes::Bytes;

    const BASE: &str = "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK77\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\nCall-ID: x@y\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n";

    fn validate(first: &str, extra: &str) -> Result<Request, Rejection> {
        let text = format!("{first}\r\n{BASE}{extra}Content-Length: 0\r\n\r\n");
        let msg = parse_datagram(Bytes::from(text), &Limits::default()).unwrap();
        Request::from_message(msg).map_err(|b| b.1)
    }

    #[test]
    fn good_request() {
        let r = validate("OPTIONS sip:b@example.com SIP/2.0", "").unwrap();
        assert_eq!(r.method, Method::Options);
        assert_eq!(r.cseq.seq, 1);
        assert_eq!(r.top_via().branch(), Some("z9hG4bK77"));
        assert_eq!(r.max_forwards, Some(70));
    }

    #[test]
    fn request_line_errors() {
        for (line, status) in [
            ("OPTIONS sip:b@example.com SIP/2.0 ", 400),
            ("OPTIONS  sip:b@example.com SIP/2.0", 400),
            ("OPTIONS <sip:b@example.com> SIP/2.0", 400),
            ("OPTIONS sip:b@example.com; lr SIP/2.0", 400),
            ("OPTIONS sip:b@example.com?Route=%3Csip:x%3E SIP/2.0", 400),
            ("OPTIONS sip:b@example.com SIP/7.0", 505),
            ("OPTIONS sip:b@example.com SIP2.0", 400),
        ] {
            assert_eq!(validate(line, "").unwrap_err().status, status, "{line}");
        }
    }

    #[test]
    fn header_errors_name_the_header() {
        let e = validate("OPTIONS sip:b@example.com SIP/2.0", "CSeq: 2 OPTIONS\r\n").unwrap_err();
        assert_eq!(e.reason, "Multiple CSeq headers");
        let e = validate("OPTIONS sip:b@example.com SIP/2.0", "Max-Forwards: x\r\n").unwrap_err();
        assert_eq!(e.reason, "Multiple Max-Forwards headers");
    }
}
