//! Parse a typical REGISTER (Bearer token of ~700 octets, a Contact with `+sip.instance`
//! and `reg-id`, 10 header fields) into the fields the registrar needs, with sipreg and
//! with `rsip` in the same run, and print messages per second and the ratio.
//!
//! `cargo bench --bench parse` (criterion figures, then the side-by-side summary).

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, Throughput};
use sipreg::sip::Limits;

mod common;
use common::{per_second, register, sipreg_parse};

/// The same fields with rsip 0.4 (as far as it can type them).
fn rsip_parse(data: &[u8]) -> usize {
    use rsip::prelude::*;
    let msg = rsip::SipMessage::try_from(data).expect("rsip parse");
    let rsip::SipMessage::Request(req) = msg else {
        panic!("not a request")
    };
    let via = req.via_header().expect("via").typed().expect("typed via");
    let from = req
        .from_header()
        .expect("from")
        .typed()
        .expect("typed from");
    let to = req.to_header().expect("to").typed().expect("typed to");
    let call_id = req.call_id_header().expect("call-id").clone();
    let cseq = req
        .cseq_header()
        .expect("cseq")
        .typed()
        .expect("typed cseq");
    // rsip's typed Contact rejects the quoted `+sip.instance` value, so it keeps the raw
    // header: rsip does less work than sipreg here, which flatters its figure.
    let contact = req.contact_header().expect("contact").typed().ok();
    let expires = req
        .expires_header()
        .map(|e| e.seconds().unwrap_or(0))
        .unwrap_or(0);
    let auth = req
        .authorization_header()
        .map(|a| a.value().len())
        .unwrap_or(0);
    black_box((
        &req.method,
        &req.uri,
        via.branch(),
        from.tag(),
        to.uri,
        call_id,
        cseq.seq,
        contact,
        expires,
    ));
    auth
}

fn main() {
    let data = Bytes::from(register());
    let limits = Limits::default();
    assert!(sipreg_parse(&data, &limits) > 700, "token not parsed");
    assert!(rsip_parse(&data) > 700, "rsip did not see the token");

    // PARSE_PROFILE=N: only run sipreg's parse N times (for callgrind or perf).
    if let Some(n) = std::env::var("PARSE_PROFILE")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        for _ in 0..n {
            black_box(sipreg_parse(&data, &limits));
        }
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    let mut g = c.benchmark_group("parse_register");
    g.throughput(Throughput::Elements(1));
    g.bench_function("sipreg", |b| {
        b.iter(|| sipreg_parse(black_box(&data), &limits))
    });
    g.bench_function("rsip", |b| b.iter(|| rsip_parse(black_box(&data))));
    g.finish();
    c.final_summary();

    let quick = std::env::args().any(|a| a == "--test" || a == "--quick");
    let budget = if quick {
        Duration::from_millis(100)
    } else {
        Duration::from_secs(3)
    };
    let ours = per_second(&mut || sipreg_parse(&data, &limits), budget);
    let theirs = per_second(&mut || rsip_parse(&data), budget);
    println!(
        "REGISTER ({} octets) parsed to registrar fields, one core: sipreg {:.0} msg/s, rsip {:.0} msg/s, ratio {:.1}x",
        data.len(),
        ours,
        theirs,
        ours / theirs
    );
}
