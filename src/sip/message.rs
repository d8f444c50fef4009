//! The message model: a start line, header fields kept verbatim (unfolded), and a body.
//!
//! Header values are ranges of the received header section, held once; only a folded header
//! needs a fresh allocation. Typed access goes through [`TypedHeader`].

use std::fmt;

use bytes::Bytes;
use bytestring::ByteString;

use super::headers::{HeaderError, HeaderName, TypedHeader};
use super::text::split_commas;

/// One header field as received (value with folding undone), borrowed from its
/// [`Headers`]. `raw_name` is the spelling received for unknown headers and the canonical
/// name for known ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    pub name: HeaderName,
    pub raw_name: &'a str,
    pub value: &'a str,
}

/// Where a name or value is: a range of the received header section, or (with
/// [`Span::EXTRA`] set in `start`) of the side buffer that holds unfolded values and fields
/// added after parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) start: u32,
    pub(crate) len: u32,
}

impl Span {
    pub(crate) const EXTRA: u32 = 1 << 31;
    /// The empty span.
    pub(crate) const EMPTY: Span = Span { start: 0, len: 0 };
}

/// One stored field: a known name, and where its spelling and value are.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field {
    pub(crate) name: HeaderName,
    pub(crate) raw_name: Span,
    pub(crate) value: Span,
}

/// Header fields in arrival order.
///
/// The received header section is held once (`text`) and every field is a pair of ranges
/// into it: parsing a message takes one reference to the datagram, not one per field.
/// Fields whose text is not a slice of the section (folded values, once unfolded, and
/// fields pushed by sipreg) live in `extra`.
#[derive(Clone, Default)]
pub struct Headers {
    text: ByteString,
    extra: String,
    fields: Vec<Field>,
    index: Index,
}

/// Where each name first occurs and which names occur more than once, so that looking a
/// name up (a request is looked up about a dozen times while it is validated) reads one
/// entry instead of walking every field.
#[derive(Clone)]
struct Index {
    /// Position of the first field of each name, plus one; 0 when there is none, and
    /// [`Index::FAR`] when it is that far or further (then the fields are walked from there).
    first: [u8; HeaderName::COUNT],
    /// Bit `name as usize` set when the name occurs more than once.
    repeated: u64,
}

// One bit per name in `Index::repeated`.
const _: () = assert!(HeaderName::COUNT <= 64);

impl Default for Index {
    fn default() -> Index {
        Index {
            first: [0; HeaderName::COUNT],
            repeated: 0,
        }
    }
}

impl Index {
    const FAR: u8 = u8::MAX;

    /// Records that field `position` is called `name`.
    fn add(&mut self, name: HeaderName, position: usize) {
        let slot = &mut self.first[name as usize];
        if *slot == 0 {
            *slot = u8::try_from(position + 1).unwrap_or(Index::FAR);
        } else {
            self.repeated |= 1 << name as usize;
        }
    }

    /// Where the fields called `name` start, and whether there can be more than one.
    fn find(&self, name: HeaderName) -> Option<(usize, bool)> {
        match self.first[name as usize] {
            0 => None,
            p => Some((
                usize::from(p) - 1,
                p == Index::FAR || self.repeated & (1 << name as usize) != 0,
            )),
        }
    }
}

impl Headers {
    /// Fields over `text`, as the parser found them.
    pub(crate) fn from_parts(text: ByteString, fields: Vec<Field>) -> Headers {
        let mut index = Index::default();
        for (i, f) in fields.iter().enumerate() {
            index.add(f.name, i);
        }
        Headers {
            text,
            extra: String::new(),
            fields,
            index,
        }
    }

    /// The received header section the fields are slices of (empty for a built message):
    /// the `src` that [`TypedHeader::parse`] keeps parts of without copying.
    pub fn src(&self) -> &ByteString {
        &self.text
    }

    fn str(&self, s: Span) -> &str {
        let (start, len) = (s.start as usize, s.len as usize);
        let (text, start) = if s.start & Span::EXTRA != 0 {
            (self.extra.as_str(), start & !(Span::EXTRA as usize))
        } else {
            (&*self.text, start)
        };
        // Spans are made by this type and the parser from the same texts; never panic.
        text.get(start..start + len).unwrap_or("")
    }

    fn field(&self, f: &Field) -> Header<'_> {
        Header {
            name: f.name,
            raw_name: if f.name == HeaderName::Other {
                self.str(f.raw_name)
            } else {
                f.name.as_str()
            },
            value: self.str(f.value),
        }
    }

    /// Appends `s` to the side buffer and returns where it is.
    fn stash(&mut self, s: &str) -> Span {
        let start = self.extra.len();
        self.extra.push_str(s);
        Span {
            start: u32::try_from(start).unwrap_or(0) | Span::EXTRA,
            len: u32::try_from(s.len()).unwrap_or(0),
        }
    }

    /// Replaces the value of field `i` (the parser's unfolding).
    pub(crate) fn set_value(&mut self, i: usize, value: &str) {
        let span = self.stash(value);
        if let Some(f) = self.fields.get_mut(i) {
            f.value = span;
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = Header<'_>> {
        self.fields.iter().map(|f| self.field(f))
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Every field called `name`.
    pub fn all(&self, name: HeaderName) -> impl Iterator<Item = Header<'_>> {
        let (start, more) = self.index.find(name).unwrap_or((self.fields.len(), false));
        self.fields
            .get(start..)
            .unwrap_or_default()
            .iter()
            .filter(move |f| f.name == name)
            .take(if more { usize::MAX } else { 1 })
            .map(|f| self.field(f))
    }

    /// Raw value of the first field called `name`.
    pub fn first(&self, name: HeaderName) -> Option<&str> {
        self.all(name).next().map(|h| h.value)
    }

    /// Raw value of the first unknown header spelled `name` (case-insensitive).
    pub fn other(&self, name: &str) -> Option<&str> {
        self.all(HeaderName::Other)
            .find(|h| h.raw_name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }

    pub fn count(&self, name: HeaderName) -> usize {
        self.all(name).count()
    }

    /// A single-valued header: `Ok(None)` when absent, an error when malformed or repeated.
    pub fn single<H: TypedHeader>(&self) -> Result<Option<H>, HeaderError> {
        let mut it = self.all(H::NAME);
        let Some(h) = it.next() else {
            return Ok(None);
        };
        if it.next().is_some() {
            return Err(HeaderError {
                header: H::NAME,
                what: "appears more than once",
            });
        }
        H::parse(&self.text, h.value).map(Some)
    }

    /// Every element of a list header, across all its fields, in order.
    pub fn list<H: TypedHeader>(&self) -> Result<Vec<H>, HeaderError> {
        let mut out = Vec::new();
        for h in self.all(H::NAME) {
            if H::LIST {
                for item in split_commas(h.value) {
                    out.push(H::parse(&self.text, item)?);
                }
            } else {
                out.push(H::parse(&self.text, h.value)?);
            }
        }
        Ok(out)
    }

    /// Appends a field with its canonical name.
    pub fn push(&mut self, name: HeaderName, value: impl AsRef<str>) {
        let value = self.stash(value.as_ref());
        let raw_name = if name == HeaderName::Other {
            self.stash(name.as_str())
        } else {
            Span::EMPTY
        };
        self.index.add(name, self.fields.len());
        self.fields.push(Field {
            name,
            raw_name,
            value,
        });
    }

    /// The fields `keep` accepts, over the same section (one more reference to it).
    pub fn filtered(&self, keep: impl Fn(HeaderName) -> bool) -> Headers {
        let mut out = Headers {
            text: self.text.clone(),
            extra: String::new(),
            fields: Vec::with_capacity(self.fields.iter().filter(|f| keep(f.name)).count()),
            index: Index::default(),
        };
        for f in self.fields.iter().filter(|f| keep(f.name)) {
            let mut f = *f;
            if f.value.start & Span::EXTRA != 0 {
                f.value = out.stash(self.str(f.value));
            }
            if f.raw_name.start & Span::EXTRA != 0 {
                f.raw_name = out.stash(self.str(f.raw_name));
            }
            out.index.add(f.name, out.fields.len());
            out.fields.push(f);
        }
        out
    }
}

impl PartialEq for Headers {
    /// Equal when the fields are, wherever their text is kept.
    fn eq(&self, other: &Headers) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Headers {}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// A parsed message: the start line as received, the header fields and the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub first_line: ByteString,
    pub headers: Headers,
    pub body: Bytes,
}

impl Message {
    /// The topmost Via element; `None` when there is none or it is malformed.
    pub fn top_via(&self) -> Option<super::headers::Via> {
        let raw = self.headers.first(HeaderName::Via)?;
        let first = split_commas(raw).next()?;
        super::headers::Via::parse(self.headers.src(), first).ok()
    }

    /// Responses start with the SIP version; everything else is a request.
    pub fn is_response(&self) -> bool {
        self.first_line
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case("SIP/"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::parser::{Limits, parse_datagram};

    fn parsed(text: &'static str) -> Message {
        parse_datagram(Bytes::from_static(text.as_bytes()), &Limits::default()).unwrap()
    }

    #[test]
    fn fields_are_ranges_of_the_section_and_the_side_buffer() {
        let m = parsed(
            "OPTIONS sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bK1\r\nSubject: one,\r\n two\r\nX-Odd: y\r\nCall-ID: c\r\n\r\n",
        );
        // A parsed value is a slice of the section; an unfolded one is not.
        let via = m.headers.first(HeaderName::Via).unwrap();
        let range = m.headers.src().as_bytes().as_ptr_range();
        assert!(range.contains(&via.as_ptr()));
        assert_eq!(m.headers.first(HeaderName::Subject), Some("one, two"));
        assert_eq!(m.headers.other("x-odd"), Some("y"));
        let names: Vec<_> = m.headers.iter().map(|h| h.raw_name).collect();
        assert_eq!(names, ["Via", "Subject", "X-Odd", "Call-ID"]);
        assert_eq!(
            m.top_via()
                .and_then(|v| v.branch().map(str::to_owned))
                .as_deref(),
            Some("z9hG4bK1")
        );
        assert!(
            parsed("OPTIONS sip:a@b SIP/2.0\r\nVia: x\r\n\r\n")
                .top_via()
                .is_none()
        );

        // The same fields pushed one by one compare equal to the parsed ones.
        let mut built = Headers::default();
        built.push(HeaderName::Via, "SIP/2.0/UDP h;branch=z9hG4bK1");
        built.push(HeaderName::Subject, "one, two");
        assert_ne!(built, m.headers);
        let kept = m
            .headers
            .filtered(|n| matches!(n, HeaderName::Via | HeaderName::Subject));
        assert_eq!(kept, built);
        assert_eq!(kept.first(HeaderName::Subject), Some("one, two"));
        assert_eq!(kept.count(HeaderName::CallId), 0);
    }

    #[test]
    fn lookups_by_name_find_every_field_wherever_it_is() {
        let mut h = Headers::default();
        h.push(HeaderName::To, "<sip:a@b>");
        for i in 0..300 {
            h.push(HeaderName::Subject, format!("s{i}"));
        }
        h.push(HeaderName::Via, "SIP/2.0/UDP far;branch=z9hG4bK1");
        h.push(HeaderName::To, "<sip:c@d>");
        h.push(HeaderName::Via, "SIP/2.0/UDP farther;branch=z9hG4bK2");
        assert_eq!(h.count(HeaderName::Subject), 300);
        assert_eq!(
            h.all(HeaderName::Subject).nth(299).map(|f| f.value),
            Some("s299")
        );
        assert_eq!(h.count(HeaderName::Via), 2);
        assert_eq!(
            h.first(HeaderName::Via),
            Some("SIP/2.0/UDP far;branch=z9hG4bK1")
        );
        let tos: Vec<_> = h.all(HeaderName::To).map(|f| f.value).collect();
        assert_eq!(tos, ["<sip:a@b>", "<sip:c@d>"]);
        assert!(h.single::<crate::sip::headers::To>().is_err());
        assert_eq!(h.count(HeaderName::From), 0);
        assert_eq!(h.first(HeaderName::From), None);
        let vias = h.filtered(|n| n == HeaderName::Via);
        assert_eq!(vias.len(), 2);
        assert_eq!(vias.list::<crate::sip::headers::Via>().unwrap().len(), 2);
        let one = h.filtered(|n| n == HeaderName::CSeq);
        assert!(one.is_empty() && one.first(HeaderName::CSeq).is_none());
    }
}
