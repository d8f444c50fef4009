//! Parameter lists: `;name[=value]` as they follow URIs and header values.

use std::fmt;

use bytestring::ByteString;
use nom::IResult;

use super::text::{is_token_byte, sub};

/// One parameter; `value` is `None` for a flag such as `;lr` and keeps quotes when quoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub name: ByteString,
    pub value: Option<ByteString>,
}

/// A borrowed view of one parameter of a [`Params`] list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamRef<'a> {
    pub name: &'a str,
    /// `None` for a flag; quoted values keep their quotes.
    pub value: Option<&'a str>,
}

/// An ordered parameter list. Names compare case-insensitively; order and spelling are kept.
///
/// The list is kept as one validated slice of the received text (`;name=value` pairs,
/// white space around `;` and `=` as received for header parameters) and searched on
/// access: parsing a message then takes one reference to the buffer per list instead of
/// two per parameter. Equality compares the parameters, not the white space.
#[derive(Clone, Default)]
pub struct Params {
    raw: ByteString,
}

impl Params {
    pub fn new() -> Params {
        Params::default()
    }

    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The list as kept: validated text from its first `;`.
    pub(crate) fn raw(&self) -> &str {
        &self.raw
    }

    pub fn iter(&self) -> ParamIter<'_> {
        ParamIter {
            s: &self.raw,
            pos: 0,
        }
    }

    /// The parameters as owned values.
    pub fn to_vec(&self) -> Vec<Param> {
        self.iter()
            .map(|p| Param {
                name: ByteString::from(p.name),
                value: p.value.map(ByteString::from),
            })
            .collect()
    }

    fn find(&self, name: &str) -> Option<ParamRef<'_>> {
        // Fast path: the first parameter spelled exactly `name` (`;branch=` of a Via,
        // `;tag=` of a From), with a bare value or none. Anything else takes the full walk.
        let b = self.raw.as_bytes();
        let n = name.len();
        if b.len() > n && b[0] == b';' && super::text::short_eq(&b[1..=n], name.as_bytes()) {
            match b.get(n + 1) {
                None | Some(b';') => {
                    return Some(ParamRef {
                        name: &self.raw[1..=n],
                        value: None,
                    });
                }
                Some(b'=')
                    if b.get(n + 2)
                        .is_some_and(|c| !matches!(c, b'"' | b' ' | b'\t')) =>
                {
                    let end = run_until(b, n + 2, |c| VALUE_END[c as usize]);
                    return Some(ParamRef {
                        name: &self.raw[1..=n],
                        value: Some(&self.raw[n + 2..end]),
                    });
                }
                _ => {}
            }
        }
        // A name whose first letter occurs nowhere in the list cannot be in it: one vector
        // search instead of the walk (`;q=` on a Contact that has none, say).
        if let Some(first) = name.as_bytes().first() {
            let (lower, upper) = (first.to_ascii_lowercase(), first.to_ascii_uppercase());
            memchr::memchr2(lower, upper, b)?;
        }
        self.iter()
            .find(|p| p.name.len() == name.len() && p.name.eq_ignore_ascii_case(name))
    }

    /// `Some(Some(v))` for `name=v`, `Some(None)` for a bare `name`, `None` when absent.
    pub fn get(&self, name: &str) -> Option<Option<&str>> {
        self.find(name).map(|p| p.value)
    }

    /// The value of `name`, when present with one.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.find(name).and_then(|p| p.value)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.find(name).is_some()
    }

    /// Sets `name` (replacing an existing value) or appends it.
    pub fn set(&mut self, name: &str, value: Option<&str>) {
        let mut v = self.to_vec();
        let value = value.map(ByteString::from);
        match v.iter_mut().find(|p| p.name.eq_ignore_ascii_case(name)) {
            Some(p) => p.value = value,
            None => v.push(Param {
                name: ByteString::from(name),
                value,
            }),
        }
        *self = Params::from(v);
    }

    pub fn remove(&mut self, name: &str) {
        if self.contains(name) {
            let mut v = self.to_vec();
            v.retain(|p| !p.name.eq_ignore_ascii_case(name));
            *self = Params::from(v);
        }
    }
}

impl From<Vec<Param>> for Params {
    /// Builds a list from parameters given one by one (printed as `;name=value`).
    fn from(v: Vec<Param>) -> Params {
        v.into_iter().collect()
    }
}

impl FromIterator<Param> for Params {
    fn from_iter<I: IntoIterator<Item = Param>>(iter: I) -> Params {
        let mut raw = String::new();
        for p in iter {
            raw.push(';');
            raw.push_str(&p.name);
            if let Some(v) = &p.value {
                raw.push('=');
                raw.push_str(v);
            }
        }
        Params {
            raw: ByteString::from(raw),
        }
    }
}

impl PartialEq for Params {
    fn eq(&self, other: &Params) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Params {}

impl fmt::Debug for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Walks a validated parameter list: `SWS ";" SWS name [SWS "=" SWS value]`, where a
/// value is a quoted string (escapes kept) or runs to the next `;` or white space.
pub struct ParamIter<'a> {
    s: &'a str,
    pos: usize,
}

/// Octets that end a parameter name (`;`, `=`, white space) and a bare value (`;`, white
/// space) while walking a list that was validated when parsed.
static NAME_END: [bool; 256] = delimiters(b";= \t");
static VALUE_END: [bool; 256] = delimiters(b"; \t");

const fn delimiters(set: &[u8]) -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < set.len() {
        t[set[i] as usize] = true;
        i += 1;
    }
    t
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
        i += 1;
    }
    i
}

/// End of the run starting at `i` of octets before the first that `stop` accepts.
fn run_until(b: &[u8], i: usize, stop: impl Fn(u8) -> bool) -> usize {
    match b[i..].iter().position(|c| stop(*c)) {
        Some(n) => i + n,
        None => b.len(),
    }
}

impl<'a> Iterator for ParamIter<'a> {
    type Item = ParamRef<'a>;

    fn next(&mut self) -> Option<ParamRef<'a>> {
        let b = self.s.as_bytes();
        let mut i = skip_ws(b, self.pos);
        if b.get(i) != Some(&b';') {
            self.pos = b.len();
            return None;
        }
        i = skip_ws(b, i + 1);
        let name_start = i;
        i = run_until(b, i, |c| NAME_END[c as usize]);
        let name = &self.s[name_start..i];
        let after_name = i;
        i = skip_ws(b, i);
        let value = if b.get(i) == Some(&b'=') {
            i = skip_ws(b, i + 1);
            let start = i;
            if b.get(i) == Some(&b'"') {
                // A quoted string: to the closing quote, stepping over `\` escapes.
                i += 1;
                loop {
                    match memchr::memchr2(b'"', b'\\', &b[i..]) {
                        Some(n) if b[i + n] == b'\\' => i = (i + n + 2).min(b.len()),
                        Some(n) => {
                            i += n + 1;
                            break;
                        }
                        None => {
                            i = b.len();
                            break;
                        }
                    }
                }
            } else {
                i = run_until(b, i, |c| VALUE_END[c as usize]);
            }
            Some(&self.s[start..i])
        } else {
            i = after_name;
            None
        };
        self.pos = i;
        Some(ParamRef { name, value })
    }
}

impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in self.iter() {
            match p.value {
                Some(v) => write!(f, ";{}={}", p.name, v)?,
                None => write!(f, ";{}", p.name)?,
            }
        }
        Ok(())
    }
}

/// `*( SEMI generic-param )` after a header value: white space allowed around `;` and `=`.
///
/// One walk over the octets (it runs for every Via, From, To and Contact): a name is a
/// token, a value a token, a quoted string or a bracketed IPv6 reference (see
/// [`gen_value`](super::text::gen_value)). White space after the last parameter is left
/// to the caller.
pub fn header_params<'a>(src: &ByteString, i: &'a str) -> IResult<&'a str, Params> {
    let fail = |at: usize| {
        Err(nom::Err::Error(nom::error::Error::new(
            &i[at..],
            nom::error::ErrorKind::Verify,
        )))
    };
    let b = i.as_bytes();
    // End of the last whole parameter.
    let mut done = 0;
    loop {
        let mut k = skip_ws(b, done);
        if b.get(k) != Some(&b';') {
            break;
        }
        k = skip_ws(b, k + 1);
        let name = run_until(b, k, |c| !is_token_byte(c));
        if name == k {
            return fail(k);
        }
        let eq = skip_ws(b, name);
        if b.get(eq) != Some(&b'=') {
            done = name;
            continue;
        }
        let v = skip_ws(b, eq + 1);
        done = match b.get(v) {
            Some(b'"') | Some(b'[') => {
                let Ok((rest, _)) = super::text::gen_value(&i[v..]) else {
                    return fail(v);
                };
                i.len() - rest.len()
            }
            _ => {
                let end = run_until(b, v, |c| !is_token_byte(c));
                if end == v {
                    return fail(v);
                }
                end
            }
        };
    }
    Ok((
        &i[done..],
        Params {
            raw: sub(src, &i[..done]),
        },
    ))
}

/// `paramchar` of a URI parameter (RFC 3261 §25.1).
pub const fn is_uri_param_byte(c: u8) -> bool {
    URI_PARAM[c as usize]
}

const fn uri_param_byte(c: u8) -> bool {
    super::text::is_unreserved_byte(c)
        || matches!(c, b'[' | b']' | b'/' | b':' | b'&' | b'+' | b'$' | b'%')
}

static URI_PARAM: [bool; 256] = super::text::byte_table!(uri_param_byte);

/// Length of the run of `paramchar` octets at the start of `s` (at least one, or an error).
fn param_chars(s: &str) -> Result<usize, nom::Err<nom::error::Error<&str>>> {
    match s.bytes().take_while(|b| is_uri_param_byte(*b)).count() {
        0 => Err(nom::Err::Error(nom::error::Error::new(
            s,
            nom::error::ErrorKind::TakeWhile1,
        ))),
        n => Ok(n),
    }
}

/// `*( ";" uri-parameter )` inside a URI: no white space allowed.
pub fn uri_params<'a>(src: &ByteString, i: &'a str) -> IResult<&'a str, Params> {
    let start = i;
    let mut i = i;
    while let Some(rest) = i.strip_prefix(';') {
        let n = param_chars(rest)?;
        let rest = &rest[n..];
        i = match rest.strip_prefix('=') {
            Some(r) => &r[param_chars(r)?..],
            None => rest,
        };
    }
    let used = &start[..start.len() - i.len()];
    Ok((
        i,
        Params {
            raw: sub(src, used),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_params_with_whitespace() {
        let src = ByteString::from_static(" ;   tag    = 1918181833n ; lr;x=\"a b\"");
        let (rest, p) = header_params(&src, &src).unwrap();
        assert_eq!(rest, "");
        assert_eq!(p.value("TAG"), Some("1918181833n"));
        assert_eq!(p.get("lr"), Some(None));
        assert_eq!(p.value("x"), Some("\"a b\""));
        assert_eq!(p.to_string(), ";tag=1918181833n;lr;x=\"a b\"");
        let canonical: Params = p.to_vec().into();
        let empty_name: Params = vec![Param {
            name: ByteString::new(),
            value: None,
        }]
        .into();
        assert_eq!(empty_name.get(""), Some(None));
        assert_eq!(canonical, p);
        let mut q = p.clone();
        q.set("lr", Some("2"));
        q.remove("tag");
        assert_eq!(q.to_string(), ";lr=2;x=\"a b\"");
        assert_ne!(q, p);
        for (text, name, want) in [
            (";branch=z9;rport", "branch", Some(Some("z9"))),
            (";branch;rport", "branch", Some(None)),
            (";branch", "branch", Some(None)),
            (";branch=", "branch", None),
            (";branchx=1;branch=2", "branch", Some(Some("2"))),
            (";branch = 3", "branch", Some(Some("3"))),
            (";branch=\"q;r\"", "branch", Some(Some("\"q;r\""))),
            (";BRANCH=4", "branch", Some(Some("4"))),
            (";rport;branch=5 ", "branch", Some(Some("5"))),
            (";x=\"<urn:uuid:1>\";expires=60", "q", None),
            (";x=1;Q=0.5", "q", Some(Some("0.5"))),
            (";x=q;y", "q", None),
        ] {
            let src = ByteString::from(text);
            match header_params(&src, &src) {
                Ok((_, p)) => assert_eq!(p.get(name), want, "{text}"),
                Err(_) => assert_eq!(want, None, "{text}"),
            }
        }
        let src = ByteString::from_static(";a=\"x\\\";y\" ;b ; c = [::1];d=e");
        let (rest, p) = header_params(&src, &src).unwrap();
        assert_eq!(rest, "");
        let all: Vec<_> = p.iter().map(|p| (p.name, p.value)).collect();
        assert_eq!(
            all,
            vec![
                ("a", Some("\"x\\\";y\"")),
                ("b", None),
                ("c", Some("[::1]")),
                ("d", Some("e"))
            ]
        );
    }

    #[test]
    fn empty_params_are_errors() {
        let src = ByteString::from_static(";;");
        assert!(header_params(&src, &src).is_err());
        assert!(uri_params(&src, &src).is_err());
    }
}
