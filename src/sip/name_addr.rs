//! `name-addr` and `addr-spec` with header parameters: the value shape of From, To,
//! Contact, Route, Record-Route and Path (RFC 3261 §20.10, §25.1).

use super::text::TrimWs;
use std::fmt;

use bytestring::ByteString;

use super::params::{Params, header_params};
use super::text::{is_token_byte, quoted_string, sub, unquote};
use super::uri::Uri;

/// An address with an optional display name and header parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// Display name as written: a quoted string (quotes kept) or LWS-separated tokens.
    pub display: Option<ByteString>,
    pub uri: Uri,
    /// Parameters after the address (`;tag=`, `;expires=` ...), not part of the URI.
    pub params: Params,
}

impl NameAddr {
    pub fn new(uri: Uri) -> NameAddr {
        NameAddr {
            display: None,
            uri,
            params: Params::new(),
        }
    }

    /// Parses one address (one element of a comma-separated list).
    pub fn parse(src: &ByteString, s: &str) -> Result<NameAddr, &'static str> {
        let s = s.trim_ws();
        let (display, after_display) = if s.starts_with('"') {
            let (rest, q) = quoted_string(s).map_err(|_| "unterminated quoted display name")?;
            let rest = rest.trim_ws_start();
            if !rest.starts_with('<') {
                return Err("display name without <URI>");
            }
            (Some(sub(src, q)), rest)
        } else if let Some(lt) = super::text::find_byte(b'<', s.as_bytes()) {
            let name = s[..lt].trim_ws();
            // Tokens separated by white space.
            if !name
                .bytes()
                .all(|b| is_token_byte(b) || b == b' ' || b == b'\t')
            {
                return Err("invalid display name");
            }
            ((!name.is_empty()).then(|| sub(src, name)), &s[lt..])
        } else {
            (None, s)
        };

        let (uri_text, rest) = if let Some(inner) = after_display.strip_prefix('<') {
            let gt =
                super::text::find_byte(b'>', inner.as_bytes()).ok_or("missing '>' after URI")?;
            (&inner[..gt], &inner[gt + 1..])
        } else {
            // addr-spec: the URI ends at white space or ';'; a URI with '?', ',' or ';'
            // must be written inside <> (RFC 3261 §20.10).
            let end = memchr::memchr3(b';', b' ', b'\t', after_display.as_bytes())
                .unwrap_or(after_display.len());
            let text = &after_display[..end];
            if memchr::memchr2(b'?', b',', text.as_bytes()).is_some() {
                return Err("URI with '?' or ',' must be enclosed in <>");
            }
            (text, &after_display[end..])
        };
        let params = header_params(src, rest);
        // The URI is parsed last, straight into the result: it is the largest part, and
        // every intermediate value holding it would be one more copy.
        let uri = match Uri::parse(src, uri_text) {
            Ok(uri) => uri,
            Err(e) => return Err(e.0),
        };
        let (rest, params) = params.map_err(|_| "invalid header parameter")?;
        if !rest.trim_ws().is_empty() {
            return Err("unexpected characters after address");
        }
        Ok(NameAddr {
            display,
            uri,
            params,
        })
    }

    /// The display name with quotes and escapes removed.
    pub fn display_name(&self) -> Option<String> {
        self.display.as_deref().map(|d| {
            if d.starts_with('"') {
                unquote(d)
            } else {
                d.to_string()
            }
        })
    }

    pub fn tag(&self) -> Option<&str> {
        self.params.value("tag")
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.display {
            write!(f, "{d} ")?;
        }
        write!(f, "<{}>{}", self.uri, self.params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &'static str) -> Result<NameAddr, &'static str> {
        let src = ByteString::from_static(s);
        NameAddr::parse(&src, &src)
    }

    #[test]
    fn forms() {
        let a =
            parse("\"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com>   ;   tag = 98asjd8")
                .unwrap();
        assert_eq!(a.display_name().as_deref(), Some("J Rosenberg \\\""));
        assert_eq!(a.tag(), Some("98asjd8"));
        let a = parse("caller<sip:caller@example.com>;tag=323").unwrap();
        assert_eq!(a.display.as_deref(), Some("caller"));
        let a = parse("sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n").unwrap();
        assert_eq!(a.tag(), Some("1918181833n"));
        assert_eq!(
            a.to_string(),
            "<sip:vivekg@chair-dnrc.example.com>;tag=1918181833n"
        );
        // In addr-spec form the parameter belongs to the header, not the URI.
        let a = parse("sip:+19725552222@gw1.example.net;unknownparam").unwrap();
        assert!(a.uri.as_sip().unwrap().params.is_empty());
        assert!(a.params.contains("unknownparam"));
        let a = parse("<sip:+19725552222@gw1.example.net;unknownparam>").unwrap();
        assert!(a.uri.as_sip().unwrap().params.contains("unknownparam"));
    }

    #[test]
    fn rejects() {
        for bad in [
            "\"Mr. J. User <sip:j.user@example.com>",
            "\"Watson, Thomas\" < sip:t.watson@example.org >",
            "Bell",
            "sip:user@example.com?Route=%3Csip:sip.example.com%3E",
            "\"Joe\" <sip:joe@example.org>;;;;",
            "<sip:a@b",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
