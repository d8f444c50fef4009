//! `Require`, `Proxy-Require`, `Supported` / `k` and `Unsupported` (RFC 3261 §20.32,
//! §20.29, §20.37, §20.40): option-tag lists that share one shape. A list element is one tag.

use crate::sip::text::TrimWs;
use std::fmt;

use bytestring::ByteString;

use super::{HeaderError, HeaderName, TypedHeader};
use crate::sip::text::{is_token_char, sub};

fn parse_tag(src: &ByteString, s: &str) -> Option<ByteString> {
    let s = s.trim_ws();
    (!s.is_empty() && s.chars().all(is_token_char)).then(|| sub(src, s))
}

macro_rules! option_tag_header {
    ($(#[$doc:meta])* $ty:ident, $name:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $ty(pub ByteString);

        impl TypedHeader for $ty {
            const NAME: HeaderName = $name;
            const LIST: bool = true;

            fn parse(src: &ByteString, s: &str) -> Result<$ty, HeaderError> {
                parse_tag(src, s).map($ty).ok_or(Self::err("not an option-tag"))
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

option_tag_header!(
    /// One option-tag of `Require`: the client needs the server to support it (else 420).
    Require,
    HeaderName::Require
);
option_tag_header!(
    /// One option-tag of `Proxy-Require`; a UAS ignores it (RFC 3261 §8.2.2.3).
    ProxyRequire,
    HeaderName::ProxyRequire
);
option_tag_header!(
    /// One option-tag of `Supported`.
    Supported,
    HeaderName::Supported
);
option_tag_header!(
    /// One option-tag of `Unsupported`, listed in a 420.
    Unsupported,
    HeaderName::Unsupported
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags() {
        assert_eq!(Require::parse_str(" path ").unwrap().to_string(), "path");
        assert!(Supported::parse_str("a b").is_err());
        assert!(Unsupported::parse_str("").is_err());
    }
}
