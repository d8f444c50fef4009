//! `From` / `f`, `To` / `t` (RFC 3261 §20.20, §20.39) and the route-shaped lists `Route`,
//! `Record-Route` and `Path` (RFC 3327): all carry a [`NameAddr`].

use std::fmt;

use bytestring::ByteString;

use super::{HeaderError, HeaderName, TypedHeader};
use crate::sip::name_addr::NameAddr;

macro_rules! address_header {
    ($(#[$doc:meta])* $ty:ident, $name:expr, $list:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $ty(pub NameAddr);

        impl TypedHeader for $ty {
            const NAME: HeaderName = $name;
            const LIST: bool = $list;

            fn parse(src: &ByteString, s: &str) -> Result<$ty, HeaderError> {
                NameAddr::parse(src, s).map($ty).map_err(Self::err)
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

address_header!(
    /// The request's originator; its `tag` identifies the dialog's remote side.
    From,
    HeaderName::From,
    false
);
address_header!(
    /// The request's target: for REGISTER, the address-of-record.
    To,
    HeaderName::To,
    false
);
address_header!(
    /// One element of a `Route` set.
    Route,
    HeaderName::Route,
    true
);
address_header!(
    /// One element of `Record-Route`: a proxy that stays on the dialog's path.
    RecordRoute,
    HeaderName::RecordRoute,
    true
);
address_header!(
    /// One element of `Path` (RFC 3327): proxies a registrar routes through to the contact.
    Path,
    HeaderName::Path,
    true
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        let t = To::parse_str("\"Alice\" <sip:alice@atlanta.com>;tag=1928301774").unwrap();
        assert_eq!(t.0.tag(), Some("1928301774"));
        assert_eq!(
            t.to_string(),
            "\"Alice\" <sip:alice@atlanta.com>;tag=1928301774"
        );
        assert!(From::parse_str("Bell, Alexander <sip:a.g.bell@example.com>").is_err());
        assert!(Path::parse_str("<sip:p1.example.com;lr>").is_ok());
    }
}
