//! Header field names: the ones sipreg interprets, their compact forms (RFC 3261 §7.3.3,
//! RFC 3265 `o`/`u`), and case-insensitive matching of everything else.

use std::fmt;

/// A header name. Unknown names are kept as written by the message's `Header::raw_name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeaderName {
    Via,
    From,
    To,
    CallId,
    CSeq,
    MaxForwards,
    Contact,
    Expires,
    MinExpires,
    ContentLength,
    ContentType,
    ContentEncoding,
    Require,
    ProxyRequire,
    Supported,
    Unsupported,
    Path,
    Route,
    RecordRoute,
    Allow,
    AllowEvents,
    Event,
    SubscriptionState,
    SipETag,
    SipIfMatch,
    Date,
    UserAgent,
    Server,
    Accept,
    Authorization,
    ProxyAuthorization,
    WwwAuthenticate,
    ProxyAuthenticate,
    Subject,
    Other,
}

impl HeaderName {
    /// Classifies a header name (case-insensitive, compact forms included).
    pub fn from_name(name: &str) -> HeaderName {
        if name.len() == 1 {
            return match name.as_bytes()[0].to_ascii_lowercase() {
                b'v' => HeaderName::Via,
                b'f' => HeaderName::From,
                b't' => HeaderName::To,
                b'i' => HeaderName::CallId,
                b'm' => HeaderName::Contact,
                b'l' => HeaderName::ContentLength,
                b'c' => HeaderName::ContentType,
                b'e' => HeaderName::ContentEncoding,
                b'k' => HeaderName::Supported,
                b'o' => HeaderName::Event,
                b'u' => HeaderName::AllowEvents,
                b's' => HeaderName::Subject,
                _ => HeaderName::Other,
            };
        }
        const NAMES: &[(&str, HeaderName)] = &[
            ("Via", HeaderName::Via),
            ("From", HeaderName::From),
            ("To", HeaderName::To),
            ("Call-ID", HeaderName::CallId),
            ("CSeq", HeaderName::CSeq),
            ("Max-Forwards", HeaderName::MaxForwards),
            ("Contact", HeaderName::Contact),
            ("Expires", HeaderName::Expires),
            ("Min-Expires", HeaderName::MinExpires),
            ("Content-Length", HeaderName::ContentLength),
            ("Content-Type", HeaderName::ContentType),
            ("Content-Encoding", HeaderName::ContentEncoding),
            ("Require", HeaderName::Require),
            ("Proxy-Require", HeaderName::ProxyRequire),
            ("Supported", HeaderName::Supported),
            ("Unsupported", HeaderName::Unsupported),
            ("Path", HeaderName::Path),
            ("Route", HeaderName::Route),
            ("Record-Route", HeaderName::RecordRoute),
            ("Allow", HeaderName::Allow),
            ("Allow-Events", HeaderName::AllowEvents),
            ("Event", HeaderName::Event),
            ("Subscription-State", HeaderName::SubscriptionState),
            ("SIP-ETag", HeaderName::SipETag),
            ("SIP-If-Match", HeaderName::SipIfMatch),
            ("Date", HeaderName::Date),
            ("User-Agent", HeaderName::UserAgent),
            ("Server", HeaderName::Server),
            ("Accept", HeaderName::Accept),
            ("Authorization", HeaderName::Authorization),
            ("Proxy-Authorization", HeaderName::ProxyAuthorization),
            ("WWW-Authenticate", HeaderName::WwwAuthenticate),
            ("Proxy-Authenticate", HeaderName::ProxyAuthenticate),
            ("Subject", HeaderName::Subject),
        ];
        NAMES
            .iter()
            .find(|(n, _)| n.len() == name.len() && n.eq_ignore_ascii_case(name))
            .map_or(HeaderName::Other, |(_, h)| *h)
    }

    /// The canonical long name used when sipreg prints the header.
    pub fn as_str(self) -> &'static str {
        match self {
            HeaderName::Via => "Via",
            HeaderName::From => "From",
            HeaderName::To => "To",
            HeaderName::CallId => "Call-ID",
            HeaderName::CSeq => "CSeq",
            HeaderName::MaxForwards => "Max-Forwards",
            HeaderName::Contact => "Contact",
            HeaderName::Expires => "Expires",
            HeaderName::MinExpires => "Min-Expires",
            HeaderName::ContentLength => "Content-Length",
            HeaderName::ContentType => "Content-Type",
            HeaderName::ContentEncoding => "Content-Encoding",
            HeaderName::Require => "Require",
            HeaderName::ProxyRequire => "Proxy-Require",
            HeaderName::Supported => "Supported",
            HeaderName::Unsupported => "Unsupported",
            HeaderName::Path => "Path",
            HeaderName::Route => "Route",
            HeaderName::RecordRoute => "Record-Route",
            HeaderName::Allow => "Allow",
            HeaderName::AllowEvents => "Allow-Events",
            HeaderName::Event => "Event",
            HeaderName::SubscriptionState => "Subscription-State",
            HeaderName::SipETag => "SIP-ETag",
            HeaderName::SipIfMatch => "SIP-If-Match",
            HeaderName::Date => "Date",
            HeaderName::UserAgent => "User-Agent",
            HeaderName::Server => "Server",
            HeaderName::Accept => "Accept",
            HeaderName::Authorization => "Authorization",
            HeaderName::ProxyAuthorization => "Proxy-Authorization",
            HeaderName::WwwAuthenticate => "WWW-Authenticate",
            HeaderName::ProxyAuthenticate => "Proxy-Authenticate",
            HeaderName::Subject => "Subject",
            HeaderName::Other => "X-Unknown",
        }
    }
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_and_case() {
        assert_eq!(HeaderName::from_name("v"), HeaderName::Via);
        assert_eq!(HeaderName::from_name("L"), HeaderName::ContentLength);
        assert_eq!(
            HeaderName::from_name("MaX-fOrWaRdS"),
            HeaderName::MaxForwards
        );
        assert_eq!(HeaderName::from_name("C%6Fntact"), HeaderName::Other);
        assert_eq!(HeaderName::from_name("o"), HeaderName::Event);
    }
}
