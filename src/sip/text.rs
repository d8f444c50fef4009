//! Character classes and small nom parsers shared by the SIP grammar (RFC 3261 §25.1).
//!
//! Every parser works on `&str` slices of a header value and never allocates; callers turn
//! the slices they keep back into zero-copy [`ByteString`]s with [`ByteString::slice_ref`].

use bytestring::ByteString;
use nom::IResult;
use nom::Parser;
use nom::bytes::complete::{tag, take_while1};
use nom::combinator::recognize;
use nom::sequence::delimited;

/// A 256-entry membership table of a `const fn(u8) -> bool`, built at compile time.
macro_rules! byte_table {
    ($f:path) => {{
        let mut t = [false; 256];
        let mut i = 0;
        while i < 256 {
            t[i] = $f(i as u8);
            i += 1;
        }
        t
    }};
}
pub(crate) use byte_table;

/// `token` characters: alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~".
pub fn is_token_char(c: char) -> bool {
    c.is_ascii() && is_token_byte(c as u8)
}

/// [`is_token_char`] for an octet, by table lookup (it runs over every header name).
pub const fn is_token_byte(b: u8) -> bool {
    TOKEN[b as usize]
}

static TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        t[i] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            );
        i += 1;
    }
    t
};

/// `unreserved` for an octet.
pub const fn is_unreserved_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
        )
}

/// `unreserved`: alphanum / mark.
pub fn is_unreserved(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '!' | '~' | '*' | '\'' | '(' | ')')
}

/// `word` characters (Call-ID): token characters plus a set of separators.
pub fn is_word_char(c: char) -> bool {
    is_token_char(c)
        || matches!(
            c,
            '(' | ')' | '<' | '>' | ':' | '\\' | '"' | '/' | '[' | ']' | '?' | '{' | '}'
        )
}

/// Linear white space inside a header value (folding was already undone by the parser).
pub fn is_ws(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Trimming of SP and HTAB by octets (`str::trim_matches` with a `char` predicate decodes
/// UTF-8 and is several times slower). Cuts happen next to ASCII octets only, so the results
/// are always on character boundaries.
pub trait TrimWs {
    fn trim_ws(&self) -> &str;
    fn trim_ws_start(&self) -> &str;
    fn trim_ws_end(&self) -> &str;
}

impl TrimWs for str {
    fn trim_ws(&self) -> &str {
        self.trim_ws_start().trim_ws_end()
    }

    fn trim_ws_start(&self) -> &str {
        let b = self.as_bytes();
        let mut i = 0;
        while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
            i += 1;
        }
        &self[i..]
    }

    fn trim_ws_end(&self) -> &str {
        let b = self.as_bytes();
        let mut i = b.len();
        while i > 0 && (b[i - 1] == b' ' || b[i - 1] == b'\t') {
            i -= 1;
        }
        &self[..i]
    }
}

/// Whether every octet of `s` is a token character (and `s` is not empty).
pub fn is_token_str(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_byte)
}

/// `word` characters for an octet, by table (see [`is_word_char`]).
pub const fn is_word_byte(b: u8) -> bool {
    WORD[b as usize]
}

static WORD: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        t[i] = TOKEN[i]
            || matches!(
                c,
                b'(' | b')'
                    | b'<'
                    | b'>'
                    | b':'
                    | b'\\'
                    | b'"'
                    | b'/'
                    | b'['
                    | b']'
                    | b'?'
                    | b'{'
                    | b'}'
            );
        i += 1;
    }
    t
};

/// Position of `c` in `b`: a plain loop for the short strings of URIs and addresses, where
/// `memchr`'s set-up costs more than it saves, `memchr` beyond.
pub fn find_byte(c: u8, b: &[u8]) -> Option<usize> {
    if b.len() < 48 {
        b.iter().position(|x| *x == c)
    } else {
        memchr::memchr(c, b)
    }
}

/// Skips optional white space (`SWS`).
pub fn sws(i: &str) -> IResult<&str, &str> {
    let n = i.bytes().take_while(|b| *b == b' ' || *b == b'\t').count();
    Ok((&i[n..], &i[..n]))
}

/// A `token` (scanned as octets: tokens are ASCII).
pub fn token(i: &str) -> IResult<&str, &str> {
    let n = i.bytes().take_while(|b| is_token_byte(*b)).count();
    if n == 0 {
        return Err(nom::Err::Error(nom::error::Error::new(
            i,
            nom::error::ErrorKind::TakeWhile1,
        )));
    }
    Ok((&i[n..], &i[..n]))
}

/// `SWS c SWS`: a separator character with optional white space around it
/// (SEMI, COMMA, EQUAL, SLASH, COLON of RFC 3261 §25.1).
pub fn sep(c: &'static str) -> impl Fn(&str) -> IResult<&str, &str> {
    move |i| {
        let (rest, _) = sws(i)?;
        // `tag(c)`, spelled out: this runs around every `;` and `=` of every parameter.
        let Some(after) = rest.strip_prefix(c) else {
            return Err(nom::Err::Error(nom::error::Error::new(
                rest,
                nom::error::ErrorKind::Tag,
            )));
        };
        let (after, _) = sws(after)?;
        Ok((after, &rest[..c.len()]))
    }
}

/// A `quoted-string` including its quotes; escapes (`\` + any octet but CR/LF) are kept.
/// Scanned as octets: every delimiter is ASCII, so cuts fall on character boundaries.
pub fn quoted_string(i: &str) -> IResult<&str, &str> {
    let err = || nom::Err::Error(nom::error::Error::new(i, nom::error::ErrorKind::Char));
    let b = i.as_bytes();
    if b.first() != Some(&b'"') {
        return Err(err());
    }
    let mut k = 1;
    while let Some(n) = b[k..].iter().position(|c| QUOTED_STOP[*c as usize]) {
        k += n;
        match b[k] {
            b'"' => return Ok((&i[k + 1..], &i[..k + 1])),
            b'\\' => match b.get(k + 1) {
                Some(b'\r' | b'\n') | None => return Err(err()),
                // The escaped character may be any (multi-octet) character.
                Some(_) => {
                    k += 1;
                    while k < b.len() && !i.is_char_boundary(k + 1) {
                        k += 1;
                    }
                    k += 1;
                }
            },
            _ => return Err(err()),
        }
    }
    Err(err())
}

const fn quoted_stop(c: u8) -> bool {
    matches!(c, b'"' | b'\\' | b'\r' | b'\n')
}

/// Octets that end a run inside a quoted string.
static QUOTED_STOP: [bool; 256] = byte_table!(quoted_stop);

const fn alnum(c: u8) -> bool {
    c.is_ascii_alphanumeric()
}

static ALPHANUMERIC: [bool; 256] = byte_table!(alnum);

/// Removes the quotes and `\` escapes of a quoted string (`"a\"b"` → `a"b`).
pub fn unquote(q: &str) -> String {
    let inner = q
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(q);
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Quotes `s` as a quoted-string, escaping `"` and `\`.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// `token` or `quoted-string`, as a generic parameter value may be; also accepts the
/// characters of a `host` (IPv6 references) so `received=[::1]` parses.
pub fn gen_value(i: &str) -> IResult<&str, &str> {
    if i.starts_with('"') {
        quoted_string(i)
    } else if i.starts_with('[') {
        recognize(delimited(
            tag("["),
            take_while1(|c: char| c.is_ascii_hexdigit() || c == ':' || c == '.'),
            tag("]"),
        ))
        .parse(i)
    } else {
        token(i)
    }
}

/// `host [":" port]`, returning the host and the port text.
pub fn host_port(i: &str) -> IResult<&str, (&str, Option<&str>)> {
    let (rest, h) = host(i)?;
    let Some(after) = rest.strip_prefix(':') else {
        return Ok((rest, (h, None)));
    };
    let n = after.bytes().take_while(u8::is_ascii_digit).count();
    if n == 0 {
        // `:` without digits is not a port: leave it for the caller, as `opt` did.
        return Ok((rest, (h, None)));
    }
    Ok((&after[n..], (h, Some(&after[..n]))))
}

/// `host`: a hostname, an IPv4 address or an `[IPv6]` reference (brackets kept).
pub fn host(i: &str) -> IResult<&str, &str> {
    let fail = || {
        Err(nom::Err::Error(nom::error::Error::new(
            i,
            nom::error::ErrorKind::Verify,
        )))
    };
    let b = i.as_bytes();
    if b.first() == Some(&b'[') {
        let Some(close) = memchr::memchr(b']', b) else {
            return fail();
        };
        if i[1..close].parse::<std::net::Ipv6Addr>().is_err() {
            return fail();
        }
        return Ok((&i[close + 1..], &i[..=close]));
    }
    // One pass over the octets: labels of alphanumerics and '-', never starting or
    // ending with '-', separated by single dots (a trailing dot is allowed). Runs of
    // alphanumerics are skipped in a tight loop; `prev` is the class of the last octet.
    const ALNUM: u8 = 1;
    const DASH: u8 = 2;
    const DOT: u8 = 3;
    let mut end = 0;
    let mut prev = DOT;
    loop {
        let run = b[end..]
            .iter()
            .take_while(|c| ALPHANUMERIC[**c as usize])
            .count();
        if run > 0 {
            end += run;
            prev = ALNUM;
        }
        match b.get(end) {
            Some(b'.') if prev != ALNUM => return fail(),
            Some(b'.') => prev = DOT,
            Some(b'-') if prev == DOT => return fail(),
            Some(b'-') => prev = DASH,
            _ => break,
        }
        end += 1;
    }
    if end == 0 || prev == DASH {
        return fail();
    }
    Ok((&i[end..], &i[..end]))
}

/// Checks that every `%` in `s` starts a valid `%HH` escape.
pub fn escapes_valid(s: &str) -> bool {
    let b = s.as_bytes();
    if !b.contains(&b'%') {
        return true;
    }
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if i + 2 >= b.len() || !(b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit()) {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

/// Decodes `%HH` escapes to octets (`%00` becomes a NUL octet: nothing is cut short).
pub fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |x: u8| (x as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// Turns a sub-slice of `src` back into a zero-copy `ByteString`.
pub fn sub(src: &ByteString, part: &str) -> ByteString {
    if part.is_empty() {
        return ByteString::new();
    }
    let (start, end) = (src.as_ptr() as usize, src.as_ptr() as usize + src.len());
    let p = part.as_ptr() as usize;
    if p >= start && p + part.len() <= end {
        src.slice_ref(part)
    } else {
        // Not a slice of `src` (a caller's own string): copy rather than panic.
        ByteString::from(part)
    }
}

/// Equality of short octet strings as a plain loop (`==` on slices calls `memcmp`, whose
/// call costs more than comparing a few octets).
pub fn short_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// Like [`sub`], but a part spelled exactly like one of `known` costs no reference to the
/// buffer (protocol names, versions, transports, auth schemes).
pub fn sub_known(src: &ByteString, part: &str, known: &[&'static str]) -> ByteString {
    match known
        .iter()
        .find(|k| short_eq(k.as_bytes(), part.as_bytes()))
    {
        Some(k) => ByteString::from_static(k),
        None => sub(src, part),
    }
}

/// Runs `p` over the whole of `i` (white space allowed at both ends).
pub fn complete<'a, O>(i: &'a str, mut p: impl FnMut(&'a str) -> IResult<&'a str, O>) -> Option<O> {
    let (rest, _) = sws(i).ok()?;
    let (rest, out) = p(rest).ok()?;
    let (rest, _) = sws(rest).ok()?;
    rest.is_empty().then_some(out)
}

/// Splits a header value at top-level commas: commas inside quoted strings and `<...>`
/// do not split. Empty elements are returned too, so callers can reject them.
pub fn split_commas(value: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(value);
    std::iter::from_fn(move || {
        let s = rest?;
        let b = s.as_bytes();
        if memchr::memchr(b',', b).is_none() {
            // No comma at all: one element, whatever the quotes and brackets hold.
            rest = None;
            return Some(s.trim_ws());
        }
        let mut in_quote = false;
        let mut in_angle = false;
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'\\' if in_quote => i += 1,
                b'"' if !in_angle => in_quote = !in_quote,
                b'<' if !in_quote => in_angle = true,
                b'>' if !in_quote => in_angle = false,
                b',' if !in_quote && !in_angle => {
                    rest = Some(&s[i + 1..]);
                    return Some(s[..i].trim_ws());
                }
                _ => {}
            }
            i += 1;
        }
        rest = None;
        Some(s.trim_ws())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_strings() {
        assert_eq!(quoted_string(r#""a\"b" x"#).unwrap(), (" x", r#""a\"b""#));
        assert!(quoted_string(r#""open"#).is_err());
        assert!(quoted_string("\"a\\").is_err());
        assert!(quoted_string("\"a\\\r\"").is_err());
        assert!(quoted_string("\"a\nb\"").is_err());
        assert_eq!(quoted_string("\"\\é\"x").unwrap(), ("x", "\"\\é\""));
        assert_eq!(quoted_string("\"é\"").unwrap(), ("", "\"é\""));
        assert_eq!(unquote(r#""J Rosenberg \\\"""#), r#"J Rosenberg \""#);
        assert_eq!(quote(r#"a"b\"#), r#""a\"b\\""#);
    }

    #[test]
    fn escapes() {
        assert!(escapes_valid("null-%00-null"));
        assert!(!escapes_valid("%Z%45"));
        assert!(!escapes_valid("abc%4"));
        assert!(!escapes_valid("%"));
        assert_eq!(unescape("null-%00-null"), b"null-\0-null".to_vec());
        assert_eq!(unescape("value%41"), b"valueA".to_vec());
    }

    #[test]
    fn comma_split_respects_quotes_and_angles() {
        let v: Vec<_> = split_commas(r#""a,b" <sip:x@y;p=1,2>;q=1, <sip:z@w>"#).collect();
        assert_eq!(v, vec![r#""a,b" <sip:x@y;p=1,2>;q=1"#, "<sip:z@w>"]);
        let v: Vec<_> = split_commas(";;,;,,").collect();
        assert_eq!(v, vec![";;", ";", "", ""]);
    }

    #[test]
    fn byte_classes_match_char_classes() {
        for b in 0..=255u8 {
            let c = b as char;
            assert_eq!(is_word_byte(b), b.is_ascii() && is_word_char(c), "{b}");
        }
        assert_eq!(" \t a b\t ".trim_ws(), "a b");
        assert_eq!(" é ".trim_ws_start(), "é ");
        assert_eq!(" é\t".trim_ws_end(), " é");
        assert!(is_token_str("REGISTER") && !is_token_str("") && !is_token_str("a b"));
    }

    #[test]
    fn hosts() {
        assert_eq!(host("[2001:db8::10]:5060").unwrap().1, "[2001:db8::10]");
        assert!(host("[zz::1]").is_err());
        assert_eq!(host("example.com;x").unwrap(), (";x", "example.com"));
        assert!(host("-bad.com").is_err());
        for bad in [".a", "a..b", "a.-b", "a-.b", "a-", "", "-", ".", ";a"] {
            assert!(host(bad).is_err(), "{bad}");
        }
        for (good, h) in [
            ("a.", "a."),
            ("a--b.c;x", "a--b.c"),
            ("1.2.3.4:5", "1.2.3.4"),
            ("x y", "x"),
        ] {
            assert_eq!(host(good).unwrap().1, h, "{good}");
        }
        assert_eq!(
            host_port("a.b:5060;x").unwrap(),
            (";x", ("a.b", Some("5060")))
        );
        assert_eq!(host_port("a.b:;x").unwrap(), (":;x", ("a.b", None)));
        assert_eq!(host_port("a.b").unwrap(), ("", ("a.b", None)));
    }
}
