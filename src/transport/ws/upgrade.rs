//! The HTTP upgrade (RFC 6455 §4.2, RFC 7118 §4.1), checked before a connection becomes
//! a flow. Refusals are HTTP answers, each logged with the peer:
//!
//! - no `sip` in `Sec-WebSocket-Protocol` → `400 Bad Request` (a SIP endpoint must
//!   offer it, RFC 7118 §4.1; accepting would leave the client unsure what it speaks);
//! - an `Origin` outside the configured list → `403 Forbidden`.
//!
//! The accepted answer names the `sip` sub-protocol.

use std::net::SocketAddr;

use tokio_tungstenite::tungstenite::handshake::server::{
    Callback, ErrorResponse, Request, Response,
};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};

/// The sub-protocol SIP over WebSocket negotiates.
pub const SUBPROTOCOL: &str = "sip";

/// The checks of one upgrade.
pub struct Check<'a> {
    origins: &'a [String],
    peer: SocketAddr,
}

impl<'a> Check<'a> {
    pub fn new(origins: &'a [String], peer: SocketAddr) -> Check<'a> {
        Check { origins, peer }
    }
}

/// Whether the comma-separated `Sec-WebSocket-Protocol` values offer `sip`.
pub fn offers_sip<'v>(values: impl IntoIterator<Item = &'v HeaderValue>) -> bool {
    values.into_iter().any(|v| {
        v.to_str().is_ok_and(|s| {
            s.split(',')
                .any(|p| p.trim().eq_ignore_ascii_case(SUBPROTOCOL))
        })
    })
}

/// Whether `origin` may upgrade: any when the list is empty, otherwise one of the list
/// (no case, no trailing slash).
pub fn origin_allowed(origins: &[String], origin: Option<&str>) -> bool {
    let Some(origin) = origin else {
        // Not a browser: Origin protects browsers' users, anything else can forge it.
        return true;
    };
    origins.is_empty()
        || origins.iter().any(|o| {
            o.trim_end_matches('/')
                .eq_ignore_ascii_case(origin.trim_end_matches('/'))
        })
}

fn refuse(status: StatusCode, why: &str) -> ErrorResponse {
    let mut r = ErrorResponse::new(Some(format!("{why}\n")));
    *r.status_mut() = status;
    r
}

impl Callback for Check<'_> {
    fn on_request(
        self,
        request: &Request,
        mut response: Response,
    ) -> Result<Response, ErrorResponse> {
        let headers = request.headers();
        if !offers_sip(headers.get_all("sec-websocket-protocol")) {
            tracing::info!(peer = %self.peer, "WebSocket upgrade refused: the sip sub-protocol was not offered");
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "SIP over WebSocket needs the 'sip' sub-protocol (Sec-WebSocket-Protocol: sip, RFC 7118)",
            ));
        }
        let origin = match headers.get("origin").map(|o| o.to_str()) {
            None => None,
            Some(Ok(o)) => Some(o),
            Some(Err(_)) => {
                tracing::info!(peer = %self.peer, "WebSocket upgrade refused: unreadable Origin");
                return Err(refuse(StatusCode::FORBIDDEN, "Origin not allowed"));
            }
        };
        if !origin_allowed(self.origins, origin) {
            tracing::info!(peer = %self.peer, origin = origin.unwrap_or(""), "WebSocket upgrade refused: Origin not allowed");
            return Err(refuse(StatusCode::FORBIDDEN, "Origin not allowed"));
        }
        response.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_static(SUBPROTOCOL),
        );
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_must_be_among_the_offered_protocols() {
        let v = |s: &'static str| HeaderValue::from_static(s);
        assert!(offers_sip([&v("sip")]));
        assert!(offers_sip([&v("chat, SIP")]));
        assert!(offers_sip([&v("chat"), &v("sip")]));
        assert!(!offers_sip([&v("sips, chat")]));
        assert!(!offers_sip(std::iter::empty()));
    }

    #[test]
    fn origins_empty_list_allows_all_and_absent_origin_passes() {
        let list = vec!["https://phone.example.com".to_string()];
        assert!(origin_allowed(&[], Some("https://evil.example.net")));
        assert!(origin_allowed(&list, None));
        assert!(origin_allowed(&list, Some("https://PHONE.example.com/")));
        assert!(!origin_allowed(
            &list,
            Some("https://phone.example.com:8443")
        ));
        assert!(!origin_allowed(&list, Some("null")));
    }
}
