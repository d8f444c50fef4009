//! One UDP datagram through what sipreg does with it before any handler or I/O: the
//! parser, the dispatcher (RFC 3261 §8.2 checks, stateless answers), the typed headers a
//! handler reads, and response encoding. Besides "no panic", it checks the parser's
//! limits and that every response sipreg would send starts as a status line, and parses
//! when it answers a well-formed request.
#![no_main]

use std::net::SocketAddr;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sipreg::server::NoServices;
use sipreg::server::dispatch::{Decision, decide};
use sipreg::sip::{Limits, Message, parse_datagram};

/// Small limits, so inputs of libFuzzer's usual sizes reach every limit.
const LIMITS: Limits = Limits {
    max_message_size: 4_096,
    max_headers: 64,
    max_header_line: 1_024,
};

fn within_limits(m: &Message, input_len: usize) {
    assert!(
        m.headers.len() <= LIMITS.max_headers,
        "too many headers kept"
    );
    for h in m.headers.iter() {
        assert!(
            h.value.len() <= LIMITS.max_header_line,
            "a header value of {} octets was kept",
            h.value.len()
        );
    }
    assert!(m.body.len() <= input_len, "body longer than the datagram");
}

fn check_response(out: &Bytes, status: u16, must_parse: bool) {
    let line = format!("SIP/2.0 {status} ");
    assert!(out.starts_with(line.as_bytes()), "bad status line");
    if must_parse {
        let back = parse_datagram(out.clone(), &Limits::default());
        assert!(
            back.is_ok(),
            "sipreg's own response does not parse: {back:?}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let src: SocketAddr = "127.0.0.1:5999".parse().expect("a literal address");
    let result = parse_datagram(Bytes::copy_from_slice(data), &LIMITS);
    // The parser skips leading CRLFs (RFC 3261 §7.5) before it measures.
    let crlfs = data.chunks(2).take_while(|c| *c == b"\r\n").count();
    let unpadded = data.len() - 2 * crlfs;
    match &result {
        Ok(m) => {
            assert!(
                unpadded <= LIMITS.max_message_size,
                "oversized datagram parsed"
            );
            within_limits(m, data.len());
        }
        Err(e) => {
            assert!(matches!(e.status, 400 | 513), "status {}", e.status);
            assert_eq!(e.status == 513, unpadded > LIMITS.max_message_size);
            if let Some(p) = &e.partial {
                assert!(p.headers.len() <= LIMITS.max_headers);
            }
        }
    }
    match decide(result, &NoServices) {
        Decision::Stateless(msg, resp) => {
            let out = resp.encode(&msg, src, "t");
            check_response(&out, resp.status, false);
        }
        Decision::Respond(req, resp) => {
            let out = resp.encode(&req.msg, src, "t");
            check_response(&out, resp.status, true);
        }
        Decision::Handle(req) => {
            // What handlers read next; errors are answers, never panics.
            let _ = req.authorization();
            let _ = req.expires();
            let _ = req.top_via();
        }
        Decision::Drop(_) => {}
    }
});
