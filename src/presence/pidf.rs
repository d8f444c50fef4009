//! PIDF parsing (RFC 3863 with RFC 4479 and RFC 4480) over `quick-xml`'s namespace-aware
//! reader, and the entry points to print a document back ([`Presence::to_xml`] lives in
//! [`super::print`]).
//!
//! The parser is strict where safety needs it and lenient elsewhere: a DOCTYPE is refused
//! before anything in it is read (so no entity can ever be defined, let alone expanded),
//! only the five predefined entities and character references are accepted, the body
//! size and nesting depth are bounded, and the document must be UTF-8. Elements it does
//! not interpret are kept as [`XmlFragment`]s in the element that held them. Notes keep
//! their text exactly; the white space around values (`contact`, `timestamp`,
//! `deviceID`, `basic`, `user-input`) is dropped.

use std::collections::BTreeMap;

use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{NamespaceError, QName, ResolveResult};
use quick_xml::reader::NsReader;

use super::error::{PidfError, excerpt};
use super::model::*;
use super::print::is_xml_char;

/// Bounds on what [`parse`] accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest body in bytes (issue 5: 16 KiB by default, 413 beyond).
    pub max_body: usize,
    /// Deepest element nesting, unknown fragments included.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body: 16 * 1024,
            max_depth: 32,
        }
    }
}

/// Parses a PIDF body.
pub fn parse(body: &[u8], limits: &Limits) -> Result<Presence, PidfError> {
    if body.len() > limits.max_body {
        return Err(PidfError::TooLarge {
            size: body.len(),
            limit: limits.max_body,
        });
    }
    let text = std::str::from_utf8(body).map_err(|_| PidfError::NotUtf8)?;
    // A BOM is allowed before the declaration.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    Parser::new(text, limits.max_depth).document()
}

impl Presence {
    /// [`parse`] with the default [`Limits`].
    pub fn parse(body: &[u8]) -> Result<Presence, PidfError> {
        parse(body, &Limits::default())
    }
}

/// Which namespace an element is in, as far as the parser cares.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ns {
    Pidf,
    Dm,
    Rpid,
    Other(String),
    None,
}

impl Ns {
    fn of(r: &ResolveResult<'_>) -> Result<Ns, PidfError> {
        Ok(match r {
            ResolveResult::Bound(ns) => match ns.0 {
                NS_PIDF => Ns::Pidf,
                NS_DM => Ns::Dm,
                NS_RPID => Ns::Rpid,
                other => Ns::Other(other.to_string()),
            },
            ResolveResult::Unbound => Ns::None,
            ResolveResult::Unknown(p) => {
                return Err(PidfError::Malformed(format!(
                    "undeclared prefix {}",
                    excerpt(p)
                )));
            }
        })
    }

    fn uri(&self) -> &str {
        match self {
            Ns::Pidf => NS_PIDF,
            Ns::Dm => NS_DM,
            Ns::Rpid => NS_RPID,
            Ns::Other(s) => s,
            Ns::None => "",
        }
    }
}

/// A start tag, resolved and with its attribute values unescaped.
struct Start {
    ns: Ns,
    local: String,
    /// The qualified name as written.
    qname: String,
    /// (qualified name, value).
    attrs: Vec<(String, String)>,
    empty: bool,
    /// Byte offset of its `<`.
    pos: usize,
    /// Byte offset just past it (for an empty element, its end).
    end: usize,
}

impl Start {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn is(&self, ns: Ns, local: &str) -> bool {
        self.ns == ns && self.local == local
    }
}

enum Ev {
    Start(Start),
    /// Byte offset just past the end tag.
    End(usize),
    Text(String),
    Eof,
}

struct Parser<'i> {
    input: &'i str,
    reader: NsReader<&'i [u8]>,
    max_depth: usize,
    depth: usize,
    /// An event read while gathering text, handed out next.
    pending: Option<Ev>,
}

fn malformed(e: impl std::fmt::Display) -> PidfError {
    PidfError::Malformed(excerpt(&e.to_string()))
}

impl<'i> Parser<'i> {
    fn new(input: &'i str, max_depth: usize) -> Parser<'i> {
        let mut reader = NsReader::from_str(input);
        let cfg = reader.config_mut();
        cfg.check_end_names = true;
        cfg.expand_empty_elements = false;
        Parser {
            input,
            reader,
            max_depth,
            depth: 0,
            pending: None,
        }
    }

    /// The next event with adjacent text, CDATA and references joined into one string.
    fn next(&mut self) -> Result<Ev, PidfError> {
        if let Some(ev) = self.pending.take() {
            return Ok(ev);
        }
        let mut text: Option<String> = None;
        loop {
            let pos = self.position();
            let (res, event) = self.reader.read_resolved_event().map_err(|e| match e {
                quick_xml::Error::Namespace(NamespaceError::TooManyBindings(n)) => {
                    PidfError::Malformed(format!("more than {n} namespace declarations"))
                }
                e => malformed(e),
            })?;
            let ev = match event {
                Event::Text(t) => {
                    let t = t.xml10_content();
                    legal(&t)?;
                    text.get_or_insert_default().push_str(&t);
                    continue;
                }
                Event::CData(t) => {
                    let t = t.xml10_content();
                    legal(&t)?;
                    text.get_or_insert_default().push_str(&t);
                    continue;
                }
                Event::GeneralRef(r) => {
                    let s = text.get_or_insert_default();
                    match r.resolve_char_ref().map_err(malformed)? {
                        Some(c) if is_xml_char(c) => s.push(c),
                        Some(_) => {
                            return Err(PidfError::Malformed(format!(
                                "invalid character reference &{};",
                                excerpt(&r)
                            )));
                        }
                        None => match resolve_predefined_entity(&r) {
                            Some(v) => s.push_str(v),
                            None => return Err(PidfError::UndefinedEntity(excerpt(&r))),
                        },
                    }
                    continue;
                }
                Event::DocType(_) => return Err(PidfError::Doctype),
                Event::Decl(d) => {
                    if let Some(enc) = d.encoding() {
                        let enc = enc.map_err(malformed)?;
                        if !enc.eq_ignore_ascii_case("utf-8") {
                            return Err(PidfError::Encoding(excerpt(&enc)));
                        }
                    }
                    continue;
                }
                Event::Comment(_) | Event::PI(_) => continue,
                Event::Start(s) => {
                    let ns = Ns::of(&res)?;
                    self.depth += 1;
                    if self.depth > self.max_depth {
                        return Err(PidfError::TooDeep(self.max_depth));
                    }
                    Ev::Start(self.start(ns, &s, false, pos)?)
                }
                Event::Empty(s) => {
                    let ns = Ns::of(&res)?;
                    if self.depth + 1 > self.max_depth {
                        return Err(PidfError::TooDeep(self.max_depth));
                    }
                    Ev::Start(self.start(ns, &s, true, pos)?)
                }
                Event::End(_) => {
                    self.depth = self.depth.saturating_sub(1);
                    Ev::End(self.position())
                }
                Event::Eof => Ev::Eof,
            };
            return Ok(match text {
                Some(t) => {
                    self.pending = Some(ev);
                    Ev::Text(t)
                }
                None => ev,
            });
        }
    }

    fn position(&self) -> usize {
        usize::try_from(self.reader.buffer_position()).unwrap_or(usize::MAX)
    }

    fn start(
        &self,
        ns: Ns,
        s: &BytesStart<'_>,
        empty: bool,
        pos: usize,
    ) -> Result<Start, PidfError> {
        let mut attrs = Vec::new();
        for a in s.attributes() {
            let a = a.map_err(malformed)?;
            // An undeclared prefix on an attribute would make a kept fragment invalid
            // wherever it is printed.
            if let (ResolveResult::Unknown(p), _) = self.reader.resolver().resolve_attribute(a.key)
            {
                return Err(PidfError::Malformed(format!(
                    "undeclared prefix {}",
                    excerpt(&p)
                )));
            }
            let value = a
                .normalized_value_with(quick_xml::XmlVersion::Implicit1_0, 1, |name| {
                    resolve_predefined_entity(name)
                })
                .map_err(|e| match e {
                    quick_xml::Error::Escape(
                        quick_xml::escape::EscapeError::UnrecognizedEntity(_, name),
                    ) => PidfError::UndefinedEntity(excerpt(&name)),
                    e => malformed(e),
                })?;
            legal(&value)?;
            attrs.push((a.key.0.to_string(), value.into_owned()));
        }
        let qname = s.name().0.to_string();
        Ok(Start {
            ns,
            local: s.local_name().as_ref().to_string(),
            qname,
            attrs,
            empty,
            pos,
            end: self.position(),
        })
    }

    fn document(mut self) -> Result<Presence, PidfError> {
        let root = loop {
            match self.next()? {
                Ev::Start(s) => break s,
                Ev::Text(t) if t.trim().is_empty() => {}
                Ev::Text(_) => return Err(PidfError::Unexpected("text before root".into())),
                Ev::End(_) => return Err(PidfError::Unexpected("end tag".into())),
                Ev::Eof => return Err(PidfError::Malformed("empty document".into())),
            }
        };
        if !root.is(Ns::Pidf, "presence") {
            return Err(PidfError::NotPidf);
        }
        let doc = self.presence(root)?;
        loop {
            match self.next()? {
                Ev::Eof => return Ok(doc),
                Ev::Text(t) if t.trim().is_empty() => {}
                _ => {
                    return Err(PidfError::Unexpected(
                        "content after the presence element".into(),
                    ));
                }
            }
        }
    }

    /// Children of a structural element: calls `child` for each start tag, allows only
    /// white space between them, and stops at the element's end.
    fn children(
        &mut self,
        parent: &Start,
        what: &'static str,
        mut child: impl FnMut(&mut Self, Start) -> Result<(), PidfError>,
    ) -> Result<(), PidfError> {
        if parent.empty {
            return Ok(());
        }
        loop {
            match self.next()? {
                Ev::Start(s) => child(self, s)?,
                Ev::End(_) => return Ok(()),
                Ev::Text(t) if t.trim().is_empty() => {}
                Ev::Text(_) => return Err(PidfError::Unexpected(format!("text in {what}"))),
                Ev::Eof => return Err(PidfError::Malformed(format!("unclosed {what}"))),
            }
        }
    }

    /// Text content of a leaf element; child elements are an error.
    fn text(&mut self, el: &Start, what: &'static str) -> Result<String, PidfError> {
        if el.empty {
            return Ok(String::new());
        }
        let mut out = String::new();
        loop {
            match self.next()? {
                Ev::Text(t) => out.push_str(&t),
                Ev::End(_) => return Ok(out),
                Ev::Start(_) => return Err(PidfError::Unexpected(format!("element in {what}"))),
                Ev::Eof => return Err(PidfError::Malformed(format!("unclosed {what}"))),
            }
        }
    }

    fn note(&mut self, el: Start) -> Result<Note, PidfError> {
        let lang = el.attr("xml:lang").map(str::to_string);
        Ok(Note {
            text: self.text(&el, "note")?,
            lang,
        })
    }

    /// The element and everything in it as a standalone fragment. Called right after
    /// `root` was read, while the reader's namespace scope is still root's.
    fn fragment(&mut self, root: Start) -> Result<XmlFragment, PidfError> {
        // Prefix -> namespace (None: no namespace) for the prefixes the fragment uses
        // but does not declare itself; their declarations are copied onto the root.
        let mut needed: BTreeMap<Option<String>, Option<String>> = BTreeMap::new();
        // Prefixes declared by the open elements of the fragment.
        let mut open: Vec<Vec<Option<String>>> = Vec::new();
        self.needs(&root, &open, &mut needed);
        let end = if root.empty {
            root.end
        } else {
            open.push(declared(&root));
            loop {
                match self.next()? {
                    Ev::Start(s) => {
                        self.needs(&s, &open, &mut needed);
                        if !s.empty {
                            open.push(declared(&s));
                        }
                    }
                    Ev::End(at) => {
                        open.pop();
                        if open.is_empty() {
                            break at;
                        }
                    }
                    Ev::Text(_) => {}
                    Ev::Eof => {
                        return Err(PidfError::Malformed(format!(
                            "unclosed {}",
                            excerpt(&root.qname)
                        )));
                    }
                }
            }
        };
        let raw = self
            .input
            .get(root.pos..end)
            .ok_or_else(|| PidfError::Malformed("fragment bounds".into()))?;
        let mut decls = String::new();
        for (p, ns) in needed {
            match (p, ns) {
                (None, Some(ns)) => decls.push_str(&format!(" xmlns=\"{ns}\"")),
                // Unprefixed names with no default namespace must stay that way.
                (None, None) => decls.push_str(" xmlns=\"\""),
                (Some(p), Some(ns)) => decls.push_str(&format!(" xmlns:{p}=\"{ns}\"")),
                (Some(_), None) => {}
            }
        }
        // The copied declarations go right after the root's name.
        let cut = 1 + root.qname.len();
        let (head, tail) = match (raw.get(..cut), raw.get(cut..)) {
            (Some(h), Some(t)) if h.get(1..) == Some(root.qname.as_str()) => (h, t),
            _ => return Err(PidfError::Malformed("fragment bounds".into())),
        };
        Ok(XmlFragment {
            namespace: root.ns.uri().to_string(),
            local_name: root.local.clone(),
            xml: format!("{head}{decls}{tail}"),
        })
    }

    /// Records the prefixes element `s` of a fragment takes from outside it. Resolving
    /// now is right: a prefix not declared inside the fragment has the binding it had
    /// at the root. (The values are namespace names as written, still escaped.)
    fn needs(
        &self,
        s: &Start,
        open: &[Vec<Option<String>>],
        needed: &mut BTreeMap<Option<String>, Option<String>>,
    ) {
        let own = declared(s);
        let resolver = self.reader.resolver();
        let mut want = |qname: &str, element: bool| {
            let p = prefix(qname);
            if p.as_deref() == Some("xml")
                || own.contains(&p)
                || open.iter().any(|d| d.contains(&p))
                || needed.contains_key(&p)
            {
                return;
            }
            let (res, _) = if element {
                resolver.resolve_element(QName(qname))
            } else {
                resolver.resolve_attribute(QName(qname))
            };
            let ns = match res {
                ResolveResult::Bound(ns) => Some(ns.0.to_string()),
                _ => None,
            };
            needed.insert(p, ns);
        };
        want(&s.qname, true);
        for (k, _) in &s.attrs {
            if k != "xmlns" && !k.starts_with("xmlns:") && k.contains(':') {
                want(k, false);
            }
        }
    }

    fn presence(&mut self, el: Start) -> Result<Presence, PidfError> {
        let entity = el
            .attr("entity")
            .ok_or(PidfError::MissingAttribute {
                element: "presence",
                attribute: "entity",
            })?
            .to_string();
        let mut doc = Presence {
            entity,
            ..Presence::default()
        };
        self.children(&el, "presence", |p, c| {
            if c.is(Ns::Pidf, "tuple") {
                let t = p.tuple(c)?;
                doc.tuples.push(t);
            } else if c.is(Ns::Pidf, "note") {
                let n = p.note(c)?;
                doc.notes.push(n);
            } else if c.is(Ns::Dm, "person") {
                let x = p.person(c)?;
                doc.persons.push(x);
            } else if c.is(Ns::Dm, "device") {
                let x = p.device(c)?;
                doc.devices.push(x);
            } else {
                let f = p.fragment(c)?;
                doc.extensions.push(f);
            }
            Ok(())
        })?;
        Ok(doc)
    }

    fn tuple(&mut self, el: Start) -> Result<Tuple, PidfError> {
        let id = required_id(&el, "tuple")?;
        let mut t = Tuple {
            id,
            ..Tuple::default()
        };
        let mut status = None;
        self.children(&el, "tuple", |p, c| {
            let dup = |element| PidfError::Duplicate {
                element,
                parent: "tuple",
            };
            if c.is(Ns::Pidf, "status") {
                if status.is_some() {
                    return Err(dup("status"));
                }
                status = Some(p.status(c)?);
            } else if c.is(Ns::Pidf, "contact") {
                if t.contact.is_some() {
                    return Err(dup("contact"));
                }
                let priority = c.attr("priority").map(str::to_string);
                let uri = p.text(&c, "contact")?.trim().to_string();
                t.contact = Some(Contact { uri, priority });
            } else if c.is(Ns::Pidf, "note") {
                let n = p.note(c)?;
                t.notes.push(n);
            } else if c.is(Ns::Pidf, "timestamp") {
                if t.timestamp.is_some() {
                    return Err(dup("timestamp"));
                }
                t.timestamp = Some(p.text(&c, "timestamp")?.trim().to_string());
            } else if c.is(Ns::Dm, "deviceID") {
                if t.device_id.is_some() {
                    return Err(dup("deviceID"));
                }
                t.device_id = Some(p.text(&c, "deviceID")?.trim().to_string());
            } else {
                let f = p.fragment(c)?;
                t.extensions.push(f);
            }
            Ok(())
        })?;
        t.status = status.ok_or_else(|| PidfError::MissingStatus(excerpt(&t.id)))?;
        Ok(t)
    }

    fn status(&mut self, el: Start) -> Result<Status, PidfError> {
        let mut st = Status::default();
        self.children(&el, "status", |p, c| {
            if c.is(Ns::Pidf, "basic") {
                if st.basic.is_some() {
                    return Err(PidfError::Duplicate {
                        element: "basic",
                        parent: "status",
                    });
                }
                let v = p.text(&c, "basic")?;
                st.basic = Some(match v.trim() {
                    "open" => Basic::Open,
                    "closed" => Basic::Closed,
                    other => {
                        return Err(PidfError::InvalidValue {
                            element: "basic",
                            value: excerpt(other),
                        });
                    }
                });
            } else {
                let f = p.fragment(c)?;
                st.extensions.push(f);
            }
            Ok(())
        })?;
        Ok(st)
    }

    fn person(&mut self, el: Start) -> Result<Person, PidfError> {
        let id = required_id(&el, "person")?;
        let mut x = Person {
            id,
            ..Person::default()
        };
        self.children(&el, "person", |p, c| {
            let dup = |element| PidfError::Duplicate {
                element,
                parent: "person",
            };
            if c.is(Ns::Rpid, "activities") {
                if x.activities.is_some() {
                    return Err(dup("activities"));
                }
                x.activities = Some(p.activities(c)?);
            } else if c.is(Ns::Rpid, "user-input") {
                if x.user_input.is_some() {
                    return Err(dup("user-input"));
                }
                x.user_input = Some(p.user_input(c)?);
            } else if c.is(Ns::Dm, "note") {
                let n = p.note(c)?;
                x.notes.push(n);
            } else if c.is(Ns::Dm, "timestamp") {
                if x.timestamp.is_some() {
                    return Err(dup("timestamp"));
                }
                x.timestamp = Some(p.text(&c, "timestamp")?.trim().to_string());
            } else {
                let f = p.fragment(c)?;
                x.extensions.push(f);
            }
            Ok(())
        })?;
        Ok(x)
    }

    fn device(&mut self, el: Start) -> Result<Device, PidfError> {
        let id = required_id(&el, "device")?;
        let mut x = Device {
            id,
            ..Device::default()
        };
        self.children(&el, "device", |p, c| {
            let dup = |element| PidfError::Duplicate {
                element,
                parent: "device",
            };
            if c.is(Ns::Dm, "deviceID") {
                if x.device_id.is_some() {
                    return Err(dup("deviceID"));
                }
                x.device_id = Some(p.text(&c, "deviceID")?.trim().to_string());
            } else if c.is(Ns::Dm, "note") {
                let n = p.note(c)?;
                x.notes.push(n);
            } else if c.is(Ns::Dm, "timestamp") {
                if x.timestamp.is_some() {
                    return Err(dup("timestamp"));
                }
                x.timestamp = Some(p.text(&c, "timestamp")?.trim().to_string());
            } else {
                let f = p.fragment(c)?;
                x.extensions.push(f);
            }
            Ok(())
        })?;
        Ok(x)
    }

    fn activities(&mut self, el: Start) -> Result<Activities, PidfError> {
        let mut a = Activities {
            id: el.attr("id").map(str::to_string),
            from: el.attr("from").map(str::to_string),
            until: el.attr("until").map(str::to_string),
            ..Activities::default()
        };
        self.children(&el, "activities", |p, c| {
            if c.ns == Ns::Rpid && c.local == "note" {
                let n = p.note(c)?;
                a.notes.push(n);
            } else if c.ns == Ns::Rpid && c.local == "other" {
                let n = p.note(c)?;
                a.list.push(Activity::Other(n));
            } else if let (Ns::Rpid, Some(known)) = (&c.ns, Activity::known(&c.local)) {
                // Activity elements are empty; anything inside is skipped.
                p.fragment(c)?;
                a.list.push(known);
            } else {
                let f = p.fragment(c)?;
                a.list.push(Activity::Extension(f));
            }
            Ok(())
        })?;
        Ok(a)
    }

    fn user_input(&mut self, el: Start) -> Result<UserInput, PidfError> {
        let idle_threshold = match el.attr("idle-threshold") {
            None => None,
            Some(v) => Some(v.trim().parse().map_err(|_| PidfError::InvalidValue {
                element: "idle-threshold",
                value: excerpt(v),
            })?),
        };
        let id = el.attr("id").map(str::to_string);
        let last_input = el.attr("last-input").map(str::to_string);
        let v = self.text(&el, "user-input")?;
        let state = match v.trim() {
            "active" => InputState::Active,
            "idle" => InputState::Idle,
            other => {
                return Err(PidfError::InvalidValue {
                    element: "user-input",
                    value: excerpt(other),
                });
            }
        };
        Ok(UserInput {
            state,
            id,
            last_input,
            idle_threshold,
        })
    }
}

/// Refuses characters XML 1.0 cannot carry (raw or as references), so whatever is
/// accepted prints back unchanged.
fn legal(s: &str) -> Result<(), PidfError> {
    match s.chars().find(|c| !is_xml_char(*c)) {
        None => Ok(()),
        Some(c) => Err(PidfError::Malformed(format!(
            "invalid character U+{:04X}",
            u32::from(c)
        ))),
    }
}

/// The prefixes an element declares (None: the default namespace).
fn declared(s: &Start) -> Vec<Option<String>> {
    s.attrs
        .iter()
        .filter_map(|(k, _)| match k.strip_prefix("xmlns") {
            Some("") => Some(None),
            Some(rest) => rest.strip_prefix(':').map(|p| Some(p.to_string())),
            None => None,
        })
        .collect()
}

fn prefix(qname: &str) -> Option<String> {
    QName(qname).prefix().map(|p| p.as_ref().to_string())
}

fn required_id(el: &Start, element: &'static str) -> Result<String, PidfError> {
    el.attr("id")
        .map(str::to_string)
        .ok_or(PidfError::MissingAttribute {
            element,
            attribute: "id",
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_extensions(inner: &str) -> Vec<String> {
        let body = format!(
            r#"<?xml version="1.0"?><!-- c --><presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:x="urn:x" entity="e"><tuple id="t"><status>{inner}</status></tuple></presence>"#
        );
        let doc = Presence::parse(body.as_bytes()).expect("parses");
        doc.tuples[0]
            .status
            .extensions
            .iter()
            .map(|f| f.xml.clone())
            .collect()
    }

    #[test]
    fn fragments_are_cut_exactly_whatever_precedes_them() {
        assert_eq!(
            status_extensions("<!-- c -->&#32;<x:a>&amp;</x:a><?pi x?>\n<x:b/><x:c\n/>"),
            [
                r#"<x:a xmlns:x="urn:x">&amp;</x:a>"#,
                r#"<x:b xmlns:x="urn:x"/>"#,
                "<x:c xmlns:x=\"urn:x\"\n/>",
            ]
        );
    }

    #[test]
    fn declarations_are_copied_once() {
        // Declared on the fragment itself: nothing to add.
        assert_eq!(
            status_extensions(r#"<y:a xmlns:y="urn:y"><y:b/></y:a>"#),
            [r#"<y:a xmlns:y="urn:y"><y:b/></y:a>"#]
        );
        // Used only on an attribute of a child.
        assert_eq!(
            status_extensions(r#"<y:a xmlns:y="urn:y"><y:b x:k="v"/></y:a>"#),
            [r#"<y:a xmlns:x="urn:x" xmlns:y="urn:y"><y:b x:k="v"/></y:a>"#]
        );
    }

    #[test]
    fn inner_redeclaration_does_not_leak_to_the_root() {
        // `x` is redeclared inside for one child; the other child uses the outer `x`.
        assert_eq!(
            status_extensions(
                r#"<y:a xmlns:y="urn:y"><q xmlns:x="urn:other"><x:b/></q><x:c/></y:a>"#
            ),
            [
                r#"<y:a xmlns="urn:ietf:params:xml:ns:pidf" xmlns:x="urn:x" xmlns:y="urn:y"><q xmlns:x="urn:other"><x:b/></q><x:c/></y:a>"#
            ]
        );
    }

    #[test]
    fn known_activity_with_content_is_read_as_the_activity() {
        let body = r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="e"><dm:person id="p"><rpid:activities><rpid:busy>really</rpid:busy></rpid:activities></dm:person></presence>"#;
        let doc = Presence::parse(body.as_bytes()).expect("parses");
        let list = doc.persons[0].activities.as_ref().map(|a| a.list.clone());
        assert_eq!(list, Some(vec![Activity::Known("busy")]));
    }
}
