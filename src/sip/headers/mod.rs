//! Typed headers, one per file, each with its parser and printer side by side.
//!
//! A typed header parses one header value (for list headers such as Via or Contact, one
//! comma-separated element) and prints back to valid SIP; `parse(print(x)) == x` is
//! checked by the property tests in `tests/header_roundtrip.rs`.

use crate::sip::text::TrimWs;
use std::fmt;

use bytestring::ByteString;

mod address;
mod allow;
mod allow_events;
mod auth;
mod call_id;
mod contact;
mod content_length;
mod content_type;
mod cseq;
mod date;
mod etag;
mod event;
mod expires;
mod max_forwards;
mod min_expires;
mod name;
mod option_tags;
mod product;
mod subscription_state;
mod via;

pub use address::{From, Path, RecordRoute, Route, To};
pub use allow::Allow;
pub use allow_events::AllowEvents;
pub use auth::{AuthData, AuthValue, Authorization, ProxyAuthorization, WwwAuthenticate};
pub use call_id::CallId;
pub use contact::{Contact, ContactValue};
pub use content_length::ContentLength;
pub use content_type::ContentType;
pub use cseq::CSeq;
pub use date::Date;
pub use etag::{SipETag, SipIfMatch};
pub use event::Event;
pub use expires::Expires;
pub use max_forwards::MaxForwards;
pub use min_expires::MinExpires;
pub use name::HeaderName;
pub use option_tags::{ProxyRequire, Require, Supported, Unsupported};
pub use product::{Server, UserAgent};
pub use subscription_state::SubscriptionState;
pub use via::{MAGIC_COOKIE, Via};

/// A header value that did not parse; the message names the header and the problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderError {
    pub header: HeaderName,
    pub what: &'static str,
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed {} header: {}", self.header, self.what)
    }
}

impl std::error::Error for HeaderError {}

/// A header sipreg understands.
pub trait TypedHeader: Sized + fmt::Display {
    const NAME: HeaderName;
    /// Whether the header is a comma-separated list; then [`TypedHeader::parse`] gets one
    /// element at a time.
    const LIST: bool = false;

    /// Parses `s`, a sub-slice of `src` (so parts can be kept without copying).
    fn parse(src: &ByteString, s: &str) -> Result<Self, HeaderError>;

    /// Parses a standalone value (tests, configuration).
    fn parse_str(s: &str) -> Result<Self, HeaderError> {
        let src = ByteString::from(s);
        Self::parse(&src, &src)
    }

    fn err(what: &'static str) -> HeaderError {
        HeaderError {
            header: Self::NAME,
            what,
        }
    }
}

/// A header whose value is one non-negative 32-bit decimal (Expires, Min-Expires,
/// Max-Forwards, Content-Length): the type, its parser and its printer.
macro_rules! u32_header {
    ($(#[$doc:meta])* $ty:ident, $name:expr, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $ty(pub u32);

        impl TypedHeader for $ty {
            const NAME: HeaderName = $name;

            fn parse(_src: &ByteString, s: &str) -> Result<$ty, HeaderError> {
                parse_u32(s).map($ty).ok_or(Self::err($what))
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}
pub(crate) use u32_header;

/// Parses the whole of `s` as a non-negative decimal that fits a `u32`.
pub(crate) fn parse_u32(s: &str) -> Option<u32> {
    let s = s.trim_ws();
    if s.is_empty() {
        return None;
    }
    // Digits only, accumulated with overflow checks (what `str::parse` does, in one pass).
    s.bytes().try_fold(0u32, |acc, b| {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        acc.checked_mul(10)?.checked_add(d as u32)
    })
}
