//! The message of the parse benchmark, sipreg's side of it and the rate loop, shared with
//! `bench/ceiling` (a directory module, so cargo does not take it for a bench of its own).

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sipreg::sip::{Limits, Request, parse_datagram};

/// A typical REGISTER: a 700-octet Bearer token, a Contact with `+sip.instance` and
/// `reg-id`, 10 header fields, 1,144 octets in all.
pub fn register() -> Vec<u8> {
    // A JWT-shaped token: header.payload.signature, 700 octets in all.
    let token: String = {
        let mut t = String::from("eyJhbGciOiJSUzI1NiIsImtpZCI6IjFaMmNQRFJ3In0.");
        while t.len() < 430 {
            t.push_str("eyJzdWIiOiI0NTY3In0");
        }
        t.push('.');
        while t.len() < 700 {
            t.push_str("Q2xhaW1zU2lnbmF0dXJl");
        }
        t.truncate(700);
        t
    };
    format!(
        "REGISTER sip:example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.45:5060;branch=z9hG4bK776asdhds;rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@example.com>;tag=456248\r\n\
         To: <sip:alice@example.com>\r\n\
         Call-ID: 843817637684230@998sdasdh09\r\n\
         CSeq: 1826 REGISTER\r\n\
         Contact: <sip:alice@192.0.2.45:5060;transport=udp>;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\";reg-id=1;expires=3600\r\n\
         Expires: 3600\r\n\
         Authorization: Bearer {token}\r\n\
         Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// The registrar's view with sipreg: every field it reads, typed.
pub fn sipreg_parse(data: &Bytes, limits: &Limits) -> usize {
    let msg = parse_datagram(data.clone(), limits).expect("parse");
    let req = Request::from_message(msg).expect("valid");
    let auth = req.authorization().expect("auth").expect("valid auth");
    let expires = req.expires().and_then(Result::ok).unwrap_or(0);
    black_box((
        &req.method,
        &req.uri,
        req.top_via().branch(),
        req.from.tag(),
        &req.to.uri,
        &req.call_id,
        req.cseq.seq,
        &req.contacts,
        expires,
    ));
    auth.0.token68().map_or(0, str::len) + req.contacts.len()
}

/// Messages per second of `f` within `budget`.
pub fn per_second(f: &mut dyn FnMut() -> usize, budget: Duration) -> f64 {
    // Warm up, then count whole runs within the budget.
    for _ in 0..1_000 {
        black_box(f());
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget {
        for _ in 0..1_000 {
            black_box(f());
        }
        n += 1_000;
    }
    n as f64 / start.elapsed().as_secs_f64()
}
