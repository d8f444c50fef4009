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
    /// Protocol name and version, e.g. `SIP` and `2.0`.
    pub protocol: ByteString,
    pub version: ByteString,
    /// Transport as written (UDP, TCP, TLS, SCTP, WS or anything else: kept opaque).
    pub transport: ByteString,
    pub host: ByteString,
    pub port: Option<u16>,
    pub params: Params,
}

/// Transports spelled often enough to be kept without a reference to the buffer.
const TRANSPORTS: &[&str] = &["UDP", "TCP", "TLS", "SCTP", "WS", "WSS"];

/// The RFC 3261 branch prefix that marks a transaction id unique by construction.
pub const MAGIC_COOKIE: &str = "z9hG4bK";

impl Via {
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
        Ok(Via {
            protocol: sub_known(src, protocol, &["SIP"]),
            version: sub_known(src, version, &["2.0"]),
            transport: sub_known(src, transport, TRANSPORTS),
            host: sub(src, host),
            port,
            params,
        })
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{} {}",
            self.protocol, self.version, self.transport, self.host
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
