//! `Via` (RFC 3261 §20.42): `SIP/2.0/UDP host:port;branch=...;rport;received=...`.

use crate::sip::text::TrimWs;
use std::fmt;

use bytestring::ByteString;

use super::{HeaderError, HeaderName, TypedHeader};
use crate::sip::params::{Params, header_params};
use crate::sip::text::{host_port, sep, sub, sub_known, token};

/// One Via element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Transport as written (UDP, TCP, TLS, SCTP, WS or anything else: kept opaque).
    pub transport: ByteString,
    pub host: ByteString,
    pub port: Option<u16>,
    pub params: Params,
    /// Protocol name and version when not spelled `SIP` and `2.0` (nearly never): out of
    /// line, so every Via is 56 octets smaller to move.
    other_protocol: Option<Box<(ByteString, ByteString)>>,
}

/// Transports spelled often enough to be kept without a reference to the buffer.
const TRANSPORTS: &[&str] = &["UDP", "TCP", "TLS", "SCTP", "WS", "WSS"];

/// The RFC 3261 branch prefix that marks a transaction id unique by construction.
pub const MAGIC_COOKIE: &str = "z9hG4bK";

impl Via {
    /// `SIP/2.0/transport host[:port]` with these parameters.
    pub fn new(transport: ByteString, host: ByteString, port: Option<u16>, params: Params) -> Via {
        Via {
            transport,
            host,
            port,
            params,
            other_protocol: None,
        }
    }

    /// Protocol name, e.g. `SIP`.
    pub fn protocol(&self) -> &str {
        self.other_protocol.as_ref().map_or("SIP", |p| &p.0)
    }

    /// Protocol version, e.g. `2.0`.
    pub fn version(&self) -> &str {
        self.other_protocol.as_ref().map_or("2.0", |p| &p.1)
    }

    pub fn branch(&self) -> Option<&str> {
        self.params.value("branch")
    }

    /// `Some(None)` for a bare `;rport` (a request asking for it), `Some(Some(p))` once filled.
    pub fn rport(&self) -> Option<Option<&str>> {
        self.params.get("rport")
    }

    pub fn received(&self) -> Option<&str> {
        self.params.value("received")
    }

    /// Whether the branch carries the RFC 3261 magic cookie.
    pub fn is_rfc3261(&self) -> bool {
        self.branch().is_some_and(|b| b.starts_with(MAGIC_COOKIE))
    }
}

impl TypedHeader for Via {
    const NAME: HeaderName = HeaderName::Via;
    const LIST: bool = true;

    fn parse(src: &ByteString, s: &str) -> Result<Via, HeaderError> {
        let s = s.trim_ws();
        let (rest, protocol) = token(s).map_err(|_| Self::err("bad protocol name"))?;
        let (rest, _) = sep("/")(rest).map_err(|_| Self::err("bad sent-protocol"))?;
        let (rest, version) = token(rest).map_err(|_| Self::err("bad protocol version"))?;
        let (rest, _) = sep("/")(rest).map_err(|_| Self::err("bad sent-protocol"))?;
        let (rest, transport) = token(rest).map_err(|_| Self::err("bad transport"))?;
        let trimmed = rest.trim_ws_start();
        if trimmed.len() == rest.len() {
            return Err(Self::err("missing white space before sent-by"));
        }
        let rest = trimmed;
        let (rest, (host, port)) = host_port(rest).map_err(|_| Self::err("bad sent-by"))?;
        let port = match port {
            Some(p) => Some(p.parse::<u16>().map_err(|_| Self::err("bad port"))?),
            None => None,
        };
        let (rest, params) = header_params(src, rest).map_err(|_| Self::err("bad parameter"))?;
        if !rest.trim_ws().is_empty() {
            return Err(Self::err("unexpected characters"));
        }
        if params.get("branch") == Some(None) {
            return Err(Self::err("branch without a value"));
        }
        let other_protocol = (protocol != "SIP" || version != "2.0")
            .then(|| Box::new((sub(src, protocol), sub(src, version))));
        Ok(Via {
            transport: sub_known(src, transport, TRANSPORTS),
            host: sub(src, host),
            port,
            params,
            other_protocol,
        })
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{} {}",
            self.protocol(),
            self.version(),
            self.transport,
            self.host
        )?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write!(f, "{}", self.params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_spaced_forms() {
        let v = Via::parse_str("SIP  /   2.0 /UDP    192.0.2.2;branch=390skdjuw").unwrap();
        assert_eq!(&*v.transport, "UDP");
        assert_eq!(v.branch(), Some("390skdjuw"));
        assert!(!v.is_rfc3261());
        let v = Via::parse_str(
            "SIP  / 2.0  / TCP     spindle.example.com   ;   branch  =   z9hG4bK9ikj8",
        )
        .unwrap();
        assert_eq!(&*v.host, "spindle.example.com");
        assert!(v.is_rfc3261());
        let v =
            Via::parse_str("SIP/2.0/UDP [2001:db8::9]:5070;rport;received=[2001:db8::9]").unwrap();
        assert_eq!(v.port, Some(5070));
        assert_eq!(v.rport(), Some(None));
        assert_eq!(
            v.to_string(),
            "SIP/2.0/UDP [2001:db8::9]:5070;rport;received=[2001:db8::9]"
        );
    }

    #[test]
    fn other_protocols_are_kept() {
        let v = Via::parse_str("SIP/3.0/UDP h;branch=z9hG4bK1").unwrap();
        assert_eq!((v.protocol(), v.version()), ("SIP", "3.0"));
        assert_eq!(v.to_string(), "SIP/3.0/UDP h;branch=z9hG4bK1");
        let v = Via::parse_str("XSIP/2.0/TCP h:5").unwrap();
        assert_eq!((v.protocol(), v.version()), ("XSIP", "2.0"));
        assert_ne!(v, Via::parse_str("SIP/2.0/TCP h:5").unwrap());
        assert_eq!(
            Via::parse_str("SIP/2.0/TCP h:5").unwrap(),
            Via::new("TCP".into(), "h".into(), Some(5), Params::new())
        );
    }

    #[test]
    fn rejects_damage() {
        for bad in [
            "SIP/2.0/UDP 192.0.2.15;;",
            "SIP/2.0/UDP",
            "SIP/2.0 192.0.2.1",
            "SIP/2.0/UDP host:70000",
            "SIP/2.0/UDP host;branch",
            "",
        ] {
            assert!(Via::parse_str(bad).is_err(), "{bad}");
        }
    }
}
