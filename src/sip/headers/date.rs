//! `Date` (RFC 3261 §20.17): an RFC 1123 date, always GMT.

use crate::sip::text::TrimWs;
use std::fmt;
use std::time::SystemTime;

use bytestring::ByteString;

use super::{HeaderError, HeaderName, TypedHeader};

/// A date with one-second resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Date(pub SystemTime);

impl Date {
    pub fn now() -> Date {
        Date(SystemTime::now())
    }

    /// `Date::now().to_string()`, formatted once per second per thread: every 200 OK to
    /// a REGISTER carries it, and the text only changes when the second does.
    pub fn now_text() -> String {
        thread_local! {
            static LAST: std::cell::RefCell<(u64, String)> =
                const { std::cell::RefCell::new((u64::MAX, String::new())) };
        }
        let now = SystemTime::now();
        let secs = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(u64::MAX, |d| d.as_secs());
        LAST.with_borrow_mut(|(at, text)| {
            if *at != secs || secs == u64::MAX {
                *text = Date(now).to_string();
                *at = secs;
            }
            text.clone()
        })
    }
}

impl TypedHeader for Date {
    const NAME: HeaderName = HeaderName::Date;

    fn parse(_src: &ByteString, s: &str) -> Result<Date, HeaderError> {
        let s = s.trim_ws();
        if !s.ends_with(" GMT") {
            return Err(Self::err("time zone must be GMT"));
        }
        httpdate::parse_http_date(s)
            .map(Date)
            .map_err(|_| Self::err("not an RFC 1123 date"))
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&httpdate::fmt_http_date(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        let d = Date::parse_str("Sat, 13 Nov 2010 23:29:00 GMT").unwrap();
        assert_eq!(d.to_string(), "Sat, 13 Nov 2010 23:29:00 GMT");
        assert!(Date::parse_str("Fri, 01 Jan 2010 16:00:00 EST").is_err());
    }

    #[test]
    fn cached_text_is_the_current_date() {
        for _ in 0..3 {
            let before = Date::now().to_string();
            let text = Date::now_text();
            let after = Date::now().to_string();
            assert!(
                text == before || text == after,
                "{text} not {before} or {after}"
            );
        }
    }
}
