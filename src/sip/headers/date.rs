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
}
