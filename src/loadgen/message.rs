//! Building the generator's requests and its 200s to NOTIFY. Everything that is fixed
//! for a lane (its Via prefix, Contact address, the domain) is formatted once in
//! [`Templates`]; a request is then a few slice copies and integers into a buffer the
//! caller reuses, so a request costs no allocation.

use std::io::Write;

use super::plan::Proto;
use super::scan::{Name, Scanned};

/// The Via branch prefix every generator request carries (RFC 3261 magic cookie first).
const BRANCH: &str = "z9hG4bK-";

/// Where a response belongs: the run, lane, slot and generation encoded in the branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Branch {
    pub run: u32,
    pub lane: u32,
    pub slot: u32,
    pub generation: u32,
}

impl Branch {
    pub fn parse(s: &str) -> Option<Branch> {
        let mut f = s.strip_prefix(BRANCH)?.split('-');
        let mut next = || f.next().and_then(|x| u32::from_str_radix(x, 16).ok());
        Some(Branch {
            run: next()?,
            lane: next()?,
            slot: next()?,
            generation: next()?,
        })
    }
}

/// Credentials a request carries.
#[derive(Debug, Clone, Copy)]
pub enum Auth<'a> {
    None,
    Bearer(&'a str),
    /// A whole `Authorization` value (Digest).
    Value(&'a str),
}

/// The method of a generator request and what it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Register,
    Options,
    Subscribe,
    /// PUBLISH with the PIDF body (initial) or, with an entity-tag, a body-less refresh.
    Publish,
}

impl Kind {
    pub fn method(self) -> &'static str {
        match self {
            Kind::Register => "REGISTER",
            Kind::Options => "OPTIONS",
            Kind::Subscribe => "SUBSCRIBE",
            Kind::Publish => "PUBLISH",
        }
    }
}

/// One request to write.
#[derive(Debug, Clone, Copy)]
pub struct Req<'a> {
    pub kind: Kind,
    pub branch: Branch,
    /// The user sending (From, Contact); `user_id` keeps its Call-ID and tag distinct.
    pub user: &'a str,
    pub user_id: u64,
    /// The user addressed (To, Request-URI of SUBSCRIBE/PUBLISH).
    pub to_user: &'a str,
    pub to_tag: Option<&'a str>,
    pub cseq: u32,
    pub auth: Auth<'a>,
    /// PUBLISH: the entity-tag to refresh.
    pub etag: Option<&'a str>,
}

/// The parts of every request of one lane that do not change.
#[derive(Debug, Clone)]
pub struct Templates {
    /// `Via: SIP/2.0/UDP 127.0.0.1:40000;rport;branch=z9hG4bK-`
    via: String,
    /// `@127.0.0.1:40000;transport=udp>`: where NOTIFYs reach this lane.
    contact_tail: String,
    /// `@127.0.0.1:5060;transport=udp>`: a REGISTER's Contact. It names the phone's own
    /// (configured) address rather than the lane's port, which changes from run to run,
    /// so a user keeps one binding across runs, as a phone refreshing its registration
    /// does; answers still reach the lane through `rport`.
    register_contact_tail: String,
    /// `@example.com>`
    at_domain: String,
    /// `sip:example.com`
    register_uri: String,
    /// `127.0.0.1:5060`
    target: String,
    domain: String,
    run: u32,
    expires: u32,
}

impl Templates {
    pub fn new(
        proto: Proto,
        local: &str,
        target: &str,
        domain: &str,
        run: u32,
        expires: u32,
    ) -> Templates {
        Templates {
            via: format!("Via: SIP/2.0/{} {local};rport;branch={BRANCH}", proto.via()),
            contact_tail: format!("@{local};transport={}>", proto.param()),
            register_contact_tail: format!(
                "@{}:5060;transport={}>",
                local.rsplit_once(':').map_or(local, |(host, _)| host),
                proto.param()
            ),
            at_domain: format!("@{domain}>"),
            register_uri: format!("sip:{domain}"),
            target: target.to_string(),
            domain: domain.to_string(),
            run,
            expires,
        }
    }

    /// Writes `req` into `buf` (cleared first).
    pub fn write(&self, buf: &mut Vec<u8>, req: &Req<'_>) {
        buf.clear();
        let method = req.kind.method();
        let b = req.branch;
        // Writing into a Vec cannot fail; the results are ignored on purpose.
        let _ = match req.kind {
            Kind::Register => write!(buf, "REGISTER {} SIP/2.0\r\n", self.register_uri),
            Kind::Options => write!(
                buf,
                "OPTIONS sip:{}@{} SIP/2.0\r\n",
                req.to_user, self.target
            ),
            Kind::Subscribe | Kind::Publish => {
                write!(
                    buf,
                    "{method} sip:{}@{} SIP/2.0\r\n",
                    req.to_user, self.domain
                )
            }
        };
        buf.extend_from_slice(self.via.as_bytes());
        let _ = write!(
            buf,
            "{:x}-{:x}-{:x}-{:x}\r\nMax-Forwards: 70\r\nFrom: <sip:{}{};tag={:x}-{:x}\r\nTo: <sip:{}{}",
            b.run,
            b.lane,
            b.slot,
            b.generation,
            req.user,
            self.at_domain,
            self.run,
            req.user_id,
            req.to_user,
            self.at_domain
        );
        if let Some(t) = req.to_tag {
            buf.extend_from_slice(b";tag=");
            buf.extend_from_slice(t.as_bytes());
        }
        let _ = write!(
            buf,
            "\r\nCall-ID: {:x}-{:x}-{}@sipreg-bench\r\nCSeq: {} {method}\r\n",
            self.run, req.user_id, method, req.cseq
        );
        match req.kind {
            Kind::Register => {
                let _ = write!(
                    buf,
                    "Contact: <sip:{}{}\r\n",
                    req.user, self.register_contact_tail
                );
            }
            Kind::Subscribe => {
                let _ = write!(buf, "Contact: <sip:{}{}\r\n", req.user, self.contact_tail);
            }
            _ => {}
        }
        if req.kind != Kind::Options {
            let _ = write!(buf, "Expires: {}\r\n", self.expires);
        }
        match req.kind {
            Kind::Subscribe => {
                buf.extend_from_slice(b"Event: presence\r\nAccept: application/pidf+xml\r\n")
            }
            Kind::Publish => buf.extend_from_slice(b"Event: presence\r\n"),
            _ => {}
        }
        if let Some(tag) = req.etag {
            let _ = write!(buf, "SIP-If-Match: {tag}\r\n");
        }
        match req.auth {
            Auth::None => {}
            Auth::Bearer(t) => {
                let _ = write!(buf, "Authorization: Bearer {t}\r\n");
            }
            Auth::Value(v) => {
                let _ = write!(buf, "Authorization: {v}\r\n");
            }
        }
        buf.extend_from_slice(b"User-Agent: sipreg-bench\r\n");
        if req.kind == Kind::Publish && req.etag.is_none() {
            // RFC 3903 §4.1: an initial publication carries the state.
            let open = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n\
                <presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"sip:";
            let close = "\"><tuple id=\"bench\"><status><basic>open</basic></status></tuple></presence>\r\n";
            let len = open.len() + req.user.len() + 1 + self.domain.len() + close.len();
            let _ = write!(
                buf,
                "Content-Type: application/pidf+xml\r\nContent-Length: {len}\r\n\r\n{open}{}@{}{close}",
                req.user, self.domain
            );
        } else {
            buf.extend_from_slice(b"Content-Length: 0\r\n\r\n");
        }
    }

    /// The Request-URI of REGISTER (what a Digest `uri` must equal).
    pub fn register_uri(&self) -> &str {
        &self.register_uri
    }
}

/// A 200 OK to a request the server sent (NOTIFY): the Via, From, To, Call-ID and CSeq
/// lines copied as they came (RFC 3261 §8.2.6.2).
pub fn write_ok(buf: &mut Vec<u8>, req: &Scanned<'_>) {
    buf.clear();
    buf.extend_from_slice(b"SIP/2.0 200 OK\r\n");
    for name in [Name::Via, Name::From, Name::To, Name::CallId, Name::CSeq] {
        for line in req.lines(name) {
            buf.extend_from_slice(line.as_bytes());
            buf.extend_from_slice(b"\r\n");
        }
    }
    buf.extend_from_slice(b"Content-Length: 0\r\n\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadgen::scan::{Start, scan};
    use crate::sip::{Limits, Method, Request, parse_datagram};

    fn templates() -> Templates {
        Templates::new(
            Proto::Udp,
            "127.0.0.1:40000",
            "127.0.0.1:5060",
            "example.com",
            0xab,
            600,
        )
    }

    fn req(kind: Kind) -> Req<'static> {
        Req {
            kind,
            branch: Branch {
                run: 0xab,
                lane: 3,
                slot: 17,
                generation: 2,
            },
            user: "alice",
            user_id: 5,
            to_user: "bob",
            to_tag: None,
            cseq: 7,
            auth: Auth::Bearer("tok"),
            etag: None,
        }
    }

    /// Every request the generator writes is one sipreg's own parser accepts as valid.
    fn parsed(buf: Vec<u8>) -> Request {
        let msg = parse_datagram(buf.into(), &Limits::default()).expect("parses");
        Request::from_message(msg)
            .map_err(|e| e.1.reason)
            .expect("valid request")
    }

    #[test]
    fn register() {
        let mut buf = Vec::new();
        let mut r = req(Kind::Register);
        r.to_user = "alice";
        templates().write(&mut buf, &r);
        let text = String::from_utf8(buf.clone()).expect("utf-8");
        assert!(
            text.starts_with("REGISTER sip:example.com SIP/2.0\r\n"),
            "{text}"
        );
        // The phone's own address, not the lane's port (stable across runs).
        assert!(text.contains("Contact: <sip:alice@127.0.0.1:5060;transport=udp>\r\n"));
        assert!(text.contains("Authorization: Bearer tok\r\n"));
        assert!(text.contains("Expires: 600\r\n"));
        let p = parsed(buf);
        assert_eq!(p.method, Method::Register);
        let branch = p.top_via().branch().expect("branch").to_string();
        assert_eq!(
            Branch::parse(&branch),
            Some(Branch {
                run: 0xab,
                lane: 3,
                slot: 17,
                generation: 2
            })
        );
    }

    #[test]
    fn publish_initial_and_refresh() {
        let mut buf = Vec::new();
        let t = templates();
        t.write(&mut buf, &req(Kind::Publish));
        let text = String::from_utf8(buf.clone()).expect("utf-8");
        let body = text.split("\r\n\r\n").nth(1).expect("body");
        let len: usize = text
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .and_then(|v| v.parse().ok())
            .expect("length");
        assert_eq!(body.len(), len);
        assert!(body.contains("entity=\"sip:alice@example.com\""));
        assert!(text.contains("Event: presence\r\n"));
        parsed(buf.clone());
        let mut r = req(Kind::Publish);
        r.etag = Some("e1");
        t.write(&mut buf, &r);
        let text = String::from_utf8(buf.clone()).expect("utf-8");
        assert!(text.contains("SIP-If-Match: e1\r\n"));
        assert!(text.ends_with("Content-Length: 0\r\n\r\n"));
        parsed(buf);
    }

    #[test]
    fn subscribe_in_dialog() {
        let mut buf = Vec::new();
        let mut r = req(Kind::Subscribe);
        r.to_tag = Some("srv");
        r.auth = Auth::None;
        templates().write(&mut buf, &r);
        let text = String::from_utf8(buf.clone()).expect("utf-8");
        assert!(text.starts_with("SUBSCRIBE sip:bob@example.com SIP/2.0\r\n"));
        assert!(text.contains("To: <sip:bob@example.com>;tag=srv\r\n"));
        assert!(text.contains("Accept: application/pidf+xml\r\n"));
        // NOTIFYs must reach the lane.
        assert!(text.contains("Contact: <sip:alice@127.0.0.1:40000;transport=udp>\r\n"));
        assert!(!text.contains("Authorization"));
        parsed(buf);
    }

    #[test]
    fn options() {
        let mut buf = Vec::new();
        templates().write(&mut buf, &req(Kind::Options));
        assert!(buf.starts_with(b"OPTIONS sip:bob@127.0.0.1:5060 SIP/2.0\r\n"));
        parsed(buf);
    }

    #[test]
    fn ok_to_notify_echoes_the_dialog() {
        let notify = b"NOTIFY sip:alice@127.0.0.1:40000 SIP/2.0\r\n\
            Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKsrv\r\n\
            From: <sip:bob@example.com>;tag=srv\r\nTo: <sip:alice@example.com>;tag=cli\r\n\
            Call-ID: c1\r\nCSeq: 4 NOTIFY\r\nEvent: presence\r\nContent-Length: 0\r\n\r\n";
        let s = scan(notify).expect("scans");
        let mut buf = Vec::new();
        write_ok(&mut buf, &s);
        let ok = scan(&buf).expect("reply scans");
        assert_eq!(ok.start, Start::Response(200));
        assert_eq!(ok.branch(), Some("z9hG4bKsrv"));
        assert_eq!(ok.first(Name::CSeq), Some("4 NOTIFY"));
        assert_eq!(ok.to_tag(), Some("cli"));
        assert_eq!(ok.first(Name::CallId), Some("c1"));
    }

    #[test]
    fn foreign_branches_do_not_match() {
        assert_eq!(Branch::parse("z9hG4bKabc"), None);
        assert_eq!(Branch::parse("z9hG4bK-1-2-3"), None);
        assert_eq!(Branch::parse("z9hG4bK-1-2-3-zz"), None);
    }
}
