//! Non-INVITE client transactions (RFC 3261 §17.1.2): how sipreg sends its own requests
//! (NOTIFY to watchers) and waits for the answer.
//!
//! [`Uac::send`] adds the top Via with a fresh branch, sends the request from the server's
//! own socket (so the answer comes back to the port watchers already talk to), retransmits
//! over UDP on Timer E (T1 doubling up to T2; T2 straight away once a provisional answer
//! arrived) and gives up on Timer F (64·T1). Over TCP nothing is retransmitted; the
//! request goes on the connection the peer opened, and Timer F still bounds the wait.
//!
//! The core hands every response it receives to [`Uac::on_response`], which matches it to
//! its transaction by the Via branch and the CSeq method (§17.1.3).

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use dashmap::DashMap;
use std::net::UdpSocket;
use tokio::sync::oneshot;

use crate::sip::headers::CSeq;
use crate::sip::{Message, Method};
use crate::transport::{Connections, Context, Direction, Tap, Tapped, Transport};

/// RFC 3261 §17.1.2.2: the cap on the retransmission interval.
const T2: Duration = Duration::from_secs(4);

/// Where a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A datagram to this address, from the server's UDP socket.
    Udp(SocketAddr),
    /// The open connection (TCP, TLS or WebSocket flow) with this id
    /// (`Context::connection`).
    Flow(u64),
}

impl Target {
    /// Back the way a request came: over its connection, or as a datagram to its source
    /// (NAT-friendly, as the core's `force_rport`).
    pub fn back_to(ctx: &Context) -> Target {
        match ctx.connection {
            Some(id) if ctx.transport.is_stream() => Target::Flow(id),
            _ => Target::Udp(ctx.source),
        }
    }
}

/// A request to send. The transaction layer adds Via, Max-Forwards, Content-Type and
/// Content-Length; `headers` holds everything else (From, To, Call-ID, CSeq, ...).
#[derive(Debug, Clone)]
pub struct OutgoingRequest {
    pub method: Method,
    pub uri: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<(String, Bytes)>,
}

/// The final answer to a request.
#[derive(Debug, Clone)]
pub struct ClientResponse {
    pub status: u16,
    pub message: Message,
}

/// Why no final answer came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientError {
    /// Timer F fired: the peer never answered.
    Timeout,
    /// The TCP connection is closed.
    NoConnection,
    /// The server has not bound its sockets yet.
    NotAttached,
    /// The request could not be sent.
    Transport(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Timeout => f.write_str("no answer before Timer F"),
            ClientError::NoConnection => f.write_str("the connection is closed"),
            ClientError::NotAttached => f.write_str("the SIP server is not bound"),
            ClientError::Transport(e) => write!(f, "send failed: {e}"),
        }
    }
}

impl std::error::Error for ClientError {}

/// Counters an operator (and the tests) can read.
#[derive(Debug, Default)]
pub struct UacStats {
    pub sent: AtomicU64,
    pub retransmissions: AtomicU64,
    pub timeouts: AtomicU64,
    /// Responses that matched no transaction (late, duplicate or stray).
    pub stray_responses: AtomicU64,
}

/// The sockets a bound server lends its client transactions.
struct Link {
    udp: Arc<UdpSocket>,
    local: SocketAddr,
    connections: Arc<Connections>,
}

struct Pending {
    method: Method,
    final_tx: Option<oneshot::Sender<Message>>,
    proceeding: Arc<AtomicBool>,
}

/// The client transaction table.
pub struct Uac {
    t1: Duration,
    link: OnceLock<Link>,
    pending: DashMap<String, Pending>,
    next: AtomicU64,
    seed: u64,
    pub stats: UacStats,
    /// The message trace, when on: shown every request sent.
    tap: OnceLock<Arc<dyn Tap>>,
}

/// Removes a transaction from the table however its future ends (answer, timeout, drop).
struct Forget<'a>(&'a Uac, String);

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.0.pending.remove(&self.1);
    }
}

impl Uac {
    pub fn new(t1: Duration) -> Arc<Uac> {
        let mut seed = [0u8; 8];
        rand::fill(&mut seed);
        Arc::new(Uac {
            t1: t1.max(Duration::from_millis(1)),
            link: OnceLock::new(),
            pending: DashMap::new(),
            next: AtomicU64::new(0),
            seed: u64::from_le_bytes(seed),
            stats: UacStats::default(),
            tap: OnceLock::new(),
        })
    }

    /// Called once by the server when it has bound its sockets.
    pub fn attach(&self, udp: Arc<UdpSocket>, connections: Arc<Connections>) {
        let local = udp
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 5060)));
        let _ = self.link.set(Link {
            udp,
            local,
            connections,
        });
    }

    /// Shows every request sent to `tap` (the message trace).
    pub fn set_tap(&self, tap: Arc<dyn Tap>) {
        let _ = self.tap.set(tap);
    }

    fn tap_sent(&self, transport: Transport, local: SocketAddr, peer: SocketAddr, bytes: &Bytes) {
        if let Some(t) = self.tap.get() {
            t.tap(Tapped {
                direction: Direction::Sent,
                transport,
                local,
                peer,
                bytes: bytes.clone(),
            });
        }
    }

    /// Transactions waiting for their final answer.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Sends `req` to `target` and resolves with its final response.
    pub fn send(
        self: &Arc<Self>,
        req: OutgoingRequest,
        target: Target,
    ) -> impl Future<Output = Result<ClientResponse, ClientError>> + Send + 'static {
        let this = Arc::clone(self);
        async move { this.run(req, target).await }
    }

    async fn run(
        &self,
        req: OutgoingRequest,
        target: Target,
    ) -> Result<ClientResponse, ClientError> {
        let link = self.link.get().ok_or(ClientError::NotAttached)?;
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let branch = format!("z9hG4bK{:016x}{n:x}", self.seed);
        let timer_f = self.t1.saturating_mul(64);

        let (tx, rx) = oneshot::channel();
        let proceeding = Arc::new(AtomicBool::new(false));
        self.pending.insert(
            branch.clone(),
            Pending {
                method: req.method.clone(),
                final_tx: Some(tx),
                proceeding: Arc::clone(&proceeding),
            },
        );
        let _forget = Forget(self, branch.clone());
        self.stats.sent.fetch_add(1, Ordering::Relaxed);

        let answer = match target {
            Target::Udp(dest) => {
                let bytes = encode(&req, "UDP", sent_by(link.local, dest), &branch);
                self.over_udp(link, bytes, dest, rx, &proceeding, timer_f)
                    .await
            }
            Target::Flow(id) => {
                let conn = link.connections.get(id).ok_or(ClientError::NoConnection)?;
                let bytes = encode(&req, conn.transport.via_token(), conn.local, &branch);
                self.tap_sent(conn.transport, conn.local, conn.peer, &bytes);
                conn.tx
                    .try_send(bytes)
                    .map_err(|_| ClientError::NoConnection)?;
                tokio::time::timeout(timer_f, rx)
                    .await
                    .ok()
                    .and_then(|r| r.ok())
            }
        };
        match answer {
            Some(message) => Ok(ClientResponse {
                status: status_of(&message).unwrap_or(500),
                message,
            }),
            None => {
                self.stats.timeouts.fetch_add(1, Ordering::Relaxed);
                Err(ClientError::Timeout)
            }
        }
    }

    /// Timer E and Timer F over UDP.
    async fn over_udp(
        &self,
        link: &Link,
        bytes: Bytes,
        dest: SocketAddr,
        mut rx: oneshot::Receiver<Message>,
        proceeding: &AtomicBool,
        timer_f: Duration,
    ) -> Option<Message> {
        let deadline = tokio::time::Instant::now() + timer_f;
        let mut interval = self.t1;
        let mut first = true;
        loop {
            if !first {
                self.stats.retransmissions.fetch_add(1, Ordering::Relaxed);
            }
            first = false;
            self.tap_sent(Transport::Udp, link.local, dest, &bytes);
            if let Err(e) = link.udp.send_to(&bytes, dest) {
                tracing::debug!(%dest, error = %e, "UDP send of a request failed");
            }
            if proceeding.load(Ordering::Relaxed) {
                interval = T2;
            }
            let wake = (tokio::time::Instant::now() + interval).min(deadline);
            tokio::select! {
                r = &mut rx => return r.ok(),
                _ = tokio::time::sleep_until(wake) => {
                    if wake >= deadline {
                        return None;
                    }
                }
            }
            interval = (interval * 2).min(T2);
        }
    }

    /// Matches a received response to its transaction; `false` for a stray one.
    pub fn on_response(&self, msg: Message) -> bool {
        let Some(status) = status_of(&msg) else {
            return false;
        };
        let Some(branch) = top_branch(&msg) else {
            self.stats.stray_responses.fetch_add(1, Ordering::Relaxed);
            return false;
        };
        let method = msg
            .headers
            .single::<CSeq>()
            .ok()
            .flatten()
            .map(|c| c.method);
        let Some(mut entry) = self.pending.get_mut(branch.as_str()) else {
            self.stats.stray_responses.fetch_add(1, Ordering::Relaxed);
            return false;
        };
        if method.as_ref() != Some(&entry.method) {
            drop(entry);
            self.stats.stray_responses.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        if status < 200 {
            entry.proceeding.store(true, Ordering::Relaxed);
            return true;
        }
        match entry.final_tx.take() {
            Some(tx) => {
                let _ = tx.send(msg);
                true
            }
            None => {
                // A retransmitted final response: already delivered.
                drop(entry);
                self.stats.stray_responses.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }
}

/// The address to name in Via: the listening address, or when that is a wildcard the
/// local address the kernel routes `dest` from (a connected probe socket sends nothing).
pub(crate) fn sent_by(local: SocketAddr, dest: SocketAddr) -> SocketAddr {
    if !local.ip().is_unspecified() {
        return local;
    }
    let probe_bind: SocketAddr = match dest.ip() {
        IpAddr::V4(_) => SocketAddr::from(([0, 0, 0, 0], 0)),
        IpAddr::V6(_) => SocketAddr::from(([0u16; 8], 0)),
    };
    let ip = std::net::UdpSocket::bind(probe_bind)
        .and_then(|s| s.connect(dest).and_then(|_| s.local_addr()))
        .map(|a| a.ip())
        .unwrap_or(dest.ip());
    SocketAddr::new(ip, local.port())
}

/// Serialises a request with its Via, Max-Forwards and body headers.
fn encode(req: &OutgoingRequest, transport: &str, sent_by: SocketAddr, branch: &str) -> Bytes {
    let body_len = req.body.as_ref().map_or(0, |(_, b)| b.len());
    let mut out = BytesMut::with_capacity(512 + body_len);
    let head = format!(
        "{} {} SIP/2.0\r\nVia: SIP/2.0/{transport} {sent_by};branch={branch};rport\r\nMax-Forwards: 70\r\n",
        req.method.as_str(),
        req.uri
    );
    out.put_slice(head.as_bytes());
    for (name, value) in &req.headers {
        out.put_slice(name.as_bytes());
        out.put_slice(b": ");
        out.put_slice(value.as_bytes());
        out.put_slice(b"\r\n");
    }
    if let Some((ctype, _)) = &req.body {
        out.put_slice(format!("Content-Type: {ctype}\r\n").as_bytes());
    }
    out.put_slice(format!("Content-Length: {body_len}\r\n\r\n").as_bytes());
    if let Some((_, body)) = &req.body {
        out.put_slice(body);
    }
    out.freeze()
}

/// The status code of a response's status line.
pub fn status_of(msg: &Message) -> Option<u16> {
    let code = msg.first_line.split_ascii_whitespace().nth(1)?;
    let status: u16 = code.parse().ok()?;
    (100..=699).contains(&status).then_some(status)
}

/// The branch of the top Via.
fn top_branch(msg: &Message) -> Option<String> {
    msg.top_via()?.branch().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::headers::HeaderName;
    use crate::sip::{Limits, parse_datagram};

    fn notify() -> OutgoingRequest {
        OutgoingRequest {
            method: Method::Notify,
            uri: "sip:watcher@127.0.0.1:5070".into(),
            headers: vec![
                ("From".into(), "<sip:alice@example.com>;tag=a".into()),
                ("To".into(), "<sip:w@example.com>;tag=b".into()),
                ("Call-ID".into(), "c1".into()),
                ("CSeq".into(), "1 NOTIFY".into()),
            ],
            body: Some(("application/pidf+xml".into(), Bytes::from_static(b"<x/>"))),
        }
    }

    #[test]
    fn encoded_request_parses_with_via_and_lengths() {
        let sent = SocketAddr::from(([127, 0, 0, 1], 5060));
        let bytes = encode(&notify(), "UDP", sent, "z9hG4bKabc");
        let msg = parse_datagram(bytes, &Limits::default()).expect("parses");
        assert!(
            msg.first_line
                .starts_with("NOTIFY sip:watcher@127.0.0.1:5070 SIP/2.0")
        );
        assert_eq!(
            msg.headers.first(HeaderName::Via).map(|v| v.to_string()),
            Some("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKabc;rport".into())
        );
        assert_eq!(top_branch(&msg).as_deref(), Some("z9hG4bKabc"));
        assert_eq!(&msg.body[..], b"<x/>");
        assert_eq!(
            msg.headers
                .first(HeaderName::ContentLength)
                .map(|v| v.to_string()),
            Some("4".into())
        );
    }

    #[test]
    fn status_line_codes() {
        let msg = |l: &str| Message {
            first_line: l.to_owned().into(),
            headers: Default::default(),
            body: Bytes::new(),
        };
        assert_eq!(
            status_of(&msg("SIP/2.0 481 Call Does Not Exist")),
            Some(481)
        );
        assert_eq!(status_of(&msg("SIP/2.0 99 Low")), None);
        assert_eq!(status_of(&msg("SIP/2.0 abc x")), None);
    }

    #[test]
    fn wildcard_listen_address_is_replaced_by_a_routable_one() {
        let local = SocketAddr::from(([0, 0, 0, 0], 5060));
        let dest = SocketAddr::from(([127, 0, 0, 1], 5070));
        assert_eq!(
            sent_by(local, dest),
            SocketAddr::from(([127, 0, 0, 1], 5060))
        );
    }

    #[tokio::test]
    async fn unattached_uac_says_so() {
        let uac = Uac::new(Duration::from_millis(10));
        let r = uac
            .send(notify(), Target::Udp(SocketAddr::from(([127, 0, 0, 1], 9))))
            .await;
        assert_eq!(r.unwrap_err(), ClientError::NotAttached);
    }
}
