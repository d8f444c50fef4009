//! A borrowed parse of a body-less request into the fields the registrar reads: every
//! field a `&str` of the datagram, nothing allocated, nothing reference-counted.
//!
//! Written to measure what such a design reaches on a given machine, not to serve: it
//! takes the common shapes only and answers `None` for anything else (folded lines, a
//! URI password or `?headers`, a Via field with several values, a comma-separated
//! Contact list, a repeated single-valued header, Require), where a real parser would
//! fall back to its general path. What it takes, it validates as sipreg does; `main.rs`
//! checks that on thousands of damaged messages.
//!
//! The design the measurement stands for: one pass over the section for the line ends
//! and the ASCII check (SSE2, 64 octets per branch), one class table for every character
//! set of the grammar, each field typed in one walk, and views instead of values.
use core::arch::x86_64::*;

use sipreg::sip::params::is_uri_param_byte;
use sipreg::sip::text::{escapes_valid, is_token_byte, is_word_byte};
use sipreg::sip::uri::is_user_byte;

// Character classes of RFC 3261 §25.1, one bit each in `CLASS`.
const TOK: u8 = 1;
const USER: u8 = 2;
const ALNUM: u8 = 4;
const PCHAR: u8 = 8;
const WORD: u8 = 16;
const DIGIT: u8 = 64;

/// The classes as one table, built from sipreg's own character sets.
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        let mut v = 0;
        if is_token_byte(c) {
            v |= TOK;
        }
        if is_user_byte(c) {
            v |= USER;
        }
        if c.is_ascii_alphanumeric() {
            v |= ALNUM;
        }
        if is_uri_param_byte(c) {
            v |= PCHAR;
        }
        if is_word_byte(c) {
            v |= WORD;
        }
        if c.is_ascii_digit() {
            v |= DIGIT;
        }
        t[i] = v;
        i += 1;
    }
    t
};

/// End of the run of octets in `class` from `i`.
#[inline(always)]
fn run(b: &[u8], mut i: usize, class: u8) -> usize {
    while i < b.len() && CLASS[b[i] as usize] & class != 0 {
        i += 1;
    }
    i
}
/// End of the white space (SP, HTAB) from `i`.
#[inline(always)]
fn ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
        i += 1;
    }
    i
}
/// `s` without white space at either end.
fn trim(s: &str) -> &str {
    let b = s.as_bytes();
    let a = ws(b, 0);
    let mut e = b.len();
    while e > a && matches!(b[e - 1], b' ' | b'\t') {
        e -= 1;
    }
    // SAFETY: both cuts are next to ASCII octets (or at the ends), so on char boundaries.
    unsafe { s.get_unchecked(a..e) }
}

/// Position of `c` in `b`: a plain loop, cheaper than `memchr`'s set-up on short strings.
fn find(c: u8, b: &[u8]) -> Option<usize> {
    b.iter().position(|x| *x == c)
}

#[derive(Debug, Clone, Copy, Default)]
pub struct UriRef<'a> {
    pub secure: bool,
    pub user: Option<&'a str>,
    pub host: &'a str,
    pub port: Option<u16>,
    pub params: &'a str,
}
#[derive(Debug, Clone, Copy, Default)]
pub struct NameAddrRef<'a> {
    pub display: Option<&'a str>,
    pub uri: UriRef<'a>,
    pub params: &'a str,
}
#[derive(Debug, Clone, Copy, Default)]
pub struct ViaRef<'a> {
    pub transport: &'a str,
    pub host: &'a str,
    pub port: Option<u16>,
    pub params: &'a str,
}
#[derive(Debug, Default)]
pub struct View<'a> {
    pub method: &'a str,
    pub uri: UriRef<'a>,
    pub via: ViaRef<'a>,
    pub from: NameAddrRef<'a>,
    pub to: NameAddrRef<'a>,
    pub call_id: &'a str,
    pub cseq: u32,
    pub max_forwards: Option<u32>,
    pub contacts: [NameAddrRef<'a>; 4],
    pub n_contacts: u8,
    pub expires: Option<u32>,
    pub auth_scheme: &'a str,
    pub token: &'a str,
}

/// `host [":" port]` from `i`: a name or IPv4 address (labels of alphanumerics and
/// inner dashes) or an `[IPv6]` reference; returns where it ends.
fn host_port(s: &str, mut i: usize) -> Option<(&str, Option<u16>, usize)> {
    let b = s.as_bytes();
    let h0 = i;
    if b.get(i) == Some(&b'[') {
        let close = i + find(b']', &b[i..])?;
        s[i + 1..close].parse::<std::net::Ipv6Addr>().ok()?;
        i = close + 1;
    } else {
        // labels: alnum runs separated by single '.', '-' inside labels
        let mut prev_alnum = false;
        loop {
            let r = run(b, i, ALNUM);
            if r > i {
                prev_alnum = true;
                i = r;
            }
            match b.get(i) {
                Some(b'.') if prev_alnum => prev_alnum = false,
                Some(b'-') if i > h0 && (prev_alnum || b[i - 1] == b'-') => prev_alnum = false,
                _ => break,
            }
            i += 1;
        }
        if i == h0 || b[i - 1] == b'-' || (b[i - 1] == b'.' && i - h0 == 1) {
            return None;
        }
    }
    let host = &s[h0..i];
    let mut port = None;
    if b.get(i) == Some(&b':') && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
        i += 1;
        let mut v: u32 = 0;
        let p0 = i;
        while i < b.len() && b[i].is_ascii_digit() {
            v = v * 10 + (b[i] - b'0') as u32;
            i += 1;
            if i - p0 > 5 {
                return None;
            }
        }
        port = Some(u16::try_from(v).ok()?);
    }
    Some((host, port, i))
}

/// The whole of `s` as a `sip:`/`sips:` URI without password or `?headers`.
pub fn uri(s: &str) -> Option<UriRef<'_>> {
    let b = s.as_bytes();
    let (secure, mut i) = if b.len() > 4 && b[..4].eq_ignore_ascii_case(b"sip:") {
        (false, 4)
    } else if b.len() > 5 && b[..5].eq_ignore_ascii_case(b"sips:") {
        (true, 5)
    } else {
        return None;
    };
    let start = i;
    i = run(b, i, USER);
    let user = match b.get(i) {
        Some(b'@') if i > start => {
            let u = &s[start..i];
            // The '%' test inline: most user parts have none, and the call is not
            // inlined across crates.
            if u.contains('%') && !escapes_valid(u) {
                return None;
            }
            i += 1;
            Some(u)
        }
        Some(b'@') => return None,
        Some(b':') if find(b'@', &b[i..]).is_some() => return None, // password: slow path
        _ => {
            i = start;
            None
        }
    };
    let (host, port, mut i) = host_port(s, i)?;
    let p0 = i;
    while b.get(i) == Some(&b';') {
        let n = run(b, i + 1, PCHAR);
        if n == i + 1 {
            return None;
        }
        i = n;
        if b.get(i) == Some(&b'=') {
            let n = run(b, i + 1, PCHAR);
            if n == i + 1 {
                return None;
            }
            i = n;
        }
    }
    let params = &s[p0..i];
    if i != b.len() {
        return None; // '?headers' etc.: slow path
    }
    if params.contains('%') && !escapes_valid(params) {
        return None;
    }
    Some(UriRef {
        secure,
        user,
        host,
        port,
        params,
    })
}

/// End of the quoted string that starts at `i` (escapes stepped over).
fn quoted_end(b: &[u8], mut i: usize) -> Option<usize> {
    // b[i] == '"'
    i += 1;
    loop {
        let n = memchr::memchr3(b'"', b'\\', b'\r', &b[i..])?;
        i += n;
        match b[i] {
            b'"' => return Some(i + 1),
            b'\\' if i + 1 < b.len() && b[i + 1].is_ascii() => i += 2,
            _ => return None,
        }
    }
}

/// `*(SWS ";" SWS token [SWS "=" SWS (token / quoted / [v6])])`; returns the end.
fn header_params(b: &[u8], mut done: usize) -> Option<usize> {
    loop {
        let mut k = ws(b, done);
        if b.get(k) != Some(&b';') {
            return Some(done);
        }
        k = ws(b, k + 1);
        let n = run(b, k, TOK);
        if n == k {
            return None;
        }
        let eq = ws(b, n);
        if b.get(eq) != Some(&b'=') {
            done = n;
            continue;
        }
        let v = ws(b, eq + 1);
        done = match b.get(v) {
            Some(b'"') => quoted_end(b, v)?,
            Some(b'[') => {
                let close = v + find(b']', &b[v..])?;
                let inner = &b[v + 1..close];
                if inner.is_empty()
                    || !inner
                        .iter()
                        .all(|c| c.is_ascii_hexdigit() || matches!(c, b':' | b'.'))
                {
                    return None;
                }
                close + 1
            }
            _ => {
                let e = run(b, v, TOK);
                if e == v {
                    return None;
                }
                e
            }
        };
    }
}

/// `[display] <URI> *(;param)`: the name-addr form only.
pub fn name_addr(s: &str) -> Option<NameAddrRef<'_>> {
    let s = trim(s);
    let b = s.as_bytes();
    let (display, lt) = match b.first()? {
        b'<' => (None, 0),
        b'"' => {
            let e = quoted_end(b, 0)?;
            let lt = ws(b, e);
            if b.get(lt) != Some(&b'<') {
                return None;
            }
            (Some(&s[..e]), lt)
        }
        _ => {
            let lt = memchr::memchr(b'<', b)?; // addr-spec form: slow path
            let d = trim(&s[..lt]);
            if !d
                .bytes()
                .all(|c| CLASS[c as usize] & TOK != 0 || c == b' ' || c == b'\t')
            {
                return None;
            }
            ((!d.is_empty()).then_some(d), lt)
        }
    };
    let gt = lt + 1 + memchr::memchr(b'>', &b[lt + 1..])?;
    let u = uri(&s[lt + 1..gt])?;
    let end = header_params(b, gt + 1)?;
    if ws(b, end) != b.len() {
        return None;
    }
    Some(NameAddrRef {
        display,
        uri: u,
        params: &s[gt + 1..end],
    })
}

/// One via-parm spelled `SIP/2.0/transport sent-by *(;param)`.
pub fn via(s: &str) -> Option<ViaRef<'_>> {
    let b = s.as_bytes();
    if b.len() < 9 || !b[..8].eq_ignore_ascii_case(b"SIP/2.0/") {
        return None;
    }
    let t = run(b, 8, TOK);
    if t == 8 {
        return None;
    }
    let h = ws(b, t);
    if h == t {
        return None;
    }
    let (host, port, i) = host_port(s, h)?;
    let end = header_params(b, i)?;
    if ws(b, end) != b.len() {
        return None; // several vias in one field: slow path
    }
    Some(ViaRef {
        transport: &s[8..t],
        host,
        port,
        params: &s[i..end],
    })
}

/// A decimal `u32`.
fn digits(s: &str) -> Option<u32> {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 10 {
        return None;
    }
    let mut v: u64 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as u64;
    }
    u32::try_from(v).ok()
}

/// `b64token *"="` (RFC 6750), 64 octets per branch.
fn is_token68(b: &[u8]) -> bool {
    let body = {
        let mut e = b.len();
        while e > 0 && b[e - 1] == b'=' {
            e -= 1;
        }
        &b[..e]
    };
    if body.is_empty() {
        return false;
    }
    if body.len() < 16 {
        return body.iter().all(|&c| {
            c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        });
    }
    // SAFETY: SSE2 is part of x86-64; every load reads 16 octets inside `body`.
    unsafe {
        let lo = _mm_set1_epi8(b'-' as i8);
        let span_dig = _mm_set1_epi8((b'9' - b'-') as i8);
        let a = _mm_set1_epi8(b'a' as i8);
        let z = _mm_set1_epi8(25);
        let x20 = _mm_set1_epi8(0x20);
        let plus = _mm_set1_epi8(b'+' as i8);
        let us = _mm_set1_epi8(b'_' as i8);
        let tl = _mm_set1_epi8(b'~' as i8);
        let ok = |at: usize| {
            let v = _mm_loadu_si128(body.as_ptr().add(at) as *const __m128i);
            // '-' ..= '9' covers - . / and the digits; OR 0x20 folds A-Z onto a-z.
            let d = _mm_sub_epi8(v, lo);
            let okd = _mm_cmpeq_epi8(_mm_min_epu8(d, span_dig), d);
            let l = _mm_sub_epi8(_mm_or_si128(v, x20), a);
            let oka = _mm_cmpeq_epi8(_mm_min_epu8(l, z), l);
            let oks = _mm_or_si128(
                _mm_cmpeq_epi8(v, plus),
                _mm_or_si128(_mm_cmpeq_epi8(v, us), _mm_cmpeq_epi8(v, tl)),
            );
            _mm_or_si128(_mm_or_si128(okd, oka), oks)
        };
        // Four blocks per branch; the last block overlaps the one before it.
        let mut i = 0;
        while i + 64 <= body.len() {
            let all = _mm_and_si128(
                _mm_and_si128(ok(i), ok(i + 16)),
                _mm_and_si128(ok(i + 32), ok(i + 48)),
            );
            if _mm_movemask_epi8(all) != 0xFFFF {
                return false;
            }
            i += 64;
        }
        while i + 16 <= body.len() {
            if _mm_movemask_epi8(ok(i)) != 0xFFFF {
                return false;
            }
            i += 16;
        }
        _mm_movemask_epi8(ok(body.len() - 16)) == 0xFFFF
    }
}

/// The header names this parser types (full and compact forms).
#[derive(Clone, Copy, PartialEq)]
enum H {
    Via,
    From,
    To,
    CallId,
    CSeq,
    MaxForwards,
    Contact,
    Expires,
    ContentLength,
    Authorization,
    Require,
    Other,
}

/// The header a (non-empty) name stands for, compared without case. Not sipreg's
/// `HeaderName::from_name`: this one knows a dozen names only and costs some 650 fewer
/// instructions per message, which is the point of the measurement.
#[inline(always)]
fn name_of(n: &[u8]) -> H {
    let eq = |c: &[u8]| n.eq_ignore_ascii_case(c);
    match (n.len(), n[0] | 0x20) {
        (1, c) => match c {
            b'v' => H::Via,
            b'f' => H::From,
            b't' => H::To,
            b'i' => H::CallId,
            b'm' => H::Contact,
            b'l' => H::ContentLength,
            _ => H::Other,
        },
        (3, b'v') if eq(b"via") => H::Via,
        (4, b'f') if eq(b"from") => H::From,
        (2, b't') if eq(b"to") => H::To,
        (7, b'c') if eq(b"call-id") => H::CallId,
        (4, b'c') if eq(b"cseq") => H::CSeq,
        (12, b'm') if eq(b"max-forwards") => H::MaxForwards,
        (7, b'c') if eq(b"contact") => H::Contact,
        (7, b'e') if eq(b"expires") => H::Expires,
        (14, b'c') if eq(b"content-length") => H::ContentLength,
        (13, b'a') if eq(b"authorization") => H::Authorization,
        (7, b'r') if eq(b"require") => H::Require,
        _ => H::Other,
    }
}

/// Line ends (offsets of each CR of a CRLF) of `b`; `None` on a bare CR or LF, an octet
/// that is not ASCII, or more than 64 lines.
fn line_ends(b: &[u8], out: &mut [u32; 64]) -> Option<usize> {
    let mut n = 0;
    let mut i = 0;
    let mut carry_cr = 0u64; // CR at the last octet of the previous block
    let mut high = 0i32;
    // SAFETY: SSE2 is part of x86-64; every load reads 16 octets inside `b`.
    unsafe {
        let cr = _mm_set1_epi8(b'\r' as i8);
        let lf = _mm_set1_epi8(b'\n' as i8);
        let masks = |at: usize| {
            let v = _mm_loadu_si128(b.as_ptr().add(at) as *const __m128i);
            (
                _mm_movemask_epi8(_mm_cmpeq_epi8(v, cr)) as u64,
                _mm_movemask_epi8(_mm_cmpeq_epi8(v, lf)) as u64,
                _mm_movemask_epi8(v),
            )
        };
        // 64 octets per step: one check and one branch per step.
        while i + 16 <= b.len() {
            let (mc, ml, width) = if i + 64 <= b.len() {
                let (c0, l0, h0) = masks(i);
                let (c1, l1, h1) = masks(i + 16);
                let (c2, l2, h2) = masks(i + 32);
                let (c3, l3, h3) = masks(i + 48);
                high |= h0 | h1 | h2 | h3;
                (
                    c0 | c1 << 16 | c2 << 32 | c3 << 48,
                    l0 | l1 << 16 | l2 << 32 | l3 << 48,
                    64,
                )
            } else {
                let (c, l, h) = masks(i);
                high |= h;
                (c, l, 16)
            };
            let keep = if width == 64 { u64::MAX } else { 0xFFFF };
            if ((mc << 1) | carry_cr) & keep != ml {
                return None;
            }
            carry_cr = mc >> (width - 1);
            let mut m = mc;
            while m != 0 {
                *out.get_mut(n)? = (i + m.trailing_zeros() as usize) as u32;
                n += 1;
                m &= m - 1;
            }
            i += width;
        }
    }
    let mut prev_cr = carry_cr == 1;
    while i < b.len() {
        let c = b[i];
        high |= (c >> 7) as i32;
        if (c == b'\n') != prev_cr {
            return None;
        }
        prev_cr = c == b'\r';
        if prev_cr {
            *out.get_mut(n)? = i as u32;
            n += 1;
        }
        i += 1;
    }
    if prev_cr || high != 0 {
        return None;
    }
    Some(n)
}

/// A whole datagram, body-less, ending in CRLFCRLF.
pub fn parse(data: &[u8]) -> Option<View<'_>> {
    let b = data;
    if !b.ends_with(b"\r\n\r\n") {
        return None;
    }
    let mut ends = [0u32; 64];
    let n = line_ends(b, &mut ends)?; // also: every octet ASCII
    // SAFETY: line_ends checked that every octet is ASCII.
    let text = unsafe { std::str::from_utf8_unchecked(b) };
    // request line
    let first = &text[..ends[0] as usize];
    let fb = first.as_bytes();
    let m = run(fb, 0, TOK);
    if m == 0 || fb.get(m) != Some(&b' ') || !fb.ends_with(b" SIP/2.0") || fb.len() < m + 10 {
        return None;
    }
    let mut v = View {
        method: &first[..m],
        ..Default::default()
    };
    v.uri = uri(&first[m + 1..fb.len() - 8])?;
    let mut seen = 0u32;
    let mut cseq_method = "";
    let mut clen = None;
    let mut start = ends[0] as usize + 2;
    for &e in &ends[1..n - 1] {
        let e = e as usize;
        let line = &text[start..e];
        start = e + 2;
        let lb = line.as_bytes();
        let nm = run(lb, 0, TOK);
        if nm == 0 {
            return None; // folding or bad name: slow path
        }
        let colon = ws(lb, nm);
        if lb.get(colon) != Some(&b':') {
            return None;
        }
        let h = name_of(&lb[..nm]);
        let value = trim(&line[colon + 1..]);
        let bit = 1u32 << (h as u32);
        let again = seen & bit != 0;
        seen |= bit;
        match h {
            H::Via => {
                let x = via(value)?;
                if !again {
                    v.via = x;
                }
            }
            H::From if !again => v.from = name_addr(value)?,
            H::To if !again => v.to = name_addr(value)?,
            H::CallId if !again => {
                let vb = value.as_bytes();
                let w = run(vb, 0, WORD);
                let w = if w > 0 && vb.get(w) == Some(&b'@') {
                    run(vb, w + 1, WORD)
                } else {
                    w
                };
                if w == 0 || w != vb.len() || vb.last() == Some(&b'@') {
                    return None;
                }
                v.call_id = value;
            }
            H::CSeq if !again => {
                let vb = value.as_bytes();
                let d = run(vb, 0, DIGIT);
                let s = ws(vb, d);
                if s == d || run(vb, s, TOK) != vb.len() || s == vb.len() {
                    return None;
                }
                v.cseq = digits(&value[..d])?;
                cseq_method = &value[s..];
            }
            H::MaxForwards if !again => v.max_forwards = Some(digits(value)?),
            // Like sipreg, Contact is typed for the methods that use it.
            H::Contact if !matches!(v.method, "REGISTER" | "SUBSCRIBE") => {}
            H::Contact => {
                if value.as_bytes().contains(&b',') || v.n_contacts == 4 {
                    return None; // a list to split: not a shape this parser takes
                }
                v.contacts[v.n_contacts as usize] = name_addr(value)?;
                v.n_contacts += 1;
            }
            H::Expires if !again => v.expires = Some(digits(value)?),
            H::ContentLength if !again => clen = Some(digits(value)?),
            H::Authorization if !again => {
                let vb = value.as_bytes();
                let s = run(vb, 0, TOK);
                let t = ws(vb, s);
                // Digest always carries auth-params (sipreg's rule too).
                if s == 0
                    || t == s
                    || value[..s].eq_ignore_ascii_case("Digest")
                    || !is_token68(&vb[t..])
                {
                    return None;
                }
                v.auth_scheme = &value[..s];
                v.token = &value[t..];
            }
            H::Require => return None,
            H::Other => {}
            _ => return None, // a repeated singleton: the slow path names the error
        }
    }
    let need = [H::Via, H::From, H::To, H::CallId, H::CSeq];
    if need.iter().any(|h| seen & (1 << (*h as u32)) == 0)
        || cseq_method != v.method
        || clen.is_some_and(|c| c != 0)
    {
        return None;
    }
    Some(v)
}

/// `name` in a params slice (`;a=b;c`), bare value.
pub fn param<'a>(p: &'a str, name: &str) -> Option<&'a str> {
    let b = p.as_bytes();
    let mut i = 0;
    while i < b.len() {
        i = ws(b, i);
        if b.get(i) != Some(&b';') {
            return None;
        }
        i = ws(b, i + 1);
        let n = run(b, i, TOK);
        let nm = &p[i..n];
        i = ws(b, n);
        let mut val = None;
        if b.get(i) == Some(&b'=') {
            i = ws(b, i + 1);
            let e = if b.get(i) == Some(&b'"') {
                quoted_end(b, i).unwrap_or(b.len())
            } else {
                run(b, i, TOK | PCHAR)
            };
            val = Some(&p[i..e]);
            i = e;
        }
        if nm.eq_ignore_ascii_case(name) {
            return val;
        }
    }
    None
}
