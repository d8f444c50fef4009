//! Robustness: 100,000+ randomly mutated variants of the torture messages (and a few
//! built-in seeds) go through the datagram parser, the dispatcher with response encoding,
//! and the TCP framer fed in random chunks. Nothing may panic, and neither a parsed message
//! nor the framer's buffer may outgrow the limits.

mod common;

use bytes::{Buf, Bytes, BytesMut};
use sipreg::server::NoServices;
use sipreg::server::dispatch::{Decision, decide};
use sipreg::sip::{Frame, Limits, frame_stream, parse_datagram};

/// A small deterministic generator (xorshift64*), so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const SPECIAL: &[&[u8]] = &[
    b"\r\n",
    b"\r\n\r\n",
    b":",
    b";",
    b",",
    b"\"",
    b"<",
    b">",
    b"\\",
    b"%",
    b"%0",
    b" ",
    b"\t",
    b"\0",
    b"@",
    b"=",
    b"sip:",
    b"SIP/2.0",
    b"Content-Length: 99999999999\r\n",
    b"l: -1\r\n",
    b"Via: SIP/2.0/UDP [::1\r\n",
    b"\xff\xfe",
    b"\xe2\x82",
    b"z9hG4bK",
    b"*",
];

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut m = seeds[rng.below(seeds.len())].clone();
    for _ in 0..=rng.below(4) {
        let len = m.len();
        match rng.below(7) {
            0 if len > 0 => {
                let i = rng.below(len);
                m[i] = rng.next() as u8;
            }
            1 => {
                let s = SPECIAL[rng.below(SPECIAL.len())];
                let i = rng.below(len + 1);
                m.splice(i..i, s.iter().copied());
            }
            2 if len > 0 => {
                let a = rng.below(len);
                let b = (a + rng.below(64)).min(len);
                m.drain(a..b);
            }
            3 if len > 0 => {
                let a = rng.below(len);
                let b = (a + rng.below(128)).min(len);
                let piece = m[a..b].to_vec();
                let i = rng.below(m.len() + 1);
                m.splice(i..i, piece);
            }
            4 => m.truncate(rng.below(len + 1)),
            5 => {
                let other = &seeds[rng.below(seeds.len())];
                let cut = rng.below(other.len() + 1);
                m.extend_from_slice(&other[cut..]);
            }
            _ => {
                // Change a digit run (lengths, CSeq numbers, ports).
                if let Some(i) = (0..len)
                    .map(|k| (k + rng.below(len)) % len)
                    .find(|&k| m[k].is_ascii_digit())
                {
                    let s = (rng.next() % 100_000_000_000).to_string();
                    m.splice(i..i + 1, s.bytes());
                }
            }
        }
    }
    m
}

fn seeds() -> Vec<Vec<u8>> {
    let mut seeds = vec![
        common::request("REGISTER", "s1", "Contact: <sip:a@192.0.2.1:5060>;expires=60;+sip.instance=\"<urn:uuid:1>\";reg-id=1\r\nAuthorization: Bearer abc.def.ghi\r\n").into_bytes(),
        common::request("OPTIONS", "s2", "Require: path\r\nAccept: a/b,\r\n c/d\r\n").into_bytes(),
        common::request("SUBSCRIBE", "s3", "Event: presence;id=1\r\nExpires: 600\r\n").into_bytes(),
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nContent-Length: 0\r\n\r\n".to_vec(),
    ];
    if let Some(dir) = common::rfc4475_dir() {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "dat") {
                seeds.push(std::fs::read(p).unwrap());
            }
        }
    }
    seeds
}

#[test]
fn mutated_messages_never_panic_and_stay_bounded() {
    let limits = Limits {
        max_message_size: 4_096,
        max_headers: 64,
        max_header_line: 1_024,
    };
    let seeds = seeds();
    let mut rng = Rng(0x05EE_D0F5_12E6);
    let src: std::net::SocketAddr = "127.0.0.1:5999".parse().unwrap();
    let iterations = 100_000;
    let (mut parsed, mut answered) = (0u32, 0u32);
    for _ in 0..iterations {
        let input = mutate(&mut rng, &seeds);
        let result = parse_datagram(Bytes::from(input.clone()), &limits);
        if let Ok(m) = &result {
            parsed += 1;
            assert!(m.headers.len() <= limits.max_headers);
            assert!(m.body.len() <= input.len());
        }
        match decide(result, &NoServices) {
            Decision::Stateless(msg, resp) => {
                answered += 1;
                let out = resp.encode(&msg, src, "t");
                assert!(out.starts_with(b"SIP/2.0 "));
            }
            Decision::Respond(req, resp) => {
                answered += 1;
                let out = resp.encode(&req.msg, src, "t");
                // What sipreg sends must itself parse.
                assert!(parse_datagram(out, &Limits::default()).is_ok());
            }
            Decision::Handle(_) | Decision::Drop(_) => {}
        }

        // The same octets as a TCP stream arriving in random chunks.
        let mut buf = BytesMut::new();
        let mut rest = &input[..];
        'stream: while !rest.is_empty() {
            let n = 1 + rng.below(rest.len().min(512));
            buf.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            loop {
                match frame_stream(&buf, &limits) {
                    Frame::Incomplete => break,
                    Frame::Ping(n) | Frame::Skip(n) => buf.advance(n),
                    Frame::Message(n) => {
                        assert!(n <= limits.max_message_size);
                        let _ = parse_datagram(buf.split_to(n).freeze(), &limits);
                    }
                    Frame::Invalid(_) => break 'stream,
                }
            }
            assert!(
                buf.len() <= limits.max_message_size + 512,
                "framer buffer grew to {}",
                buf.len()
            );
        }
    }
    // The mutations must leave a good share parseable, or the test would exercise little.
    assert!(parsed > iterations / 10, "only {parsed} parsed");
    assert!(answered > iterations / 10, "only {answered} answered");
    eprintln!("{iterations} mutated messages: {parsed} parsed, {answered} answered");
}
