//! RFC 4475 torture messages against the verdicts in `../shared/rfc4475/README.md`, at two
//! layers: (a) the parser and dispatcher alone, (b) a running server over UDP and TCP.
//!
//! The folder comes from SIPREG_RFC4475_DIR (CI sets it); unset, the tests say they were
//! skipped. Layer (b) runs the whole sipreg (users store, registrar): a REGISTER that
//! parses gets the registrar's answer (`Reg`), 401 with the challenges since its users do
//! not exist, or, with authentication off, 200 listing the bindings.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use sipreg::server::dispatch::{Decision, decide};
use sipreg::server::{Context, Handler, Reply};
use sipreg::sip::headers::{ContactValue, HeaderName, Via};
use sipreg::sip::{Limits, Message, parse_datagram};
use sipreg::sip::{Method, Request, Response};

/// What the server owes a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum V {
    /// Answer with this status.
    S(u16),
    /// No answer.
    Drop,
    /// The REGISTER outcome: reaches the registrar (401 with authentication on).
    Reg,
}

/// Over TCP, when it differs from UDP.
#[derive(Debug, Clone, Copy)]
enum T {
    /// As over UDP, and the connection stays open.
    Same,
    /// These answers, then the server closes the connection.
    ThenClose(&'static [V]),
    /// No answer yet, connection still open (waiting for the rest of the body).
    Waits,
}

/// What the registrar answers these users (they do not exist) with authentication on.
const REG_OUTCOME: u16 = 401;

const CASES: &[(&str, V, T)] = &[
    ("wsinv.dat", V::S(405), T::Same),
    ("intmeth.dat", V::S(501), T::Same),
    ("esc01.dat", V::S(405), T::Same),
    ("escnull.dat", V::Reg, T::Same),
    ("esc02.dat", V::S(501), T::Same),
    ("lwsdisp.dat", V::S(200), T::Same),
    ("longreq.dat", V::S(405), T::Same),
    ("dblreq.dat", V::Reg, T::ThenClose(&[V::Reg, V::S(405)])),
    ("semiuri.dat", V::S(200), T::Same),
    ("transports.dat", V::S(200), T::Same),
    ("mpart01.dat", V::S(405), T::Same),
    ("unreason.dat", V::Drop, T::Same),
    ("noreason.dat", V::Drop, T::Same),
    ("badinv01.dat", V::S(400), T::Same),
    ("clerr.dat", V::S(400), T::Waits),
    ("ncl.dat", V::S(400), T::ThenClose(&[V::S(400)])),
    ("scalar02.dat", V::S(400), T::Same),
    ("scalarlg.dat", V::Drop, T::Same),
    ("quotbal.dat", V::S(400), T::Same),
    ("ltgtruri.dat", V::S(400), T::Same),
    ("lwsruri.dat", V::S(400), T::Same),
    ("lwsstart.dat", V::S(400), T::Same),
    ("trws.dat", V::S(400), T::Same),
    ("escruri.dat", V::S(400), T::Same),
    ("baddate.dat", V::S(405), T::Same),
    ("regbadct.dat", V::S(400), T::Same),
    ("badaspec.dat", V::S(400), T::Same),
    ("baddn.dat", V::S(400), T::Same),
    ("badvers.dat", V::S(505), T::Same),
    ("mismatch01.dat", V::S(400), T::Same),
    ("mismatch02.dat", V::S(501), T::Same),
    ("bigcode.dat", V::Drop, T::Same),
    ("badbranch.dat", V::S(400), T::Same),
    ("insuf.dat", V::S(400), T::Same),
    ("unkscm.dat", V::S(416), T::Same),
    ("novelsc.dat", V::S(416), T::Same),
    ("unksm2.dat", V::S(400), T::Same),
    ("bext01.dat", V::S(420), T::Same),
    ("invut.dat", V::S(405), T::Same),
    ("regaut01.dat", V::Reg, T::Same),
    ("multi01.dat", V::S(400), T::Same),
    ("mcl01.dat", V::S(400), T::ThenClose(&[V::S(400)])),
    ("bcast.dat", V::Drop, T::Same),
    ("zeromf.dat", V::S(200), T::Same),
    ("cparam01.dat", V::Reg, T::Same),
    ("cparam02.dat", V::Reg, T::Same),
    ("regescrt.dat", V::Reg, T::Same),
    ("sdp01.dat", V::S(405), T::Same),
    ("inv2543.dat", V::S(405), T::ThenClose(&[V::S(400)])),
];

fn expected_status(v: V) -> Option<u16> {
    match v {
        V::S(s) => Some(s),
        V::Reg => Some(REG_OUTCOME),
        V::Drop => None,
    }
}

fn load(name: &str) -> Option<Bytes> {
    let dir = rfc4475_dir()?;
    Some(Bytes::from(
        std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}")),
    ))
}

fn parse_file(name: &str) -> Option<Message> {
    Some(parse_datagram(load(name)?, &Limits::default()).unwrap_or_else(|e| panic!("{name}: {e}")))
}

#[test]
fn all_49_messages_are_in_the_table() {
    let Some(dir) = rfc4475_dir() else { return };
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".dat"))
        .collect();
    files.sort();
    let mut table: Vec<String> = CASES.iter().map(|c| c.0.to_string()).collect();
    table.sort();
    assert_eq!(files.len(), 49);
    assert_eq!(files, table);
}

/// Stands for the services in layer (a): it serves what sipreg serves, and is never
/// called (the test only asks the dispatcher where a message would go).
struct Services;

impl Handler for Services {
    fn methods(&self) -> &[Method] {
        &[Method::Register, Method::Subscribe, Method::Publish]
    }

    fn supported(&self) -> &[&'static str] {
        &["path", "outbound"]
    }

    fn handle(&self, _req: Request, _ctx: Context) -> Reply {
        Reply::Now(Response::new(500))
    }
}

/// Layer (a): parser and dispatcher, no sockets. `Reg` means: handed to the REGISTER
/// handler.
#[test]
fn layer_a_parser_and_dispatcher_verdicts() {
    if rfc4475_dir().is_none() {
        return;
    }
    let mut failures = Vec::new();
    for (name, want, _) in CASES {
        let data = load(name).unwrap();
        let got = match decide(parse_datagram(data, &Limits::default()), &Services) {
            Decision::Drop(_) => None,
            Decision::Stateless(_, r) | Decision::Respond(_, r) => Some(r.status),
            Decision::Handle(r) if r.method == Method::Register => Some(REG_OUTCOME),
            Decision::Handle(_) => Some(0),
        };
        if got != expected_status(*want) {
            failures.push(format!("{name}: want {want:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn contacts(m: &Message) -> Vec<ContactValue> {
    m.headers.list::<ContactValue>().unwrap()
}

#[test]
fn layer_a_details_of_valid_messages() {
    let Some(m) = parse_file("escnull.dat") else {
        return;
    };
    let c = contacts(&m);
    assert_eq!(c.len(), 2);
    assert_eq!(c[0].to_string(), "<sip:%00@host5.example.com>");
    assert_eq!(c[1].to_string(), "<sip:%00%00@host5.example.com>");
    let to = m.headers.first(HeaderName::To).unwrap();
    assert_eq!(to, "sip:null-%00-null@example.com");

    let m = parse_file("esc02.dat").unwrap();
    assert_eq!(m.headers.count(HeaderName::Contact), 2);
    assert!(m.headers.other("C%6Fntact").is_some());
    assert!(m.first_line.starts_with("RE%47IST%45R "));

    let m = parse_file("longreq.dat").unwrap();
    assert_eq!(m.headers.list::<Via>().unwrap().len(), 34);

    let m = parse_file("mpart01.dat").unwrap();
    assert_eq!(m.body.len(), 553);

    let m = parse_file("transports.dat").unwrap();
    let vias = m.headers.list::<Via>().unwrap();
    let transports: Vec<&str> = vias.iter().map(|v| &*v.transport).collect();
    assert_eq!(transports, ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);

    let m = parse_file("semiuri.dat").unwrap();
    let req = sipreg::sip::Request::from_message(m).unwrap();
    let uri = req.uri.as_sip().unwrap();
    assert_eq!(uri.user.as_deref(), Some("user;par=u%40example.net"));
    assert!(uri.params.is_empty());
    assert_eq!(
        req.msg.headers.first(HeaderName::Accept),
        Some(
            "application/sdp, application/pkcs7-mime, multipart/mixed, multipart/signed, message/sip, message/sipfrag"
        )
    );

    let m = parse_file("dblreq.dat").unwrap();
    assert!(m.first_line.starts_with("REGISTER "));
    assert!(m.body.is_empty());
    assert_eq!(
        contacts(&m)[0].addr().unwrap().uri.to_string(),
        "sip:j.user@host.example.com"
    );

    // Where a contact parameter sits decides whether it belongs to the URI.
    let m = parse_file("cparam01.dat").unwrap();
    let c = contacts(&m);
    let a = c[0].addr().unwrap();
    assert_eq!(a.uri.to_string(), "sip:+19725552222@gw1.example.net");
    assert!(a.params.contains("unknownparam"));
    let m = parse_file("cparam02.dat").unwrap();
    let c = contacts(&m);
    assert_eq!(
        c[0].addr().unwrap().uri.to_string(),
        "sip:+19725552222@gw1.example.net;unknownparam"
    );
    assert!(
        c[0].addr().unwrap().uri.as_sip().unwrap().equivalent(
            parse_file("cparam01.dat")
                .map(|m| contacts(&m)[0]
                    .addr()
                    .unwrap()
                    .uri
                    .as_sip()
                    .unwrap()
                    .clone())
                .as_ref()
                .unwrap()
        )
    );
    let m = parse_file("regescrt.dat").unwrap();
    assert_eq!(
        contacts(&m)[0].addr().unwrap().uri.to_string(),
        "sip:user@example.com?Route=%3Csip:sip.example.com%3E"
    );
    assert_eq!(m.headers.count(HeaderName::Route), 0);
}

/// Checks a 4xx/5xx (or any) answer against the request: Via values copied in order,
/// To tag present, Call-ID and CSeq echoed byte for byte.
fn check_answer(name: &str, req: &Bytes, resp: &Bytes, want: u16) {
    let r = parse(resp);
    assert_eq!(
        status(&r),
        want,
        "{name}: {}",
        String::from_utf8_lossy(resp)
    );
    let q = match parse_datagram(req.clone(), &Limits::default()) {
        Ok(m) => m,
        Err(e) => *e.partial.expect("partial"),
    };
    let req_vias: Vec<String> = q
        .headers
        .all(HeaderName::Via)
        .flat_map(|h| {
            sipreg::sip::text::split_commas(h.value)
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    let resp_vias: Vec<String> = r
        .headers
        .all(HeaderName::Via)
        .map(|h| h.value.to_string())
        .collect();
    assert_eq!(req_vias.len(), resp_vias.len(), "{name}: Via count");
    for (a, b) in req_vias.iter().zip(&resp_vias).skip(1) {
        assert_eq!(a, b, "{name}: lower Via values are copied verbatim");
    }
    assert!(
        resp_vias[0].starts_with(req_vias[0].split(";received").next().unwrap())
            || resp_vias[0].contains("received=127.0.0.1"),
        "{name}: top Via {}",
        resp_vias[0]
    );
    for h in [HeaderName::CallId, HeaderName::CSeq, HeaderName::From] {
        assert_eq!(
            q.headers.first(h).map(|v| v.to_string()),
            r.headers.first(h).map(|v| v.to_string()),
            "{name}: {h} echoed"
        );
    }
    if let Some(to) = q.headers.first(HeaderName::To) {
        let rto = r.headers.first(HeaderName::To).expect("To copied");
        assert!(rto.starts_with(to), "{name}: To copied");
        if let Ok(a) = sipreg::sip::NameAddr::parse(r.headers.src(), rto) {
            assert!(a.tag().is_some(), "{name}: To tag added");
        }
    }
    if want == 405 || want == 501 {
        assert!(
            r.headers.first(HeaderName::Allow).is_some(),
            "{name}: Allow"
        );
    }
}

/// Layer (b) over UDP: each file sent as one datagram to a running server.
#[tokio::test]
async fn layer_b_udp() {
    if rfc4475_dir().is_none() {
        return;
    }
    let server = AppServer::start(|_| {}).await;
    for (name, want, _) in CASES {
        let data = load(name).unwrap();
        let wait = if *want == V::Drop {
            Duration::from_millis(300)
        } else {
            Duration::from_secs(3)
        };
        let replies = udp_exchange(server.sip, &data, wait).await;
        match expected_status(*want) {
            None => assert!(
                replies.is_empty(),
                "{name}: expected silence, got {replies:?}"
            ),
            Some(s) => {
                assert_eq!(
                    replies.len(),
                    1,
                    "{name}: exactly one answer, got {replies:?}"
                );
                check_answer(name, &data, &replies[0], s);
            }
        }
    }
    // Nothing was sent anywhere else: every answer above came back to our loopback socket.
    server.stop().await;
}

/// Layer (b) over TCP: each file written on its own connection.
#[tokio::test]
async fn layer_b_tcp() {
    if rfc4475_dir().is_none() {
        return;
    }
    let server = AppServer::start(|_| {}).await;
    for (name, want, tcp) in CASES {
        let data = load(name).unwrap();
        let wait = if *want == V::Drop || matches!(tcp, T::Waits) {
            Duration::from_millis(300)
        } else {
            Duration::from_secs(3)
        };
        let res = tcp_exchange(server.sip, &data, wait).await;
        match tcp {
            T::Same => {
                assert!(!res.closed, "{name}: connection must stay open");
                match expected_status(*want) {
                    None => assert!(
                        res.messages.is_empty(),
                        "{name}: silence, got {:?}",
                        res.messages
                    ),
                    Some(s) => {
                        assert_eq!(res.messages.len(), 1, "{name}: {:?}", res.messages);
                        check_answer(name, &data, &res.messages[0], s);
                    }
                }
            }
            T::Waits => {
                assert!(res.messages.is_empty(), "{name}: must wait for the body");
                assert!(
                    !res.closed,
                    "{name}: must keep the connection until the timeout"
                );
            }
            T::ThenClose(seq) => {
                let got: Vec<u16> = res.messages.iter().map(|m| status(&parse(m))).collect();
                let want: Vec<u16> = seq.iter().filter_map(|v| expected_status(*v)).collect();
                assert_eq!(got, want, "{name}");
                assert!(res.closed, "{name}: connection must be closed");
            }
        }
    }
    server.stop().await;
}

/// With authentication off, the REGISTER files that RFC 4475 calls valid get 200 OK
/// listing their bindings, stored exactly where the verdicts say.
#[tokio::test]
async fn register_outcome_with_authentication_off() {
    if rfc4475_dir().is_none() {
        return;
    }
    let server = AppServer::start(|c| c.auth.required = false).await;
    let answer = |name: &'static str| {
        let addr = server.sip;
        async move {
            let data = load(name).unwrap();
            let r = udp_exchange(addr, &data, Duration::from_secs(3)).await;
            assert_eq!(r.len(), 1, "{name}");
            let m = parse(&r[0]);
            assert_eq!(status(&m), 200, "{name}: {}", m.first_line);
            let mut c: Vec<String> = m
                .headers
                .all(HeaderName::Contact)
                .map(|h| h.value.to_string())
                .collect();
            c.sort();
            c
        }
    };
    let c = answer("escnull.dat").await;
    assert_eq!(c.len(), 2);
    assert!(
        c[0].starts_with("<sip:%00%00@host5.example.com>;expires="),
        "{c:?}"
    );
    assert!(
        c[1].starts_with("<sip:%00@host5.example.com>;expires="),
        "{c:?}"
    );
    let b = server.registrar.table.get(
        &sipreg::registrar::Aor::parse("sip:null-%00-null@example.com").unwrap(),
        0,
    );
    assert_eq!(b.len(), 2, "the AOR is not cut short at the NUL");

    let c = answer("dblreq.dat").await;
    assert_eq!(c.len(), 1);
    assert!(c[0].starts_with("<sip:j.user@host.example.com>;expires="));
    // regaut01 has no Contact: a query listing j.user's bindings. The remaining
    // `expires` may have ticked down a second between the two answers.
    let without_expires = |v: &[String]| -> Vec<String> {
        v.iter()
            .map(|c| c.split(";expires=").next().unwrap_or(c).to_owned())
            .collect()
    };
    let queried = answer("regaut01.dat").await;
    assert_eq!(without_expires(&queried), without_expires(&c));
    assert!(
        queried[0].ends_with(";expires=3600") || queried[0].ends_with(";expires=3599"),
        "{queried:?}"
    );

    let c = answer("cparam01.dat").await;
    assert!(
        c[0].starts_with("<sip:+19725552222@gw1.example.net>;expires="),
        "{c:?}"
    );
    let c = answer("cparam02.dat").await;
    assert_eq!(c.len(), 1, "the same binding, updated: {c:?}");
    assert!(
        c[0].starts_with("<sip:+19725552222@gw1.example.net;unknownparam>;expires="),
        "{c:?}"
    );

    let c = answer("regescrt.dat").await;
    assert!(
        c[0].starts_with("<sip:user@example.com?Route=%3Csip:sip.example.com%3E>;expires="),
        "{c:?}"
    );
    // The broken REGISTERs bind nothing.
    for name in ["scalar02.dat", "regbadct.dat", "unksm2.dat", "esc02.dat"] {
        let data = load(name).unwrap();
        let r = udp_exchange(server.sip, &data, Duration::from_secs(3)).await;
        assert_ne!(status(&parse(&r[0])), 200, "{name}");
    }
    // null-%00-null, j.user, watson and user.
    assert_eq!(server.registrar.table.aors(), 4);
}
