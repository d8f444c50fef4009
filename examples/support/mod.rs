//! A small SIP client for the presence examples: UDP and TCP peers on loopback that send
//! requests, wait for responses, and answer the NOTIFYs sipreg sends them. Everything
//! returns `Err` with a message instead of panicking, so an example exits non-zero.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use sipreg::sip::headers::HeaderName;
use sipreg::sip::{Frame, Limits, Message, Response, frame_stream, parse_datagram};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

pub type Res<T> = Result<T, String>;

fn parse(b: &[u8]) -> Res<Message> {
    parse_datagram(Bytes::copy_from_slice(b), &Limits::default())
        .map_err(|e| format!("sipreg sent an unparseable message: {}", e.reason))
}

pub fn status(m: &Message) -> u16 {
    m.first_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

pub fn header(m: &Message, name: HeaderName) -> String {
    m.headers
        .first(name)
        .map(|v| v.to_string())
        .unwrap_or_default()
}

pub fn body(m: &Message) -> String {
    String::from_utf8_lossy(&m.body).into_owned()
}

/// The tag of a To header value.
pub fn to_tag(m: &Message) -> String {
    header(m, HeaderName::To)
        .split(";tag=")
        .nth(1)
        .unwrap_or("")
        .to_string()
}

/// A PIDF body: one open tuple on `device` and a person with `activity` (RPID name,
/// empty for none: available).
pub fn pidf(aor: &str, tuple: &str, device: &str, activity: &str, note: &str) -> String {
    let act = if activity.is_empty() {
        String::new()
    } else {
        format!("<rpid:activities><rpid:{activity}/></rpid:activities>")
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <presence xmlns=\"urn:ietf:params:xml:ns:pidf\" \
         xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\" \
         xmlns:rpid=\"urn:ietf:params:xml:ns:pidf:rpid\" entity=\"{aor}\">\
         <tuple id=\"{tuple}\"><status><basic>open</basic></status>\
         <dm:deviceID>{device}</dm:deviceID></tuple>\
         <dm:person id=\"p\">{act}<dm:note>{note}</dm:note></dm:person></presence>"
    )
}

/// One user agent: where it sends from, who it is, how it authenticates.
pub struct Ua {
    pub user: String,
    pub token: String,
    pub transport: &'static str,
    pub local: SocketAddr,
    link: Link,
    cseq: u32,
    /// Requests sipreg sent that were answered while waiting for a response.
    pub inbox: Vec<Message>,
}

enum Link {
    Udp(UdpSocket, SocketAddr),
    Tcp(TcpStream, Vec<u8>),
}

impl Ua {
    pub async fn udp(user: &str, token: &str, server: SocketAddr) -> Res<Ua> {
        let s = UdpSocket::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let local = s.local_addr().map_err(|e| e.to_string())?;
        Ok(Ua::new(user, token, "UDP", local, Link::Udp(s, server)))
    }

    pub async fn tcp(user: &str, token: &str, server: SocketAddr) -> Res<Ua> {
        let s = TcpStream::connect(server)
            .await
            .map_err(|e| e.to_string())?;
        let local = s.local_addr().map_err(|e| e.to_string())?;
        Ok(Ua::new(user, token, "TCP", local, Link::Tcp(s, Vec::new())))
    }

    fn new(user: &str, token: &str, transport: &'static str, local: SocketAddr, link: Link) -> Ua {
        Ua {
            user: user.into(),
            token: token.into(),
            transport,
            local,
            link,
            cseq: 0,
            inbox: Vec::new(),
        }
    }

    pub fn next_cseq(&mut self) -> u32 {
        self.cseq += 1;
        self.cseq
    }

    /// A request line plus the headers every request of this UA carries (the From tag
    /// follows from the Call-ID, so one call keeps one tag).
    pub fn request(
        &mut self,
        method: &str,
        uri: &str,
        call_id: &str,
        to: &str,
        extra: &str,
        body: &str,
    ) -> String {
        let cseq = self.next_cseq();
        let auth = if self.token.is_empty() {
            String::new()
        } else {
            format!("Authorization: Bearer {}\r\n", self.token)
        };
        format!(
            "{method} {uri} SIP/2.0\r\n\
             Via: SIP/2.0/{} {};branch=z9hG4bK{call_id}-{cseq};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:{}@example.com>;tag=f{call_id}\r\n\
             To: {to}\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq} {method}\r\n\
             {auth}{extra}Content-Length: {}\r\n\r\n{body}",
            self.transport,
            self.local,
            self.user,
            body.len()
        )
    }

    pub fn contact(&self) -> String {
        format!(
            "<sip:{}@{};transport={}>",
            self.user,
            self.local,
            self.transport.to_ascii_lowercase()
        )
    }

    async fn write(&mut self, bytes: &[u8]) -> Res<()> {
        match &mut self.link {
            Link::Udp(s, server) => s.send_to(bytes, *server).await.map(|_| ()),
            Link::Tcp(s, _) => s.write_all(bytes).await,
        }
        .map_err(|e| e.to_string())
    }

    /// The next message within `wait`.
    pub async fn recv(&mut self, wait: Duration) -> Res<Option<Message>> {
        match &mut self.link {
            Link::Udp(s, _) => {
                let mut buf = vec![0u8; 65_535];
                match tokio::time::timeout(wait, s.recv_from(&mut buf)).await {
                    Ok(Ok((n, _))) => parse(&buf[..n]).map(Some),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Ok(None),
                }
            }
            Link::Tcp(s, buf) => {
                let deadline = tokio::time::Instant::now() + wait;
                loop {
                    match frame_stream(buf, &Limits::default()) {
                        Frame::Message(n) => {
                            let m = parse(&buf[..n])?;
                            buf.drain(..n);
                            return Ok(Some(m));
                        }
                        Frame::Ping(n) | Frame::Skip(n) => {
                            buf.drain(..n);
                            continue;
                        }
                        _ => {}
                    }
                    let mut chunk = vec![0u8; 65_536];
                    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                    match tokio::time::timeout(left, s.read(&mut chunk)).await {
                        Ok(Ok(0)) => return Err("sipreg closed the connection".into()),
                        Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
                        Ok(Err(e)) => return Err(e.to_string()),
                        Err(_) => return Ok(None),
                    }
                }
            }
        }
    }

    /// Answers a request sipreg sent.
    pub async fn answer(&mut self, req: &Message, status: u16) -> Res<()> {
        let bytes = Response::new(status).encode(req, self.local, "");
        self.write(&bytes).await
    }

    /// Sends `text` and returns the response; NOTIFYs met on the way are answered 200
    /// and kept in `inbox`.
    pub async fn send(&mut self, text: &str) -> Res<Message> {
        self.write(text.as_bytes()).await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Some(m) = self.recv(left).await? else {
                return Err("no response within 5 s".into());
            };
            if m.is_response() {
                return Ok(m);
            }
            self.answer(&m, 200).await?;
            self.inbox.push(m);
        }
    }

    /// The next NOTIFY (from the inbox first), answered 200.
    pub async fn notify(&mut self, wait: Duration) -> Res<Message> {
        if !self.inbox.is_empty() {
            return Ok(self.inbox.remove(0));
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Some(m) = self.recv(left).await? else {
                return Err(format!("no NOTIFY within {wait:?}"));
            };
            if m.is_response() {
                continue;
            }
            self.answer(&m, 200).await?;
            return Ok(m);
        }
    }

    /// NOTIFYs until one whose body satisfies `want` (each printed with `show`).
    pub async fn notify_until(
        &mut self,
        wait: Duration,
        show: bool,
        want: impl Fn(&Message) -> bool,
    ) -> Res<Message> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Err("the expected NOTIFY never came".into());
            }
            let n = self.notify(left).await?;
            if show {
                println!(
                    "  NOTIFY CSeq {} ({}):\n    {}",
                    header(&n, HeaderName::CSeq),
                    header(&n, HeaderName::SubscriptionState),
                    body(&n)
                );
            }
            if want(&n) {
                return Ok(n);
            }
        }
    }
}

/// Fails with `what` and the message when `ok` is false; prints `ok: what` otherwise.
pub fn check(ok: bool, what: &str, m: &Message) -> Res<()> {
    if ok {
        println!("ok: {what} ({})", m.first_line);
        Ok(())
    } else {
        Err(format!(
            "unexpected answer for '{what}': {}\n{}",
            m.first_line,
            body(m)
        ))
    }
}
