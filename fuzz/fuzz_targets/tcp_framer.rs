//! The stream framer of SIP over TCP/TLS (RFC 3261 §18.3) fed the same octets in
//! arbitrary chunks, driven the way `transport::tcp` drives it. Checks:
//! - the frames (pings, skipped CRLFs, messages, loss of framing) do not depend on how
//!   the stream was cut into reads;
//! - a framed message is never over the size limit, and a buffer waiting for more is
//!   never over it either (the per-connection memory bound);
//! - when a framed message parses, the parser's body ends where the framer cut.
//!
//! Input: one octet `k`, then `k % 8` chunk sizes (one octet each, 1 to 256 octets per
//! read, used in turn), then the stream. `k % 8 == 0` reads the stream at once.
#![no_main]

use bytes::{Buf, Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use sipreg::sip::{Frame, Limits, frame_stream, parse_datagram};

const LIMITS: Limits = Limits {
    max_message_size: 2_048,
    max_headers: 64,
    max_header_line: 1_024,
};

#[derive(Debug, PartialEq, Eq)]
enum Event {
    Ping(usize),
    Skip(usize),
    Message(Vec<u8>),
    Invalid,
}

/// The frames of `stream` read in chunks of `sizes` (cycled; empty: all at once).
fn frames(stream: &[u8], sizes: &[usize]) -> Vec<Event> {
    let mut events = Vec::new();
    let mut buf = BytesMut::new();
    let mut rest = stream;
    let mut turn = 0;
    while !rest.is_empty() {
        let n = match sizes {
            [] => rest.len(),
            s => s[turn % s.len()].min(rest.len()),
        };
        turn += 1;
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        loop {
            match frame_stream(&buf, &LIMITS) {
                Frame::Incomplete => {
                    assert!(
                        buf.len() <= LIMITS.max_message_size,
                        "{} octets held waiting for more",
                        buf.len()
                    );
                    break;
                }
                Frame::Ping(n) => {
                    assert_eq!(&buf[..n], b"\r\n\r\n");
                    buf.advance(n);
                    events.push(Event::Ping(n));
                }
                Frame::Skip(n) => {
                    assert_eq!(&buf[..n], b"\r\n");
                    buf.advance(n);
                    events.push(Event::Skip(n));
                }
                Frame::Message(n) => {
                    assert!(n > 0 && n <= LIMITS.max_message_size && n <= buf.len());
                    let data = buf.split_to(n).freeze();
                    check_message(&data);
                    events.push(Event::Message(data.to_vec()));
                }
                Frame::Invalid(_) => {
                    events.push(Event::Invalid);
                    return events;
                }
            }
        }
    }
    events
}

/// The parser and the framer agree on where the message ends.
fn check_message(data: &Bytes) {
    let Ok(m) = parse_datagram(data.clone(), &LIMITS) else {
        return;
    };
    let head = data
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a framed message has an empty line");
    assert_eq!(
        head + 4 + m.body.len(),
        data.len(),
        "the parser's body and the framer's Content-Length disagree"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&k, rest)) = data.split_first() else {
        return;
    };
    let k = usize::from(k % 8).min(rest.len());
    let (sizes, stream) = rest.split_at(k);
    let sizes: Vec<usize> = sizes.iter().map(|s| usize::from(*s) + 1).collect();
    let whole = frames(stream, &[]);
    same(&whole, &frames(stream, &sizes), &sizes);
    // Octet by octet, the worst case of a trickling sender.
    if stream.len() <= 512 {
        same(&whole, &frames(stream, &[1]), &[1]);
    }
});

/// Panics at the first frame that differs, showing messages by length only.
fn same(whole: &[Event], chunked: &[Event], sizes: &[usize]) {
    let short = |e: Option<&Event>| match e {
        Some(Event::Message(m)) => format!("Message({} octets)", m.len()),
        other => format!("{other:?}"),
    };
    if let Some(i) = (0..whole.len().max(chunked.len())).find(|&i| whole.get(i) != chunked.get(i)) {
        panic!(
            "framing depends on the reads (sizes {sizes:?}): frame {i} is {} read at once, {} in chunks",
            short(whole.get(i)),
            short(chunked.get(i))
        );
    }
}
