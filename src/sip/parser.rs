//! Turning octets into [`Message`]s: the header section split into fields, folding undone,
//! bodies framed by Content-Length, and the limits that keep memory bounded.
//!
//! Datagrams and streams frame differently (RFC 3261 §18.3): a datagram's body may run to
//! its end when Content-Length is absent and extra octets after the declared length are
//! discarded; on a stream Content-Length is mandatory and the framer
//! ([`frame_stream`]) decides where each message ends.

use bytes::Bytes;
use bytestring::ByteString;
use std::sync::LazyLock;

use memchr::memmem;

use super::headers::{ContentLength, HeaderName, TypedHeader};
use super::message::{Field, Headers, Message, Span};
use super::text::is_token_byte;

/// Size limits applied while parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_message_size: usize,
    pub max_headers: usize,
    pub max_header_line: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: 65_536,
            max_headers: 256,
            max_header_line: 16_384,
        }
    }
}

/// A message that could not be parsed, with what was readable of it so that a request can
/// still be answered (RFC 3261 §8.2.6 needs its Via, From, To, Call-ID and CSeq).
#[derive(Debug, Clone)]
pub struct ParseError {
    pub reason: String,
    /// 400 for bad syntax, 513 for an oversized message.
    pub status: u16,
    pub partial: Option<Box<Message>>,
}

impl ParseError {
    fn new(reason: impl Into<String>) -> ParseError {
        ParseError {
            reason: reason.into(),
            status: 400,
            partial: None,
        }
    }

    fn with_partial(mut self, first_line: ByteString, headers: Headers) -> ParseError {
        self.partial = Some(Box::new(Message {
            first_line,
            headers,
            body: Bytes::new(),
        }));
        self
    }
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for ParseError {}

const CRLF: &[u8] = b"\r\n";
const CRLFCRLF: &[u8] = b"\r\n\r\n";

/// Where the header section ends (the first CRLFCRLF), with a searcher built once rather
/// than per message.
fn end_of_head(data: &[u8]) -> Option<usize> {
    static FINDER: LazyLock<memmem::Finder<'static>> =
        LazyLock::new(|| memmem::Finder::new(CRLFCRLF));
    FINDER.find(data)
}

/// Parses one UDP datagram. Leading CRLFs are skipped (RFC 3261 §7.5).
pub fn parse_datagram(data: Bytes, limits: &Limits) -> Result<Message, ParseError> {
    let skip = leading_crlfs(&data);
    let mut data = data;
    if skip > 0 {
        // Moves the start without touching the reference count.
        bytes::Buf::advance(&mut data, skip);
    }
    if data.len() > limits.max_message_size {
        let mut e = ParseError::new("Message Too Large");
        e.status = 513;
        if let Some(end) = end_of_head(&data)
            && let Ok((first, headers)) = parse_head(data.slice(..end), limits)
        {
            e = e.with_partial(first, headers);
        }
        return Err(e);
    }
    if data.ends_with(CRLFCRLF) {
        // The common case, a request without a body: the datagram is the header section
        // and its empty line. Taken when the section holds no other empty line (then the
        // first one ends it, and the general path below finds it).
        let mut head = data.clone();
        head.truncate(data.len() - CRLFCRLF.len());
        if let Some(parsed) = split_head(head, limits, true) {
            let (first_line, headers) = parsed?;
            return no_body(first_line, headers);
        }
    }
    parse_framed(data, limits)
}

/// [`parse_datagram`] once the leading CRLFs and the size are dealt with: the header
/// section ends at the first empty line, searched for.
fn parse_framed(data: Bytes, limits: &Limits) -> Result<Message, ParseError> {
    let Some(end) = end_of_head(&data) else {
        let e = ParseError::new("Missing empty line after the header fields");
        return Err(match parse_head(data.clone(), limits) {
            Ok((first, headers)) => e.with_partial(first, headers),
            Err(_) => e,
        });
    };
    let body_start = end + CRLFCRLF.len();
    let available = data.len() - body_start;
    if available == 0 {
        // Nothing after the empty line: the buffer itself becomes the header section.
        let mut head = data;
        head.truncate(end);
        return parse_head(head, limits)
            .and_then(|(first_line, headers)| no_body(first_line, headers));
    }
    let (first_line, headers) = parse_head(data.slice(..end), limits)?;
    let body_len = match content_length(&headers) {
        Ok(Some(n)) if n > available => {
            return Err(ParseError::new("Content-Length larger than the message")
                .with_partial(first_line, headers));
        }
        Ok(Some(n)) => n,
        Ok(None) => available,
        Err(reason) => return Err(ParseError::new(reason).with_partial(first_line, headers)),
    };
    Ok(Message {
        first_line,
        headers,
        body: data.slice(body_start..body_start + body_len),
    })
}

/// A message with nothing after its empty line: the body is empty whatever Content-Length
/// says, and a Content-Length above zero is an error.
fn no_body(first_line: ByteString, headers: Headers) -> Result<Message, ParseError> {
    match content_length(&headers) {
        Ok(Some(n)) if n > 0 => Err(ParseError::new("Content-Length larger than the message")
            .with_partial(first_line, headers)),
        Ok(_) => Ok(Message {
            first_line,
            headers,
            body: Bytes::new(),
        }),
        Err(reason) => Err(ParseError::new(reason).with_partial(first_line, headers)),
    }
}

/// Content-Length from the parsed fields: at most one, well formed.
fn content_length(headers: &Headers) -> Result<Option<usize>, &'static str> {
    match headers.single::<ContentLength>() {
        Ok(v) => Ok(v.map(|c| c.0 as usize)),
        Err(e) if e.what == "appears more than once" => Err("Multiple Content-Length headers"),
        Err(_) => Err("Malformed Content-Length header"),
    }
}

/// How many octets of leading CRLFs `data` starts with (skipped, RFC 3261 §7.5).
fn leading_crlfs(data: &[u8]) -> usize {
    data.chunks(2).take_while(|c| *c == CRLF).count() * 2
}

/// Splits the header section (without its final empty line) into the start line and fields.
fn parse_head(head: Bytes, limits: &Limits) -> Result<(ByteString, Headers), ParseError> {
    // Without a guess to be wrong about, the answer is always there.
    split_head(head, limits, false).unwrap_or_else(|| Err(ParseError::new("Malformed start line")))
}

/// [`parse_head`] itself, and the guess of [`parse_datagram`]. Works on octets with
/// `memchr` (the hot path of every request); slices are cut only at ASCII delimiters, so
/// they always fall on character boundaries.
///
/// `guess`: `head` is the whole datagram but its final empty line, taken for the header
/// section without searching for the first empty line. `None` when that was wrong (an
/// empty line inside, or octets that are not UTF-8, which a body may hold): the caller
/// then finds the section's end. Without `guess` the answer is always `Some`.
fn split_head(
    head: Bytes,
    limits: &Limits,
    guess: bool,
) -> Option<Result<(ByteString, Headers), ParseError>> {
    if head.len() >= Span::EXTRA as usize {
        return Some(Err(ParseError::new("Message Too Large")));
    }
    let head = match ByteString::try_from(head) {
        Ok(h) => h,
        Err(_) if guess => return None,
        Err(_) => return Some(Err(ParseError::new("Header section is not valid UTF-8"))),
    };
    let text: &str = &head;
    let bytes = text.as_bytes();
    let mut lines = LineIter { bytes, pos: 0 };
    // The start line is the section's first line (from offset 0): at the end the section's
    // own handle becomes it, which saves a reference count round trip.
    let first_end = match lines.next() {
        Some(Ok((0, b))) if b > 0 => b,
        _ => return Some(Err(ParseError::new("Malformed start line"))),
    };
    let mut fields: Vec<Field> = Vec::with_capacity(16);
    // (index of the field, its continuation lines) for folded fields, unfolded at the end.
    let mut folded: Vec<(usize, Vec<&str>)> = Vec::new();
    let mut error: Option<String> = None;
    // Offsets fit: the section is at most the maximum message size, checked against u32.
    let span = |s: &str| Span {
        start: (s.as_ptr() as usize - bytes.as_ptr() as usize) as u32,
        len: s.len() as u32,
    };
    for line in lines {
        let Ok((a, b)) = line else {
            error.get_or_insert_with(|| "Bare CR or LF in a header field".into());
            continue;
        };
        if guess && a == b {
            return None;
        }
        let line = &text[a..b];
        let lb = line.as_bytes();
        if lb.first().is_some_and(|c| *c == b' ' || *c == b'\t') {
            let Some(last) = fields.len().checked_sub(1) else {
                error.get_or_insert_with(|| "Continuation line before any header field".into());
                continue;
            };
            match folded.last_mut() {
                Some((i, parts)) if *i == last => parts.push(line),
                _ => folded.push((last, vec![line])),
            }
            continue;
        }
        if line.len() > limits.max_header_line {
            error.get_or_insert_with(|| "Header field too long".into());
            continue;
        }
        if fields.len() >= limits.max_headers {
            error.get_or_insert_with(|| "Too many header fields".into());
            break;
        }
        // Fast path: a token, optional white space, then the colon.
        let n = lb.iter().take_while(|c| is_token_byte(**c)).count();
        let mut colon = n;
        while colon < lb.len() && (lb[colon] == b' ' || lb[colon] == b'\t') {
            colon += 1;
        }
        if n == 0 || lb.get(colon) != Some(&b':') {
            // Slow path, only to name the error as before.
            let Some(colon) = memchr::memchr(b':', lb) else {
                error.get_or_insert_with(|| format!("Malformed header line: {}", clip(line)));
                continue;
            };
            let name = trim_ws(&line[..colon]);
            error.get_or_insert_with(|| format!("Malformed header name: {}", clip(name)));
            continue;
        }
        let name = &line[..n];
        let value = trim_ws(&line[colon + 1..]);
        fields.push(Field {
            name: HeaderName::from_line(lb, n),
            raw_name: span(name),
            value: if value.is_empty() {
                Span::EMPTY
            } else {
                span(value)
            },
        });
    }
    let mut unfolded: Vec<(usize, String)> = Vec::with_capacity(folded.len());
    for (i, parts) in folded {
        let f = &fields[i];
        let mut v = String::from(&text[f.value.start as usize..][..f.value.len as usize]);
        for p in parts {
            let p = trim_ws(p);
            if p.is_empty() {
                continue;
            }
            if !v.is_empty() {
                v.push(' ');
            }
            v.push_str(p);
        }
        if v.len() > limits.max_header_line {
            error.get_or_insert_with(|| "Header field too long".into());
        }
        unfolded.push((i, v));
    }
    let first_line = head.slice_ref(&text[..first_end]);
    let mut headers = Headers::from_parts(head, fields);
    for (i, v) in unfolded {
        headers.set_value(i, &v);
    }
    Some(match error {
        Some(reason) => Err(ParseError::new(reason).with_partial(first_line, headers)),
        None => Ok((first_line, headers)),
    })
}

/// Lines of a header section as byte ranges; `Err` for a line holding a bare CR or LF.
struct LineIter<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Iterator for LineIter<'_> {
    type Item = Result<(usize, usize), ()>;

    /// One `memchr2` per line: the first CR or LF must be a CR directly followed by LF
    /// (or no CR/LF at all up to the end, for the last line).
    fn next(&mut self) -> Option<Self::Item> {
        if self.pos > self.bytes.len() {
            return None;
        }
        let start = self.pos;
        let rest = &self.bytes[start..];
        let Some(k) = memchr::memchr2(b'\r', b'\n', rest) else {
            self.pos = self.bytes.len() + 1;
            return Some(Ok((start, self.bytes.len())));
        };
        if rest[k] == b'\r' && rest.get(k + 1) == Some(&b'\n') {
            self.pos = start + k + 2;
            return Some(Ok((start, start + k)));
        }
        // A bare CR or LF: the damaged line runs to the next LF.
        self.pos = match memchr::memchr(b'\n', &rest[k..]) {
            Some(lf) => start + k + lf + 1,
            None => self.bytes.len() + 1,
        };
        Some(Err(()))
    }
}

fn trim_ws(s: &str) -> &str {
    let b = s.as_bytes();
    let mut start = 0;
    while start < b.len() && (b[start] == b' ' || b[start] == b'\t') {
        start += 1;
    }
    let mut end = b.len();
    while end > start && (b[end - 1] == b' ' || b[end - 1] == b'\t') {
        end -= 1;
    }
    // Cut at ASCII octets only, so both ends are character boundaries.
    &s[start..end]
}

fn clip(s: &str) -> &str {
    let mut end = s.len().min(40);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// What the stream framer found at the start of a connection's buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Not enough octets yet.
    Incomplete,
    /// A CRLFCRLF keep-alive ping (RFC 5626 §4.4.1) of this many octets: answer CRLF.
    Ping(usize),
    /// A lone CRLF between messages (RFC 3261 §7.5): skip it.
    Skip(usize),
    /// A whole message of this many octets.
    Message(usize),
    /// The stream cannot be framed any more; the connection must be closed.
    Invalid(&'static str),
}

/// Finds where the next message on a stream ends. Content-Length is mandatory on streams.
pub fn frame_stream(buf: &[u8], limits: &Limits) -> Frame {
    if buf.starts_with(CRLFCRLF) {
        return Frame::Ping(4);
    }
    if buf.starts_with(CRLF) {
        // Wait while the octets after it may still make a ping: a CRLFCRLF that arrives
        // as CRLF CR then LF must be answered like one that arrives whole.
        return if CRLF.starts_with(&buf[2..]) {
            Frame::Incomplete
        } else {
            Frame::Skip(2)
        };
    }
    if buf == b"\r" {
        return Frame::Incomplete;
    }
    let Some(end) = end_of_head(buf) else {
        return if buf.len() > limits.max_message_size {
            Frame::Invalid("header section exceeds the maximum message size")
        } else {
            Frame::Incomplete
        };
    };
    let body_len = match scan_content_length(&buf[..end]) {
        Ok(Some(n)) => n,
        Ok(None) => return Frame::Invalid("missing Content-Length on a stream"),
        Err(e) => return Frame::Invalid(e),
    };
    let total = end + CRLFCRLF.len();
    match total.checked_add(body_len) {
        Some(t) if t <= limits.max_message_size => {
            if buf.len() >= t {
                Frame::Message(t)
            } else {
                Frame::Incomplete
            }
        }
        _ => Frame::Invalid("message exceeds the maximum size"),
    }
}

/// Reads Content-Length from a raw header section without building the fields.
fn scan_content_length(head: &[u8]) -> Result<Option<usize>, &'static str> {
    let mut found: Option<usize> = None;
    let mut lines = head.split(|&b| b == b'\n').peekable();
    lines.next(); // start line
    while let Some(line) = lines.next() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = trim(&line[..colon]);
        if !(name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l")) {
            continue;
        }
        let mut value = trim(&line[colon + 1..]).to_vec();
        while let Some(next) = lines.peek() {
            if next.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
                value.extend_from_slice(trim(next.strip_suffix(b"\r").unwrap_or(next)));
                lines.next();
            } else {
                break;
            }
        }
        let n = std::str::from_utf8(&value)
            .ok()
            .and_then(|v| super::headers::ContentLength::parse_str(v).ok())
            .ok_or("malformed Content-Length")?;
        if found.is_some() {
            return Err("multiple Content-Length headers");
        }
        found = Some(n.0 as usize);
    }
    Ok(found)
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| *c != b' ' && *c != b'\t')
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| *c != b' ' && *c != b'\t')
        .map_or(start, |e| e + 1);
    &b[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(s: &'static str) -> Result<Message, ParseError> {
        parse_datagram(Bytes::from_static(s.as_bytes()), &Limits::default())
    }

    #[test]
    fn folding_compact_and_body() {
        let m = msg("OPTIONS sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bK1\r\nAccept: a/b,\r\n   c/d\r\nl: 4\r\n\r\nbodyEXTRA").unwrap();
        assert_eq!(&*m.first_line, "OPTIONS sip:a@b SIP/2.0");
        assert_eq!(m.headers.first(HeaderName::Accept), Some("a/b, c/d"));
        assert_eq!(&m.body[..], b"body");
        assert_eq!(m.headers.count(HeaderName::Via), 1);
    }

    #[test]
    fn content_length_errors() {
        let e = msg("OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 9999\r\n\r\nshort").unwrap_err();
        assert!(e.reason.contains("larger"));
        assert!(e.partial.is_some());
        let e = msg("OPTIONS sip:a@b SIP/2.0\r\nl: 1\r\nContent-Length: 2\r\n\r\nab").unwrap_err();
        assert!(e.reason.contains("Multiple"));
        let e = msg("OPTIONS sip:a@b SIP/2.0\r\nl: -1\r\n\r\n").unwrap_err();
        assert!(e.reason.contains("Malformed Content-Length"));
        // No Content-Length on a datagram: the body runs to the end.
        assert_eq!(
            &msg("OPTIONS sip:a@b SIP/2.0\r\n\r\nxyz").unwrap().body[..],
            b"xyz"
        );
    }

    #[test]
    fn limits_are_errors() {
        let limits = Limits {
            max_message_size: 100,
            max_headers: 2,
            max_header_line: 20,
        };
        let big = Bytes::from(vec![b'a'; 200]);
        assert_eq!(parse_datagram(big, &limits).unwrap_err().status, 513);
        let many = Bytes::from_static(b"OPTIONS sip:a@b SIP/2.0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n");
        assert!(
            parse_datagram(many, &limits)
                .unwrap_err()
                .reason
                .contains("Too many")
        );
        let long =
            Bytes::from_static(b"OPTIONS sip:a@b SIP/2.0\r\nA: 1234567890123456789012\r\n\r\n");
        assert!(
            parse_datagram(long, &limits)
                .unwrap_err()
                .reason
                .contains("too long")
        );
    }

    /// The datagram path that takes a body-less datagram for its header section answers
    /// exactly as the path that searches for the first empty line, on messages damaged at
    /// random with the octets that decide where the section ends.
    #[test]
    fn whole_datagram_guess_agrees_with_the_search() {
        let bases: [&[u8]; 3] = [
            b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nl: 0\r\n\r\n",
            b"REGISTER sip:b SIP/2.0\r\nContact: <sip:a@h>\r\n  ;expires=5\r\nContent-Length: 3\r\n\r\nabc\r\n\r\n",
            b"MESSAGE sip:b SIP/2.0\r\nl: 6\r\n\r\n\xff\xfe\r\n\r\n",
        ];
        let inserts: [&[u8]; 7] = [b"\r", b"\n", b"\r\n", b"\r\n\r\n", b"\xc3", b" ", b":"];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: usize| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) as usize % n
        };
        let limits = Limits::default();
        let outcome = |r: Result<Message, ParseError>| match r {
            Ok(m) => format!("{m:?}"),
            Err(e) => format!("{} {} {:?}", e.status, e.reason, e.partial),
        };
        let mut guessed = 0;
        for round in 0..20_000 {
            let base = bases[round % bases.len()];
            let mut m = base.to_vec();
            for _ in 0..1 + next(3) {
                let at = next(m.len() + 1);
                let ins = inserts[next(inserts.len())];
                m.splice(at..at, ins.iter().copied());
            }
            if next(2) == 0 && !m.ends_with(CRLFCRLF) {
                m.extend_from_slice(CRLFCRLF);
            }
            let data = Bytes::from(m);
            guessed += usize::from(data.ends_with(CRLFCRLF));
            let fast = outcome(parse_datagram(data.clone(), &limits));
            // parse_datagram's own first step: leading CRLFs skipped.
            let searched = outcome(parse_framed(data.slice(leading_crlfs(&data)..), &limits));
            assert_eq!(fast, searched, "{:?}", String::from_utf8_lossy(&data));
        }
        assert!(guessed > 10_000, "the guess was tried {guessed} times");
    }

    #[test]
    fn stream_framing() {
        let l = Limits::default();
        assert_eq!(frame_stream(b"\r\n\r\n", &l), Frame::Ping(4));
        assert_eq!(frame_stream(b"\r\nOPT", &l), Frame::Skip(2));
        assert_eq!(frame_stream(b"\r\n", &l), Frame::Incomplete);
        // A ping's first three octets: maybe a ping, not yet a lone CRLF.
        assert_eq!(frame_stream(b"\r\n\r", &l), Frame::Incomplete);
        assert_eq!(frame_stream(b"\r\n\rX", &l), Frame::Skip(2));
        let m = b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 3\r\n\r\nabcOPTIONS";
        assert_eq!(frame_stream(m, &l), Frame::Message(m.len() - 7));
        assert_eq!(frame_stream(&m[..m.len() - 9], &l), Frame::Incomplete);
        assert!(matches!(
            frame_stream(b"OPTIONS sip:a@b SIP/2.0\r\n\r\n", &l),
            Frame::Invalid(_)
        ));
        assert!(matches!(
            frame_stream(b"X sip:a SIP/2.0\r\nl: 1\r\nl: 1\r\n\r\nab", &l),
            Frame::Invalid(_)
        ));
        assert!(matches!(
            frame_stream(b"X sip:a SIP/2.0\r\nl: 99999999\r\n\r\n", &l),
            Frame::Invalid(_)
        ));
    }
}
