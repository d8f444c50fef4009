//! WebSocket test helpers: a lab certificate (rcgen, self-signed for 127.0.0.1 and
//! localhost), the TLS side of a WSS listener built from it, and a SIP-over-WebSocket
//! client (tokio-tungstenite) over plain TCP or TLS.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use sipreg::sip::{Limits, Message, parse_datagram};
use sipreg::transport::ws::TlsAccept;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::rustls;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};

/// A self-signed certificate and its key, for WSS on loopback.
pub struct LabCert {
    pub cert_der: Vec<u8>,
    pub key_der: Vec<u8>,
    pub cert_pem: String,
    pub key_pem: String,
    /// The certificate's SubjectPublicKeyInfo (for Chromium's SPKI allow-list).
    pub spki_der: Vec<u8>,
}

pub fn lab_cert() -> LabCert {
    use rcgen::PublicKeyData;
    let ck =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .expect("rcgen");
    LabCert {
        cert_der: ck.cert.der().to_vec(),
        key_der: ck.signing_key.serialize_der(),
        cert_pem: ck.cert.pem(),
        key_pem: ck.signing_key.serialize_pem(),
        spki_der: ck.signing_key.subject_public_key_info(),
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The TLS side of a WSS listener serving `cert`.
pub fn tls_accept(cert: &LabCert) -> TlsAccept {
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.cert_der.clone().into()],
            rustls::pki_types::PrivateKeyDer::try_from(cert.key_der.clone()).expect("key"),
        )
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    Arc::new(move || acceptor.clone())
}

/// A TLS connector trusting only `cert`.
pub fn tls_connector(cert: &LabCert) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert_der.clone().into()).expect("root");
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// How a client opens its connection.
#[derive(Clone, Default)]
pub struct Open {
    /// `Sec-WebSocket-Protocol` (None: no header).
    pub protocol: Option<&'static str>,
    pub origin: Option<&'static str>,
}

impl Open {
    pub fn sip() -> Open {
        Open {
            protocol: Some("sip"),
            origin: None,
        }
    }
}

/// Any byte stream a client runs over (TCP or TLS).
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A SIP-over-WebSocket client.
pub struct WsClient {
    pub ws: WebSocketStream<Box<dyn Io>>,
    /// Its local address (the server sees this as the source).
    pub local: SocketAddr,
}

/// Opens `ws://addr/` (or `wss://` when `tls` is given) with `open`'s headers; the
/// server's refusal comes back as the error (an HTTP response for a refused upgrade).
pub async fn connect(
    addr: SocketAddr,
    tls: Option<&tokio_rustls::TlsConnector>,
    open: Open,
) -> Result<WsClient, WsError> {
    let tcp = TcpStream::connect(addr).await?;
    let local = tcp.local_addr()?;
    let (io, scheme): (Box<dyn Io>, _) = match tls {
        None => (Box::new(tcp), "ws"),
        Some(c) => {
            let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
            (Box::new(c.connect(name, tcp).await?), "wss")
        }
    };
    let mut req = format!("{scheme}://{addr}/")
        .into_client_request()
        .expect("request");
    if let Some(p) = open.protocol {
        req.headers_mut()
            .insert("sec-websocket-protocol", HeaderValue::from_static(p));
    }
    if let Some(o) = open.origin {
        req.headers_mut()
            .insert("origin", HeaderValue::from_static(o));
    }
    let (ws, _) = tokio_tungstenite::client_async(req, io).await?;
    Ok(WsClient { ws, local })
}

/// What a read saw.
#[derive(Debug)]
pub enum Got {
    Sip(Message),
    Ping,
    Closed(Option<CloseFrame>),
    Nothing,
}

impl WsClient {
    pub async fn send_text(&mut self, text: &str) {
        self.ws
            .send(WsMessage::text(text.to_string()))
            .await
            .expect("send");
    }

    /// The next SIP message, ping or close within `wait`.
    pub async fn next(&mut self, wait: Duration) -> Got {
        loop {
            match tokio::time::timeout(wait, self.ws.next()).await {
                Err(_) => return Got::Nothing,
                Ok(None) | Ok(Some(Err(_))) => return Got::Closed(None),
                Ok(Some(Ok(m))) => match m {
                    WsMessage::Text(t) => return Got::Sip(sip(Bytes::from(t))),
                    WsMessage::Binary(b) => return Got::Sip(sip(b)),
                    WsMessage::Ping(_) => return Got::Ping,
                    WsMessage::Close(f) => return Got::Closed(f),
                    _ => continue,
                },
            }
        }
    }

    /// The next SIP message within `wait` (pings skipped); panics on anything else.
    pub async fn sip(&mut self, wait: Duration) -> Message {
        loop {
            match self.next(wait).await {
                Got::Sip(m) => return m,
                Got::Ping => continue,
                other => panic!("expected a SIP message, got {other:?}"),
            }
        }
    }

    /// Sends `text` and returns the first SIP message back.
    pub async fn request(&mut self, text: &str, wait: Duration) -> Message {
        self.send_text(text).await;
        self.sip(wait).await
    }

    /// Sends a WebSocket Close and waits for the server's.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
        while let Ok(Some(Ok(_))) =
            tokio::time::timeout(Duration::from_secs(2), self.ws.next()).await
        {}
    }
}

fn sip(b: Bytes) -> Message {
    parse_datagram(b, &Limits::default()).expect("server sent an unparseable message")
}
