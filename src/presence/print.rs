//! PIDF printing. Every string from the model goes through [`escape`], so text can never
//! turn into markup; kept [`XmlFragment`]s are written as they were parsed (they are
//! well-formed and carry their own namespace declarations).
//!
//! The printer writes the string itself rather than through `quick_xml::Writer`: the
//! writer's escaping leaves tabs, line ends and carriage returns in attribute values and
//! control characters anywhere, which a parser then normalises or refuses, so one
//! [`escape`] here decides every character.
//!
//! The `pidf`, `dm` and `rpid` namespaces are declared once on `presence` (default,
//! `dm:`, `rpid:`), and elements come in the order the schemas ask for.

use super::model::*;

/// Escapes text for element content and double-quoted attribute values. Carriage
/// returns and tabs become character references so the parser's end-of-line and
/// attribute normalisation give back exactly the same string; characters XML 1.0 cannot
/// carry at all (most C0 controls, U+FFFE, U+FFFF) become U+FFFD.
pub fn escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#xD;"),
            '\t' => out.push_str("&#x9;"),
            '\n' => out.push_str("&#xA;"),
            c if is_xml_char(c) => out.push(c),
            _ => out.push('\u{fffd}'),
        }
    }
}

/// The XML 1.0 `Char` production.
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
}

struct W {
    out: String,
}

impl W {
    fn open(&mut self, name: &str, attrs: &[(&str, Option<&str>)]) {
        self.out.push('<');
        self.out.push_str(name);
        for (k, v) in attrs {
            if let Some(v) = v {
                self.out.push(' ');
                self.out.push_str(k);
                self.out.push_str("=\"");
                escape(v, &mut self.out);
                self.out.push('"');
            }
        }
        self.out.push('>');
    }

    fn close(&mut self, name: &str) {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
    }

    fn empty(&mut self, name: &str) {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push_str("/>");
    }

    fn leaf(&mut self, name: &str, attrs: &[(&str, Option<&str>)], text: &str) {
        self.open(name, attrs);
        escape(text, &mut self.out);
        self.close(name);
    }

    fn note(&mut self, name: &str, n: &Note) {
        self.leaf(name, &[("xml:lang", n.lang.as_deref())], &n.text);
    }

    fn fragments(&mut self, f: &[XmlFragment]) {
        for f in f {
            self.out.push_str(&f.xml);
        }
    }

    fn tuple(&mut self, t: &Tuple) {
        self.open("tuple", &[("id", Some(&t.id))]);
        self.open("status", &[]);
        if let Some(b) = t.status.basic {
            self.leaf("basic", &[], b.as_str());
        }
        self.fragments(&t.status.extensions);
        self.close("status");
        if let Some(d) = &t.device_id {
            self.leaf("dm:deviceID", &[], d);
        }
        self.fragments(&t.extensions);
        if let Some(c) = &t.contact {
            self.leaf("contact", &[("priority", c.priority.as_deref())], &c.uri);
        }
        for n in &t.notes {
            self.note("note", n);
        }
        if let Some(ts) = &t.timestamp {
            self.leaf("timestamp", &[], ts);
        }
        self.close("tuple");
    }

    fn person(&mut self, p: &Person) {
        self.open("dm:person", &[("id", Some(&p.id))]);
        if let Some(a) = &p.activities {
            self.open(
                "rpid:activities",
                &[
                    ("id", a.id.as_deref()),
                    ("from", a.from.as_deref()),
                    ("until", a.until.as_deref()),
                ],
            );
            for n in &a.notes {
                self.note("rpid:note", n);
            }
            for act in &a.list {
                match act {
                    Activity::Known(name) => self.empty(&format!("rpid:{name}")),
                    Activity::Other(n) => self.note("rpid:other", n),
                    Activity::Extension(f) => self.out.push_str(&f.xml),
                }
            }
            self.close("rpid:activities");
        }
        if let Some(u) = &p.user_input {
            let threshold = u.idle_threshold.map(|t| t.to_string());
            self.leaf(
                "rpid:user-input",
                &[
                    ("id", u.id.as_deref()),
                    ("idle-threshold", threshold.as_deref()),
                    ("last-input", u.last_input.as_deref()),
                ],
                u.state.as_str(),
            );
        }
        self.fragments(&p.extensions);
        for n in &p.notes {
            self.note("dm:note", n);
        }
        if let Some(ts) = &p.timestamp {
            self.leaf("dm:timestamp", &[], ts);
        }
        self.close("dm:person");
    }

    fn device(&mut self, d: &Device) {
        self.open("dm:device", &[("id", Some(&d.id))]);
        self.fragments(&d.extensions);
        if let Some(id) = &d.device_id {
            self.leaf("dm:deviceID", &[], id);
        }
        for n in &d.notes {
            self.note("dm:note", n);
        }
        if let Some(ts) = &d.timestamp {
            self.leaf("dm:timestamp", &[], ts);
        }
        self.close("dm:device");
    }
}

impl Presence {
    /// The document as `application/pidf+xml`, UTF-8, without white space between
    /// elements (it travels in UDP datagrams).
    pub fn to_xml(&self) -> String {
        let mut w = W {
            out: String::with_capacity(512),
        };
        w.out
            .push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        w.open(
            "presence",
            &[
                ("xmlns", Some(NS_PIDF)),
                ("xmlns:dm", Some(NS_DM)),
                ("xmlns:rpid", Some(NS_RPID)),
                ("entity", Some(&self.entity)),
            ],
        );
        for t in &self.tuples {
            w.tuple(t);
        }
        for n in &self.notes {
            w.note("note", n);
        }
        for p in &self.persons {
            w.person(p);
        }
        for d in &self.devices {
            w.device(d);
        }
        w.fragments(&self.extensions);
        w.close("presence");
        w.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(s: &str) -> String {
        let mut out = String::new();
        escape(s, &mut out);
        out
    }

    #[test]
    fn escapes_markup_and_normalised_whitespace() {
        assert_eq!(esc("</note><x>&"), "&lt;/note&gt;&lt;x&gt;&amp;");
        assert_eq!(esc("a\"b'c"), "a&quot;b&apos;c");
        assert_eq!(esc("\r\n\t"), "&#xD;&#xA;&#x9;");
        assert_eq!(esc("nul\u{0}bell\u{7}"), "nul\u{fffd}bell\u{fffd}");
        assert_eq!(esc("ünïcødé 🎉"), "ünïcødé 🎉");
    }

    #[test]
    fn minimal_document() {
        let doc = Presence {
            entity: "sip:a@example.com".into(),
            ..Presence::default()
        };
        assert_eq!(
            doc.to_xml(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" \
             xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\" \
             xmlns:rpid=\"urn:ietf:params:xml:ns:pidf:rpid\" entity=\"sip:a@example.com\"></presence>"
        );
    }
}
