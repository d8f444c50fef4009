//! Parameter lists: `;name[=value]` as they follow URIs and header values.

use std::fmt;

use bytestring::ByteString;
use nom::IResult;

use super::text::{gen_value, sep, sub, token};

/// One parameter; `value` is `None` for a flag such as `;lr` and keeps quotes when quoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub name: ByteString,
    pub value: Option<ByteString>,
}

/// An ordered parameter list. Names compare case-insensitively; order and spelling are kept.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Params(pub Vec<Param>);

impl Params {
    pub fn new() -> Params {
        Params(Vec::new())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Param> {
        self.0.iter()
    }

    fn find(&self, name: &str) -> Option<&Param> {
        self.0.iter().find(|p| p.name.eq_ignore_ascii_case(name))
    }

    /// `Some(Some(v))` for `name=v`, `Some(None)` for a bare `name`, `None` when absent.
    pub fn get(&self, name: &str) -> Option<Option<&str>> {
        self.find(name).map(|p| p.value.as_deref())
    }

    /// The value of `name`, when present with one.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.find(name).and_then(|p| p.value.as_deref())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.find(name).is_some()
    }

    /// Sets `name` (replacing an existing value) or appends it.
    pub fn set(&mut self, name: &str, value: Option<&str>) {
        let value = value.map(ByteString::from);
        match self
            .0
            .iter_mut()
            .find(|p| p.name.eq_ignore_ascii_case(name))
        {
            Some(p) => p.value = value,
            None => self.0.push(Param {
                name: ByteString::from(name),
                value,
            }),
        }
    }

    pub fn remove(&mut self, name: &str) {
        self.0.retain(|p| !p.name.eq_ignore_ascii_case(name));
    }
}

impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.0 {
            match &p.value {
                Some(v) => write!(f, ";{}={}", p.name, v)?,
                None => write!(f, ";{}", p.name)?,
            }
        }
        Ok(())
    }
}

/// `*( SEMI generic-param )` after a header value: white space allowed around `;` and `=`.
pub fn header_params<'a>(src: &ByteString, mut i: &'a str) -> IResult<&'a str, Params> {
    let mut out = Vec::new();
    loop {
        let Ok((rest, _)) = sep(";")(i) else {
            return Ok((i, Params(out)));
        };
        let (rest, name) = token(rest)?;
        let (rest, value) = match sep("=")(rest) {
            Ok((r, _)) => {
                let (r, v) = gen_value(r)?;
                (r, Some(sub(src, v)))
            }
            Err(_) => (rest, None),
        };
        out.push(Param {
            name: sub(src, name),
            value,
        });
        i = rest;
    }
}

/// `paramchar` of a URI parameter (RFC 3261 §25.1).
pub fn is_uri_param_byte(c: u8) -> bool {
    super::text::is_unreserved_byte(c)
        || matches!(c, b'[' | b']' | b'/' | b':' | b'&' | b'+' | b'$' | b'%')
}

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
pub fn uri_params<'a>(src: &ByteString, mut i: &'a str) -> IResult<&'a str, Params> {
    let mut out = Vec::new();
    while let Some(rest) = i.strip_prefix(';') {
        let n = param_chars(rest)?;
        let (name, rest) = rest.split_at(n);
        let (rest, value) = match rest.strip_prefix('=') {
            Some(r) => {
                let n = param_chars(r)?;
                (&r[n..], Some(sub(src, &r[..n])))
            }
            None => (rest, None),
        };
        out.push(Param {
            name: sub(src, name),
            value,
        });
        i = rest;
    }
    Ok((i, Params(out)))
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
    }

    #[test]
    fn empty_params_are_errors() {
        let src = ByteString::from_static(";;");
        assert!(header_params(&src, &src).is_err());
        assert!(uri_params(&src, &src).is_err());
    }
}
