//! A light reader for the messages the generator receives: the status code (or request
//! method) and the few header fields it acts on, found by walking the header lines once
//! without building a full message. The full parser is not needed here and would cost
//! the generator more than the server under test.

/// The start line of a received message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start<'a> {
    Response(u16),
    Request(&'a str),
}

/// A header field's canonical name: compact forms (RFC 3261 §7.3.3) are expanded so
/// callers compare one spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Name<'a> {
    Via,
    From,
    To,
    CallId,
    CSeq,
    WwwAuthenticate,
    SipEtag,
    ContentLength,
    Other(&'a str),
}

impl<'a> Name<'a> {
    fn of(raw: &'a str) -> Name<'a> {
        let n = raw.trim();
        let eq = |s: &str| n.eq_ignore_ascii_case(s);
        if eq("via") || eq("v") {
            Name::Via
        } else if eq("from") || eq("f") {
            Name::From
        } else if eq("to") || eq("t") {
            Name::To
        } else if eq("call-id") || eq("i") {
            Name::CallId
        } else if eq("cseq") {
            Name::CSeq
        } else if eq("www-authenticate") {
            Name::WwwAuthenticate
        } else if eq("sip-etag") {
            Name::SipEtag
        } else if eq("content-length") || eq("l") {
            Name::ContentLength
        } else {
            Name::Other(n)
        }
    }
}

/// A message split into its start line and header lines; the body is not looked at.
#[derive(Debug, Clone, Copy)]
pub struct Scanned<'a> {
    pub start: Start<'a>,
    head: &'a str,
}

/// Reads the start line; `None` for anything that is not a SIP/2.0 message in UTF-8.
pub fn scan(data: &[u8]) -> Option<Scanned<'_>> {
    let end = memchr::memmem::find(data, b"\r\n\r\n").unwrap_or(data.len());
    let text = std::str::from_utf8(&data[..end]).ok()?;
    let (first, head) = text.split_once("\r\n").unwrap_or((text, ""));
    let start = if let Some(rest) = first.strip_prefix("SIP/2.0 ") {
        let code = rest.get(..3)?.parse().ok()?;
        Start::Response(code)
    } else {
        let (method, rest) = first.split_once(' ')?;
        if !rest.ends_with(" SIP/2.0") {
            return None;
        }
        Start::Request(method)
    };
    Some(Scanned { start, head })
}

impl<'a> Scanned<'a> {
    /// Header lines as (name, value), in order. Folded continuation lines are not joined:
    /// the servers measured here do not fold, and a folded line only loses its tail.
    pub fn headers(&self) -> impl Iterator<Item = (Name<'a>, &'a str)> + 'a {
        self.head
            .split("\r\n")
            .filter_map(|line| line.split_once(':'))
            .map(|(n, v)| (Name::of(n), v.trim()))
    }

    /// Header lines with a given name, each whole (`Name: value`), for echoing back.
    pub fn lines(&self, want: Name<'static>) -> impl Iterator<Item = &'a str> + 'a {
        self.head.split("\r\n").filter(move |line| {
            line.split_once(':')
                .is_some_and(|(n, _)| Name::of(n) == want)
        })
    }

    /// The value of the first header with this name.
    pub fn first(&self, want: Name<'_>) -> Option<&'a str> {
        self.headers().find(|(n, _)| *n == want).map(|(_, v)| v)
    }

    /// The `branch` parameter of the top Via.
    pub fn branch(&self) -> Option<&'a str> {
        let via = self.first(Name::Via)?;
        let top = via.split(',').next()?;
        param(top, "branch")
    }

    /// The `tag` parameter of To.
    pub fn to_tag(&self) -> Option<&'a str> {
        let to = self.first(Name::To)?;
        // Parameters after the closing '>' (or after the URI when there are no brackets).
        let params = match to.rfind('>') {
            Some(i) => &to[i + 1..],
            None => to,
        };
        param(params, "tag")
    }
}

/// A `;name=value` parameter in a header value (names compared case-insensitively).
pub fn param<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    value.split(';').skip(1).find_map(|p| {
        let (n, v) = p.split_once('=')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &[u8] = b"SIP/2.0 200 OK\r\n\
        v: SIP/2.0/UDP 127.0.0.1:4000;rport=4000;branch=z9hG4bK-1-2-3-4;received=127.0.0.1\r\n\
        From: <sip:a@x>;tag=abc\r\n\
        t: \"A\" <sip:a@x;user=phone>;tag=srv9\r\n\
        SIP-ETag: e77\r\n\
        WWW-Authenticate: Bearer realm=\"x\"\r\n\
        WWW-Authenticate: Digest realm=\"x\", nonce=\"n\"\r\n\
        Content-Length: 0\r\n\r\n";

    #[test]
    fn response_fields() {
        let s = scan(OK).expect("scans");
        assert_eq!(s.start, Start::Response(200));
        assert_eq!(s.branch(), Some("z9hG4bK-1-2-3-4"));
        assert_eq!(s.to_tag(), Some("srv9"));
        assert_eq!(s.first(Name::SipEtag), Some("e77"));
        let auths: Vec<_> = s
            .headers()
            .filter(|(n, _)| *n == Name::WwwAuthenticate)
            .map(|(_, v)| v)
            .collect();
        assert_eq!(
            auths,
            ["Bearer realm=\"x\"", "Digest realm=\"x\", nonce=\"n\""]
        );
    }

    #[test]
    fn request_and_echo_lines() {
        let s = scan(
            b"NOTIFY sip:w@127.0.0.1:4000 SIP/2.0\r\nVia: a\r\nv: b\r\nTo: <sip:w@x>\r\n\r\nbody",
        )
        .expect("scans");
        assert_eq!(s.start, Start::Request("NOTIFY"));
        assert_eq!(s.lines(Name::Via).collect::<Vec<_>>(), ["Via: a", "v: b"]);
        assert_eq!(s.to_tag(), None);
    }

    #[test]
    fn rejects_what_is_not_sip() {
        assert!(scan(b"HTTP/1.1 200 OK\r\n\r\n").is_none());
        assert!(scan(b"SIP/2.0 2x0 OK\r\n\r\n").is_none());
        assert!(scan(b"\xff\xfe").is_none());
        assert!(scan(b"").is_none());
    }
}
