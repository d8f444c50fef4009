//! The message model: a start line, header fields kept verbatim (unfolded), and a body.
//!
//! Header values are zero-copy slices of the received buffer; only a folded header needs a
//! fresh allocation. Typed access goes through [`TypedHeader`].

use bytes::Bytes;
use bytestring::ByteString;

use super::headers::{HeaderError, HeaderName, TypedHeader};
use super::text::split_commas;

/// One header field as received (value with folding undone). `raw_name` is the spelling
/// received for unknown headers and the canonical name for known ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: HeaderName,
    pub raw_name: ByteString,
    pub value: ByteString,
}

/// Header fields in arrival order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<Header>);

impl Headers {
    pub fn iter(&self) -> impl Iterator<Item = &Header> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every field called `name`.
    pub fn all(&self, name: HeaderName) -> impl Iterator<Item = &Header> {
        self.0.iter().filter(move |h| h.name == name)
    }

    /// Raw value of the first field called `name`.
    pub fn first(&self, name: HeaderName) -> Option<&ByteString> {
        self.all(name).next().map(|h| &h.value)
    }

    /// Raw value of the first unknown header spelled `name` (case-insensitive).
    pub fn other(&self, name: &str) -> Option<&ByteString> {
        self.0
            .iter()
            .find(|h| h.name == HeaderName::Other && h.raw_name.eq_ignore_ascii_case(name))
            .map(|h| &h.value)
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
        H::parse(&h.value, &h.value).map(Some)
    }

    /// Every element of a list header, across all its fields, in order.
    pub fn list<H: TypedHeader>(&self) -> Result<Vec<H>, HeaderError> {
        let mut out = Vec::new();
        for h in self.all(H::NAME) {
            if H::LIST {
                for item in split_commas(&h.value) {
                    out.push(H::parse(&h.value, item)?);
                }
            } else {
                out.push(H::parse(&h.value, &h.value)?);
            }
        }
        Ok(out)
    }

    /// Appends a field with its canonical name.
    pub fn push(&mut self, name: HeaderName, value: impl Into<ByteString>) {
        self.0.push(Header {
            name,
            raw_name: ByteString::from_static(name.as_str()),
            value: value.into(),
        });
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
    /// Responses start with the SIP version; everything else is a request.
    pub fn is_response(&self) -> bool {
        self.first_line
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case("SIP/"))
    }
}
