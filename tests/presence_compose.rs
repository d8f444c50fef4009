//! Composition of one PIDF document per AOR (issue 5): the cases the issue lists, plus
//! de-duplication, timestamps and the binding-to-publication matching rule.

use sipreg::presence::{
    Activity, Basic, InputState, Presence, Publication, RegisteredDevice, compose,
};
use sipreg::registrar::{Binding, Source};
use sipreg::server::Transport;

const AOR: &str = "sip:alice@example.com";
const DESKTOP_UUID: &str = "urn:uuid:00000000-0000-1000-8000-00000000d001";
const MOBILE_UUID: &str = "urn:uuid:00000000-0000-1000-8000-00000000d002";
const NOW: u64 = 1_796_155_379; // 2026-12-01T20:02:59Z

fn doc(xml: &str) -> Presence {
    Presence::parse(xml.as_bytes()).expect("test document parses")
}

/// A device's publication: one tuple, and a person with the given activities, note and
/// user input (empty strings leave them out).
fn publication(
    tuple: &str,
    device: &str,
    contact: &str,
    activities: &[&str],
    note: &str,
    input: &str,
    at: u64,
) -> Publication {
    let acts: String = activities.iter().map(|a| format!("<rpid:{a}/>")).collect();
    let acts = if acts.is_empty() {
        String::new()
    } else {
        format!("<rpid:activities>{acts}</rpid:activities>")
    };
    let note = if note.is_empty() {
        String::new()
    } else {
        format!("<dm:note>{note}</dm:note>")
    };
    let input = if input.is_empty() {
        String::new()
    } else {
        format!("<rpid:user-input>{input}</rpid:user-input>")
    };
    let device = if device.is_empty() {
        String::new()
    } else {
        format!("<dm:deviceID>{device}</dm:deviceID>")
    };
    Publication {
        doc: doc(&format!(
            r#"<presence xmlns="urn:ietf:params:xml:ns:pidf"
                xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
                xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="{AOR}">
              <tuple id="{tuple}"><status><basic>open</basic></status>{device}
                <contact>{contact}</contact></tuple>
              <dm:person id="p-{tuple}">{acts}{input}{note}</dm:person>
            </presence>"#
        )),
        published_at: at,
    }
}

fn registered(contact: &str, instance: Option<&str>, at: u64) -> RegisteredDevice {
    RegisteredDevice {
        contact: contact.into(),
        instance: instance.map(|i| format!("<{i}>")),
        registered_at: at,
    }
}

fn activities(p: &Presence) -> Vec<Activity> {
    p.persons
        .first()
        .and_then(|x| x.activities.as_ref())
        .map(|a| a.list.clone())
        .unwrap_or_default()
}

fn tuple_ids(p: &Presence) -> Vec<&str> {
    p.tuples.iter().map(|t| t.id.as_str()).collect()
}

/// Every composed document is printable and parses back to itself.
fn check_prints(p: &Presence) {
    let xml = p.to_xml();
    assert_eq!(
        &Presence::parse(xml.as_bytes()).expect("parses"),
        p,
        "{xml}"
    );
}

fn desktop(at: u64) -> Publication {
    publication(
        "desk",
        DESKTOP_UUID,
        "sip:alice@192.0.2.10:5060",
        &["away"],
        "back at 3",
        "idle",
        at,
    )
}

fn mobile(at: u64) -> Publication {
    publication(
        "mob",
        "",
        "sip:alice@198.51.100.7:41000;transport=tcp",
        &["on-the-phone"],
        "",
        "active",
        at,
    )
}

fn bindings() -> Vec<RegisteredDevice> {
    vec![
        registered("sip:alice@192.0.2.10:5060", Some(DESKTOP_UUID), NOW - 500),
        // Matches the mobile's publication by contact (RFC 3261 URI comparison).
        registered(
            "sip:alice@198.51.100.7:41000;transport=TCP",
            Some(MOBILE_UUID),
            NOW - 400,
        ),
    ]
}

#[test]
fn two_devices_publishing_different_activities() {
    let pubs = [desktop(NOW - 60), mobile(NOW - 30)];
    let p = compose(AOR, &pubs, &bindings(), NOW);
    assert_eq!(p.entity, AOR);
    // Both published tuples, and no extra registered-only tuple: both bindings matched.
    assert_eq!(tuple_ids(&p), ["desk", "mob"]);
    assert_eq!(p.persons.len(), 1, "one person");
    assert_eq!(activities(&p), [Activity::Known("on-the-phone")]);
    let person = &p.persons[0];
    // The most recent publication has no note: the desktop's stays.
    assert_eq!(person.notes[0].text, "back at 3");
    assert_eq!(
        person.user_input.as_ref().map(|u| u.state),
        Some(InputState::Active)
    );
    assert_eq!(person.timestamp.as_deref(), Some("2026-12-01T20:02:29Z"));
    // The order of the slice does not matter, only the publication times.
    let swapped = compose(
        AOR,
        &[mobile(NOW - 30), desktop(NOW - 60)],
        &bindings(),
        NOW,
    );
    assert_eq!(activities(&swapped), activities(&p));
    check_prints(&p);
}

#[test]
fn activity_priority_is_phone_busy_meeting_other_away() {
    let one = |acts: &[&str], at| publication("t", "", "sip:x@h", acts, "", "", at);
    let merge = |sets: &[&[&str]]| {
        let pubs: Vec<Publication> = sets
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let mut p = one(a, NOW + i as u64);
                p.doc.tuples[0].id = format!("t{i}");
                p
            })
            .collect();
        activities(&compose(AOR, &pubs, &[], NOW))
    };
    let k = Activity::Known;
    assert_eq!(merge(&[&["away"], &["busy"]]), [k("busy")]);
    assert_eq!(merge(&[&["meeting"], &["busy"], &["away"]]), [k("busy")]);
    assert_eq!(merge(&[&["on-the-phone"], &["busy"]]), [k("on-the-phone")]);
    assert_eq!(merge(&[&["away"], &["meeting"]]), [k("meeting")]);
    assert_eq!(merge(&[&["away"], &["vacation"]]), [k("vacation")]);
    assert_eq!(merge(&[&["unknown"], &["away"]]), [k("away")]);
    // Equal rank: all of them, most recent first, once each.
    assert_eq!(
        merge(&[&["vacation"], &["travel"], &["vacation"]]),
        [k("vacation"), k("travel")]
    );
    // Nobody published an activity: available, no activities element.
    assert_eq!(merge(&[&[], &[]]), []);
    let p = compose(AOR, &[one(&[], NOW)], &[], NOW);
    assert!(p.persons[0].activities.is_none());
}

#[test]
fn device_that_only_registers_shows_online() {
    let devs = [registered(
        "sip:alice@203.0.113.5:5062",
        Some(DESKTOP_UUID),
        NOW - 100,
    )];
    let p = compose(AOR, &[], &devs, NOW);
    assert_eq!(p.tuples.len(), 1);
    let t = &p.tuples[0];
    assert_eq!(t.status.basic, Some(Basic::Open));
    assert_eq!(
        t.contact.as_ref().map(|c| c.uri.as_str()),
        Some("sip:alice@203.0.113.5:5062")
    );
    assert_eq!(t.device_id.as_deref(), Some(DESKTOP_UUID));
    assert_eq!(t.timestamp.as_deref(), Some("2026-12-01T20:01:19Z"));
    assert!(p.persons.is_empty());
    // Stable id: the same binding composes to the same tuple id every time, and a
    // phone that re-registers from a new address keeps it (the id follows the instance).
    let moved = [registered(
        "sip:alice@203.0.113.99:5062",
        Some(DESKTOP_UUID),
        NOW,
    )];
    assert_eq!(compose(AOR, &[], &moved, NOW).tuples[0].id, t.id);
    check_prints(&p);
}

#[test]
fn registered_and_published_devices_side_by_side() {
    // Desktop published (matched by +sip.instance = deviceID), a desk phone only
    // registered, without an instance.
    let devs = [
        registered("sip:alice@192.0.2.99:5060", Some(DESKTOP_UUID), NOW - 500),
        registered("sip:alice@192.0.2.50:5060", None, NOW - 200),
    ];
    let p = compose(AOR, &[desktop(NOW - 60)], &devs, NOW);
    assert_eq!(p.tuples.len(), 2);
    assert_eq!(p.tuples[0].id, "desk");
    let reg = &p.tuples[1];
    assert_eq!(reg.status.basic, Some(Basic::Open));
    assert_eq!(
        reg.contact.as_ref().map(|c| c.uri.as_str()),
        Some("sip:alice@192.0.2.50:5060")
    );
    assert_eq!(reg.device_id, None);
    check_prints(&p);
}

#[test]
fn publication_expiry_is_the_callers_list() {
    let devs = bindings();
    let both = compose(AOR, &[desktop(NOW - 60), mobile(NOW - 30)], &devs, NOW);
    assert_eq!(activities(&both), [Activity::Known("on-the-phone")]);
    // The mobile's publication expired: the caller passes only the desktop's. The mobile
    // is still registered, so it is back as a registered-only tuple.
    let p = compose(AOR, &[desktop(NOW - 60)], &devs, NOW);
    assert_eq!(activities(&p), [Activity::Known("away")]);
    assert_eq!(p.tuples.len(), 2);
    assert_eq!(p.tuples[0].id, "desk");
    assert_eq!(p.tuples[1].device_id.as_deref(), Some(MOBILE_UUID));
    assert_eq!(
        p.persons[0].user_input.as_ref().map(|u| u.state),
        Some(InputState::Idle)
    );
    check_prints(&p);
}

#[test]
fn device_unregisters() {
    let devs = bindings();
    let p = compose(AOR, &[desktop(NOW - 60)], &devs, NOW);
    assert_eq!(p.tuples.len(), 2);
    // The mobile unregisters: its registered-only tuple goes.
    let p = compose(AOR, &[desktop(NOW - 60)], &devs[..1], NOW);
    assert_eq!(tuple_ids(&p), ["desk"]);
    // The desktop's publication stays until it expires or is removed.
    let p = compose(AOR, &[desktop(NOW - 60)], &[], NOW);
    assert_eq!(tuple_ids(&p), ["desk"]);
    // And the last registered-only device leaving leaves the user closed.
    let p = compose(AOR, &[], &devs[1..], NOW);
    assert_eq!(p.tuples[0].status.basic, Some(Basic::Open));
    let p = compose(AOR, &[], &[], NOW);
    assert_eq!(p.tuples[0].status.basic, Some(Basic::Closed));
}

#[test]
fn nothing_at_all_is_one_closed_tuple() {
    let p = compose(AOR, &[], &[], NOW);
    assert_eq!(p.entity, AOR);
    assert_eq!(p.tuples.len(), 1);
    assert_eq!(p.tuples[0].status.basic, Some(Basic::Closed));
    assert_eq!(p.tuples[0].contact, None);
    assert_eq!(
        p.tuples[0].timestamp.as_deref(),
        Some("2026-12-01T20:02:59Z")
    );
    assert!(p.persons.is_empty() && p.devices.is_empty() && p.notes.is_empty());
    let xml = p.to_xml();
    assert!(xml.contains("<basic>closed</basic>"), "{xml}");
    assert!(xml.contains(r#"entity="sip:alice@example.com""#));
    check_prints(&p);
}

#[test]
fn tuples_are_deduplicated_by_id_most_recent_wins() {
    let old = publication("same", "", "sip:a@old", &["busy"], "", "", NOW - 100);
    let mut new = publication("same", "", "sip:a@new", &["away"], "", "", NOW - 10);
    new.doc.tuples[0].status.basic = Some(Basic::Closed);
    for pubs in [[old.clone(), new.clone()], [new.clone(), old.clone()]] {
        let p = compose(AOR, &pubs, &[], NOW);
        assert_eq!(p.tuples.len(), 1);
        let t = &p.tuples[0];
        assert_eq!(t.status.basic, Some(Basic::Closed));
        assert_eq!(
            t.contact.as_ref().map(|c| c.uri.as_str()),
            Some("sip:a@new")
        );
    }
    // Same second: the later in the slice wins.
    let mut a = old.clone();
    a.published_at = NOW;
    let mut b = new.clone();
    b.published_at = NOW;
    let p = compose(AOR, &[a.clone(), b.clone()], &[], NOW);
    assert_eq!(p.tuples[0].status.basic, Some(Basic::Closed));
    let p = compose(AOR, &[b, a], &[], NOW);
    assert_eq!(p.tuples[0].status.basic, Some(Basic::Open));
}

#[test]
fn timestamps_on_tuples() {
    let mut stamped = mobile(NOW - 30);
    stamped.doc.tuples[0].timestamp = Some("2026-12-01T19:00:00Z".into());
    let p = compose(AOR, &[desktop(NOW - 60), stamped], &[], NOW);
    // Unstamped: the publication's time. Stamped by the device: its own.
    assert_eq!(
        p.tuples[0].timestamp.as_deref(),
        Some("2026-12-01T20:01:59Z")
    );
    assert_eq!(
        p.tuples[1].timestamp.as_deref(),
        Some("2026-12-01T19:00:00Z")
    );
    assert!(p.tuples.iter().all(|t| t.timestamp.is_some()));
}

#[test]
fn unknown_namespaces_and_devices_survive_composition() {
    let pub1 = Publication {
        doc: doc(r#"<presence xmlns="urn:ietf:params:xml:ns:pidf"
            xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
            xmlns:caps="urn:ietf:params:xml:ns:pidf:caps" entity="sip:alice@example.com">
          <tuple id="t"><status><basic>open</basic></status>
            <caps:servcaps><caps:audio>true</caps:audio></caps:servcaps></tuple>
          <dm:device id="d1"><dm:deviceID>urn:uuid:1</dm:deviceID></dm:device>
        </presence>"#),
        published_at: NOW,
    };
    let p = compose(AOR, &[pub1], &[], NOW);
    assert_eq!(p.tuples[0].extensions[0].local_name, "servcaps");
    assert_eq!(p.devices[0].id, "d1");
    let xml = p.to_xml();
    assert!(xml.contains(
        r#"<caps:servcaps xmlns:caps="urn:ietf:params:xml:ns:pidf:caps"><caps:audio>true</caps:audio></caps:servcaps>"#
    ));
    check_prints(&p);
}

#[test]
fn registered_device_from_a_binding() {
    let b = Binding {
        id: 7,
        uri: "sip:alice@192.0.2.4:5060;transport=tcp".into(),
        instance: Some(format!("<{MOBILE_UUID}>").into()),
        reg_id: Some(1),
        q: None,
        expires_at: NOW + 3600,
        call_id: "c".into(),
        cseq: 1,
        path: Vec::new(),
        source: Source {
            transport: Transport::Tcp,
            addr: "192.0.2.4:5060".parse().expect("address"),
            connection: Some(3),
        },
        user_agent: None,
        registered_at: NOW - 5,
    };
    let d = RegisteredDevice::from(&b);
    assert_eq!(d.contact, "sip:alice@192.0.2.4:5060;transport=tcp");
    assert_eq!(d.registered_at, NOW - 5);
    // The mobile publishes with its instance as deviceID: matched, no extra tuple.
    let p = compose(
        AOR,
        &[publication(
            "m",
            MOBILE_UUID,
            "sip:elsewhere@h",
            &[],
            "",
            "",
            NOW,
        )],
        &[d],
        NOW,
    );
    assert_eq!(tuple_ids(&p), ["m"]);
}

/// The issue's `multi_device_presence` example: available, busy and away devices, then
/// the busy one goes away.
#[test]
fn three_devices_available_busy_away() {
    let desk = publication(
        "desk",
        DESKTOP_UUID,
        "sip:alice@192.0.2.10",
        &[],
        "",
        "active",
        NOW - 30,
    );
    let mob = publication(
        "mob",
        MOBILE_UUID,
        "sip:alice@198.51.100.7",
        &["busy"],
        "in a call",
        "",
        NOW - 20,
    );
    let third = publication(
        "tab",
        "",
        "sip:alice@203.0.113.3",
        &["away"],
        "",
        "idle",
        NOW - 10,
    );
    let p = compose(AOR, &[desk.clone(), mob, third.clone()], &[], NOW);
    assert_eq!(activities(&p), [Activity::Known("busy")]);
    assert_eq!(p.persons[0].notes[0].text, "in a call");
    let xml = p.to_xml();
    assert_eq!(xml.matches("<dm:person ").count(), 1, "{xml}");
    assert_eq!(xml.matches("<tuple ").count(), 3);
    assert!(xml.contains("<rpid:activities><rpid:busy/></rpid:activities>"));
    // The mobile's publication is gone: away remains.
    let p = compose(AOR, &[desk, third], &[], NOW);
    assert_eq!(activities(&p), [Activity::Known("away")]);
    assert!(p.persons[0].notes.is_empty());
    check_prints(&p);
}
