//! Property tests for PIDF text: whatever a user types as a note (markup, entities,
//! CDATA ends, line ends, any Unicode) comes back unchanged after printing and parsing,
//! and no input makes the parser panic.

use proptest::prelude::*;
use sipreg::presence::print::is_xml_char;
use sipreg::presence::{
    Activities, Activity, Basic, Limits, Note, Person, Presence, Status, Tuple, parse,
};

const SAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
    xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" xmlns:c="urn:example:caps" entity="sip:a@example.com">
  <tuple id="t1"><status><basic>open</basic><c:s>x</c:s></status><dm:deviceID>urn:uuid:1</dm:deviceID>
    <c:caps><c:audio/>text</c:caps><contact priority="0.5">sip:a@192.0.2.1</contact>
    <note xml:lang="en">hello &lt;world&gt;</note><timestamp>2026-12-01T20:00:00Z</timestamp></tuple>
  <note>top</note>
  <dm:person id="p"><rpid:activities><rpid:note>n</rpid:note><rpid:busy/><rpid:other>o</rpid:other></rpid:activities>
    <rpid:user-input idle-threshold="60">active</rpid:user-input><rpid:mood><rpid:happy/></rpid:mood>
    <dm:note>person note</dm:note><dm:timestamp>2026-12-01T20:00:00Z</dm:timestamp></dm:person>
  <dm:device id="d"><dm:deviceID>urn:uuid:1</dm:deviceID><dm:note>dev</dm:note></dm:device>
</presence>"#;

/// Characters XML can carry, with the troublesome ones made frequent.
fn xml_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => prop::sample::select(vec![
            '<', '>', '&', '"', '\'', ';', '#', '\r', '\n', '\t', ' ', ']', '\u{85}', '\u{2028}',
        ]),
        1 => Just('x'),
        2 => any::<char>().prop_filter("XML 1.0 Char", |c| is_xml_char(*c)),
    ]
}

fn xml_text() -> impl Strategy<Value = String> {
    prop::collection::vec(xml_char(), 0..40).prop_map(|v| v.into_iter().collect())
}

fn document(texts: &[String]) -> Presence {
    let t = |i: usize| texts[i % texts.len()].clone();
    Presence {
        entity: t(0),
        notes: vec![Note::new(t(1))],
        tuples: vec![Tuple {
            id: "t1".into(),
            status: Status {
                basic: Some(Basic::Open),
                extensions: Vec::new(),
            },
            notes: vec![Note {
                text: t(2),
                lang: Some(t(3)),
            }],
            ..Tuple::default()
        }],
        persons: vec![Person {
            id: "p1".into(),
            notes: vec![Note::new(t(4))],
            activities: Some(Activities {
                notes: vec![Note::new(t(5))],
                list: vec![Activity::Other(Note::new(t(6)))],
                from: Some(t(7)),
                ..Activities::default()
            }),
            ..Person::default()
        }],
        ..Presence::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn text_survives_print_and_parse(texts in prop::collection::vec(xml_text(), 8)) {
        let doc = document(&texts);
        let xml = doc.to_xml();
        let back = parse(xml.as_bytes(), &Limits { max_body: usize::MAX, ..Limits::default() });
        prop_assert_eq!(back, Ok(doc), "{}", xml);
    }

    /// Characters XML 1.0 cannot carry at all come back as U+FFFD; the rest unchanged.
    #[test]
    fn any_string_prints_to_a_parseable_document(s in any::<String>()) {
        let mut doc = document(&[String::from("sip:a@b")]);
        doc.notes = vec![Note::new(s.clone())];
        let back = Presence::parse(doc.to_xml().as_bytes());
        let want: String = s.chars().map(|c| if is_xml_char(c) { c } else { '\u{fffd}' }).collect();
        prop_assert_eq!(back.map(|d| d.notes[0].text.clone()), Ok(want));
    }

    #[test]
    fn parser_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Presence::parse(&bytes);
    }

    #[test]
    fn parser_never_panics_on_mutated_pidf(cut in 0usize..300, byte in any::<u8>()) {
        let mut body = document(&[String::from("a<&\r")]).to_xml().into_bytes();
        let at = cut % body.len();
        body[at] = byte;
        // Whatever is accepted prints to a document that reads back the same.
        if let Ok(doc) = Presence::parse(&body) {
            let xml = doc.to_xml();
            let unlimited = Limits { max_body: usize::MAX, ..Limits::default() };
            prop_assert_eq!(parse(xml.as_bytes(), &unlimited), Ok(doc), "{}", xml);
        }
    }

    #[test]
    fn accepted_documents_print_back_the_same(
        cut in 0usize..2000,
        insert in prop::sample::select(vec![
            " ", "&amp;", "&#xD;", "<x:e xmlns:x=\"urn:x\"/>", "<!-- c -->", "<e/>", "\r\n", "]]>",
        ]),
    ) {
        let base = SAMPLE;
        let at = cut % base.len();
        if !base.is_char_boundary(at) {
            return Ok(());
        }
        let body = format!("{}{}{}", &base[..at], insert, &base[at..]);
        if let Ok(doc) = Presence::parse(body.as_bytes()) {
            let xml = doc.to_xml();
            prop_assert_eq!(Presence::parse(xml.as_bytes()), Ok(doc), "{}", xml);
        }
    }
}
