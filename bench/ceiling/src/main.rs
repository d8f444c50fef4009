//! What a borrowed parser reaches on this machine, beside sipreg's, in the same run.
//!
//! 1. Agreement: on the parse bench's REGISTER and on thousands of damaged copies of it
//!    (and the RFC 4475 messages when `SIPREG_RFC4475_DIR` is set), whatever the borrowed
//!    parser takes, sipreg takes too (parse, validation and the dispatcher's CSeq check),
//!    with the same fields. So the borrowed parser's figure is not flattered by
//!    validating less. It may refuse more (its shapes are few); the counts are printed.
//!    Any disagreement ends the program with status 1. (Weakening the borrowed parser's
//!    host or CSeq checks makes this fail.)
//! 2. Timing (skipped with `--check`): both parsers alternately, three rounds of two
//!    seconds each, messages per second. Pin it: `taskset -c 1`.
//!
//! `PROFILE=N WHICH=borrowed|sipreg` runs N parses of one kind and nothing else, for
//! callgrind (instructions per parse = (count at N - count at 0) / N).

#[cfg(not(target_arch = "x86_64"))]
compile_error!("the borrowed parser uses SSE2: x86-64 only");

mod borrowed;
#[path = "../../../benches/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use sipreg::sip::{Limits, Request, parse_datagram};

/// A Contact's display name, user, host, port and `+sip.instance`.
type ContactFields = (
    Option<String>,
    Option<String>,
    String,
    Option<u16>,
    Option<String>,
);

/// The fields both parsers give, in one comparable shape.
#[derive(Debug, PartialEq)]
struct Fields {
    method: String,
    uri: (bool, Option<String>, String, Option<u16>, String),
    via: (String, String, Option<u16>, Option<String>),
    from: (Option<String>, Option<String>),
    to: (Option<String>, String, Option<u16>),
    call_id: String,
    cseq: u32,
    contacts: Vec<ContactFields>,
    expires: Option<u32>,
    token: Option<String>,
}

fn own(s: Option<&str>) -> Option<String> {
    s.map(str::to_string)
}

fn sipreg_fields(data: &Bytes, limits: &Limits) -> Option<Fields> {
    let msg = parse_datagram(data.clone(), limits).ok()?;
    let req = Request::from_message(msg).ok()?;
    // The dispatcher's check before any handler (a 400 otherwise).
    if req.cseq.method != req.method {
        return None;
    }
    let token = match req.authorization() {
        None => None,
        Some(a) => Some(a.ok()?.0.token68()?.to_string()),
    };
    let expires = match req.expires() {
        None => None,
        Some(e) => Some(e.ok()?),
    };
    let uri = req.uri.as_sip()?;
    let to = req.to.uri.as_sip()?;
    let via = req.top_via();
    let mut contacts = Vec::new();
    for c in &req.contacts {
        let a = c.addr()?;
        let u = a.uri.as_sip()?;
        contacts.push((
            own(a.display.as_deref()),
            own(u.user.as_deref()),
            u.host.to_string(),
            u.port,
            own(a.params.value("+sip.instance")),
        ));
    }
    Some(Fields {
        method: req.method.as_str().to_string(),
        uri: (
            uri.secure,
            own(uri.user.as_deref()),
            uri.host.to_string(),
            uri.port,
            uri.params.to_string(),
        ),
        via: (
            via.transport.to_string(),
            via.host.to_string(),
            via.port,
            own(via.branch()),
        ),
        from: (own(req.from.display.as_deref()), own(req.from.tag())),
        to: (own(to.user.as_deref()), to.host.to_string(), to.port),
        call_id: req.call_id.to_string(),
        cseq: req.cseq.seq,
        contacts,
        expires,
        token,
    })
}

fn borrowed_fields(data: &[u8]) -> Option<Fields> {
    let v = borrowed::parse(data)?;
    let p = |params: &str, name: &str| own(borrowed::param(params, name));
    Some(Fields {
        method: v.method.to_string(),
        uri: (
            v.uri.secure,
            own(v.uri.user),
            v.uri.host.to_string(),
            v.uri.port,
            v.uri.params.to_string(),
        ),
        via: (
            v.via.transport.to_string(),
            v.via.host.to_string(),
            v.via.port,
            p(v.via.params, "branch"),
        ),
        from: (own(v.from.display), p(v.from.params, "tag")),
        to: (own(v.to.uri.user), v.to.uri.host.to_string(), v.to.uri.port),
        call_id: v.call_id.to_string(),
        cseq: v.cseq,
        contacts: v.contacts[..v.n_contacts as usize]
            .iter()
            .map(|c| {
                (
                    own(c.display),
                    own(c.uri.user),
                    c.uri.host.to_string(),
                    c.uri.port,
                    p(c.params, "+sip.instance"),
                )
            })
            .collect(),
        expires: v.expires,
        token: (!v.auth_scheme.is_empty()).then(|| v.token.to_string()),
    })
}

/// xorshift64: the same damaged messages on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// One to three edits: a byte replaced, inserted or removed, a line repeated, a letter's
/// case flipped. The octets are the ones SIP's grammar turns on.
fn damage(rng: &mut Rng, msg: &[u8]) -> Vec<u8> {
    const OCTETS: &[u8] = b" \t;,\"<>@:%=/[]?.-+_~*!'`()\\\r\nAz09\xc3\x80";
    let mut m = msg.to_vec();
    for _ in 0..=rng.below(3) {
        // Edits stay before the final CRLFCRLF most of the time.
        let at = rng.below(m.len().saturating_sub(4).max(1));
        match rng.below(5) {
            0 => m[at] = OCTETS[rng.below(OCTETS.len())],
            1 => m.insert(at, OCTETS[rng.below(OCTETS.len())]),
            2 => {
                m.remove(at);
            }
            3 => {
                let start = m[..at]
                    .iter()
                    .rposition(|c| *c == b'\n')
                    .map_or(0, |i| i + 1);
                let end = m[at..]
                    .iter()
                    .position(|c| *c == b'\n')
                    .map_or(m.len(), |i| at + i + 1);
                let line = m[start..end].to_vec();
                m.splice(end..end, line);
            }
            _ if m[at].is_ascii_alphabetic() => m[at] ^= 0x20,
            _ => {} // not a letter: no case to flip
        }
    }
    m
}

/// Returns (both take, only sipreg takes, neither takes); exits on a disagreement.
fn agreement(messages: &[Vec<u8>], limits: &Limits) -> (usize, usize, usize) {
    let (mut both, mut only_sipreg, mut neither) = (0, 0, 0);
    for m in messages {
        let data = Bytes::copy_from_slice(m);
        match (borrowed_fields(m), sipreg_fields(&data, limits)) {
            (Some(a), Some(b)) if a == b => both += 1,
            (None, Some(_)) => only_sipreg += 1,
            (None, None) => neither += 1,
            (a, b) => {
                eprintln!(
                    "DISAGREEMENT on {:?}\n borrowed: {a:?}\n sipreg:   {b:?}",
                    String::from_utf8_lossy(m)
                );
                std::process::exit(1);
            }
        }
    }
    (both, only_sipreg, neither)
}

/// The same fields as [`common::sipreg_parse`], borrowed.
fn borrowed_parse(data: &[u8]) -> usize {
    let v = borrowed::parse(data).expect("borrowed parse");
    black_box((
        v.method,
        &v.uri,
        borrowed::param(v.via.params, "branch"),
        borrowed::param(v.from.params, "tag"),
        &v.to.uri,
        v.call_id,
        v.cseq,
        &v.contacts[..v.n_contacts as usize],
        v.expires,
    ));
    v.token.len() + v.n_contacts as usize
}

fn main() {
    let msg = common::register();
    let data = Bytes::from(msg.clone());
    let limits = Limits::default();

    if let Ok(n) = std::env::var("PROFILE") {
        let n: u64 = n.parse().expect("PROFILE=number of parses");
        let sipreg = std::env::var("WHICH").as_deref() == Ok("sipreg");
        for _ in 0..n {
            if sipreg {
                black_box(common::sipreg_parse(&data, &limits));
            } else {
                black_box(borrowed_parse(black_box(&msg)));
            }
        }
        return;
    }

    let mut messages = vec![msg.clone()];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    messages.extend((0..50_000).map(|_| damage(&mut rng, &msg)));
    if let Ok(dir) = std::env::var("SIPREG_RFC4475_DIR") {
        let entries = std::fs::read_dir(&dir).expect("SIPREG_RFC4475_DIR is not a folder");
        for e in entries.flatten() {
            if e.path().extension().is_some_and(|x| x == "dat") {
                messages.push(std::fs::read(e.path()).expect("read a torture message"));
            }
        }
    }
    let (both, only_sipreg, neither) = agreement(&messages, &limits);
    assert!(
        borrowed_fields(&msg).is_some(),
        "the borrowed parser takes the bench message"
    );
    println!(
        "agreement on {} messages: both take {both} (same fields), only sipreg {only_sipreg}, \
         neither {neither}, only the borrowed parser 0",
        messages.len()
    );
    if std::env::args().any(|a| a == "--check") {
        return;
    }
    for _ in 0..3 {
        let a = common::per_second(
            &mut || common::sipreg_parse(&data, &limits),
            Duration::from_secs(2),
        );
        let b = common::per_second(&mut || borrowed_parse(&msg), Duration::from_secs(2));
        println!(
            "sipreg {a:.0} msg/s ({:.3} µs), borrowed {b:.0} msg/s ({:.3} µs), ratio {:.2}",
            1e6 / a,
            1e6 / b,
            b / a
        );
    }
}
