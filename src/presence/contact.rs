//! The Contact sipreg puts in its 2xx to SUBSCRIBE and in its NOTIFYs: sipreg's own
//! address, so a watcher without an outbound proxy sends its in-dialog requests (refresh,
//! unsubscribe) back to sipreg (RFC 3261 §12.1.1) rather than to the presentity's domain.
//! It names the address and transport the SUBSCRIBE arrived on; a wildcard listening
//! address is replaced by the local address the kernel routes the watcher from.

use bytestring::ByteString;

use crate::sip::{SipUri, Uri};
use crate::transaction::client::sent_by;
use crate::transport::{Context, Transport};

/// `<sip:user@address:port;transport=...>` for the request that arrived with `ctx`;
/// `user` is the presentity's (escaped) user part. TLS gives a `sips:` URI (RFC 3261
/// §12.1.1 wants one when the dialog was set up over TLS); UDP names no transport.
pub fn own_contact(ctx: &Context, user: Option<&ByteString>) -> String {
    let addr = sent_by(ctx.local, ctx.source);
    let host = match addr {
        std::net::SocketAddr::V4(a) => a.ip().to_string(),
        std::net::SocketAddr::V6(a) => format!("[{}]", a.ip()),
    };
    let mut uri = SipUri::new(
        ctx.transport == Transport::Tls,
        user.cloned(),
        ByteString::from(host),
    );
    uri.port = Some(addr.port());
    match ctx.transport {
        Transport::Udp | Transport::Tls => {}
        t => uri.params.set("transport", Some(t.as_str())),
    }
    format!("<{}>", Uri::Sip(uri))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(transport: Transport, local: &str, source: &str) -> Context {
        Context {
            transport,
            source: source.parse().unwrap(),
            local: local.parse().unwrap(),
            connection: None,
        }
    }

    #[test]
    fn names_sipreg_over_the_transport_used() {
        let alice = ByteString::from_static("alice");
        let c = |t, local| own_contact(&ctx(t, local, "127.0.0.1:5070"), Some(&alice));
        assert_eq!(
            c(Transport::Udp, "127.0.0.1:5060"),
            "<sip:alice@127.0.0.1:5060>"
        );
        assert_eq!(
            c(Transport::Tcp, "127.0.0.1:5060"),
            "<sip:alice@127.0.0.1:5060;transport=tcp>"
        );
        assert_eq!(
            c(Transport::Tls, "127.0.0.1:5061"),
            "<sips:alice@127.0.0.1:5061>"
        );
        assert_eq!(
            c(Transport::Ws, "127.0.0.1:8080"),
            "<sip:alice@127.0.0.1:8080;transport=ws>"
        );
        assert_eq!(
            c(Transport::Wss, "127.0.0.1:8443"),
            "<sip:alice@127.0.0.1:8443;transport=wss>"
        );
        // A wildcard listener: the address the kernel routes the watcher from.
        assert_eq!(
            c(Transport::Udp, "0.0.0.0:5060"),
            "<sip:alice@127.0.0.1:5060>"
        );
        let v6 = own_contact(&ctx(Transport::Udp, "[::]:5060", "[::1]:5070"), None);
        assert_eq!(v6, "<sip:[::1]:5060>");
    }
}
