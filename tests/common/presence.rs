//! Presence test helpers: PUBLISH, SUBSCRIBE and REGISTER builders, PIDF bodies, and a
//! watcher that receives NOTIFYs and answers them.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use sipreg::sip::headers::HeaderName;
use sipreg::sip::{Limits, Message, Response, parse_datagram};
use tokio::net::UdpSocket;

/// A PIDF body: one tuple (`basic` open), optional device id, and a person with the
/// given activity and note (empty strings leave them out).
pub fn pidf(aor: &str, tuple: &str, device: &str, activity: &str, note: &str) -> String {
    let device = if device.is_empty() {
        String::new()
    } else {
        format!("<dm:deviceID>{device}</dm:deviceID>")
    };
    let act = if activity.is_empty() {
        String::new()
    } else {
        format!("<rpid:activities><rpid:{activity}/></rpid:activities>")
    };
    let note = if note.is_empty() {
        String::new()
    } else {
        format!("<dm:note>{note}</dm:note>")
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <presence xmlns=\"urn:ietf:params:xml:ns:pidf\" \
         xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\" \
         xmlns:rpid=\"urn:ietf:params:xml:ns:pidf:rpid\" entity=\"{aor}\">\
         <tuple id=\"{tuple}\"><status><basic>open</basic></status>{device}</tuple>\
         <dm:person id=\"p1\">{act}{note}</dm:person></presence>"
    )
}

/// A PUBLISH for `user@example.com` from `via` (the sender's address), with `extra`
/// header lines and an optional body (sent as given; `extra` names its Content-Type).
pub fn publish(user: &str, branch: &str, cseq: u32, extra: &str, body: &str) -> String {
    format!(
        "PUBLISH sip:{user}@example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK{branch}{cseq};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{user}@example.com>;tag=p{branch}\r\n\
         To: <sip:{user}@example.com>\r\n\
         Call-ID: pub-{branch}\r\n\
         CSeq: {cseq} PUBLISH\r\n\
         {extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// The header lines of a PIDF PUBLISH.
pub const PIDF_HEADERS: &str = "Event: presence\r\nContent-Type: application/pidf+xml\r\n";

/// A SUBSCRIBE from `watcher@<from_domain>` to `presentity@example.com` over
/// `transport` ("UDP" or "TCP"), contact at `contact` (host:port).
#[allow(clippy::too_many_arguments)]
pub fn subscribe(
    watcher: &str,
    from_domain: &str,
    presentity: &str,
    call_id: &str,
    cseq: u32,
    to_tag: Option<&str>,
    transport: &str,
    contact: SocketAddr,
    extra: &str,
) -> String {
    let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    format!(
        "SUBSCRIBE sip:{presentity}@example.com SIP/2.0\r\n\
         Via: SIP/2.0/{transport} {contact};branch=z9hG4bK{call_id}s{cseq};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{watcher}@{from_domain}>;tag=w{call_id}\r\n\
         To: <sip:{presentity}@example.com>{to_tag}\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} SUBSCRIBE\r\n\
         Contact: <sip:{watcher}@{contact};transport={}>\r\n\
         {extra}Content-Length: 0\r\n\r\n",
        transport.to_ascii_lowercase()
    )
}

/// A REGISTER of `user@example.com` with one contact.
pub fn register(user: &str, call_id: &str, cseq: u32, contact: &str, extra: &str) -> String {
    format!(
        "REGISTER sip:example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5998;branch=z9hG4bK{call_id}r{cseq};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{user}@example.com>;tag=r{call_id}\r\n\
         To: <sip:{user}@example.com>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} REGISTER\r\n\
         Contact: {contact}\r\n\
         {extra}Content-Length: 0\r\n\r\n"
    )
}

pub fn bearer(t: &str) -> String {
    format!("Authorization: Bearer {t}\r\n")
}

pub fn header(m: &Message, name: HeaderName) -> Option<String> {
    m.headers.first(name).map(|v| v.to_string())
}

pub fn header_named(m: &Message, name: &str) -> Option<String> {
    m.headers
        .iter()
        .find(|h| h.raw_name.eq_ignore_ascii_case(name))
        .map(|h| h.value.to_string())
}

pub fn body(m: &Message) -> String {
    String::from_utf8_lossy(&m.body).into_owned()
}

/// A watcher (or any SIP client) on a loopback UDP socket.
pub struct Peer {
    pub sock: UdpSocket,
    pub addr: SocketAddr,
}

impl Peer {
    pub async fn new() -> Peer {
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sock.local_addr().unwrap();
        Peer { sock, addr }
    }

    pub async fn send(&self, to: SocketAddr, text: &str) {
        self.sock.send_to(text.as_bytes(), to).await.unwrap();
    }

    /// The next message within `wait`.
    pub async fn recv(&self, wait: Duration) -> Option<(Message, SocketAddr)> {
        let mut buf = vec![0u8; 65_535];
        let (n, from) = tokio::time::timeout(wait, self.sock.recv_from(&mut buf))
            .await
            .ok()?
            .ok()?;
        let msg = parse_datagram(Bytes::copy_from_slice(&buf[..n]), &Limits::default())
            .expect("sipreg sent an unparseable message");
        Some((msg, from))
    }

    /// The next response (requests met on the way are answered 200 and kept in `seen`).
    pub async fn response(&self, wait: Duration, seen: &mut Vec<Message>) -> Message {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let (m, from) = self.recv(left).await.expect("a response in time");
            if m.is_response() {
                return m;
            }
            self.answer(&m, from, 200).await;
            seen.push(m);
        }
    }

    /// Sends `text` and waits for the response.
    pub async fn request(&self, to: SocketAddr, text: &str) -> Message {
        self.send(to, text).await;
        let mut seen = Vec::new();
        self.response(Duration::from_secs(5), &mut seen).await
    }

    /// The next request (a NOTIFY), answered with `status` (0: not answered).
    pub async fn notify(&self, wait: Duration, status: u16) -> Option<Message> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let (m, from) = self.recv(left).await?;
            if m.is_response() {
                continue;
            }
            if status != 0 {
                self.answer(&m, from, status).await;
            }
            return Some(m);
        }
    }

    pub async fn answer(&self, req: &Message, to: SocketAddr, status: u16) {
        let bytes = Response::new(status).encode(req, to, "");
        self.sock.send_to(&bytes, to).await.unwrap();
    }
}

/// The Subscription-State of a NOTIFY.
pub fn sub_state(m: &Message) -> String {
    header(m, HeaderName::SubscriptionState).unwrap_or_default()
}

/// The CSeq number of a message.
pub fn cseq(m: &Message) -> u32 {
    header(m, HeaderName::CSeq)
        .and_then(|c| c.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

/// The To tag of a response.
pub fn to_tag(m: &Message) -> String {
    let to = header(m, HeaderName::To).unwrap_or_default();
    to.split(";tag=").nth(1).unwrap_or("").to_string()
}

/// Waits until `cond` holds, checking every 20 ms; panics naming `what` after `wait`.
pub async fn eventually(what: &str, wait: Duration, cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + wait;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {wait:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
