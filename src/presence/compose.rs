//! The one PIDF document a watcher of an AOR sees, composed from the live publications of
//! the AOR's devices and its registered bindings (issue 5). Pure data in, document out:
//! the caller decides what is live (expired publications and bindings are simply not
//! passed) and recomposes on every change.
//!
//! Rules:
//!
//! - **Tuples**: every tuple of every publication, de-duplicated by tuple `id`; the most
//!   recent publication wins (ties: the later one in the slice). A tuple without a
//!   `timestamp` gets its publication's time; one the device stamped keeps its own.
//!   `dm:device` elements are merged the same way.
//! - **Person**: one `dm:person` when any publication has one. Its activities are those
//!   of the highest [`activity_rank`]: on-the-phone > busy > meeting > any other
//!   activity > away > unknown > none (RPID has no "available": no activity is
//!   available). User input is `active` if any device says so, else the most recent
//!   `idle`. The note comes from the most recent publication whose person has a note —
//!   so a desk phone that never sets notes does not wipe the one set on a desktop — and
//!   other person elements (mood, place, ...) from the most recent publication with a
//!   person.
//! - **Registered devices**: a binding that matches no publication becomes a tuple with
//!   `basic` open, its contact and (if it has one) its instance as `dm:deviceID`, so a
//!   phone that only registers shows online. A binding matches a publication when its
//!   `+sip.instance` equals a `dm:deviceID` of one of the publication's tuples or devices
//!   (angle brackets dropped, case-insensitive), or its contact URI is equivalent
//!   (RFC 3261 §19.1.4; other schemes byte for byte) to a tuple's `contact`. A device
//!   that unregisters loses its registered-only tuple; what it published stays until
//!   the publication expires or is removed (PUBLISH state is its own, RFC 3903).
//! - **Nothing at all**: no tuple from either source gives one tuple with `basic`
//!   closed.
//! - `entity` is the AOR; presence-level notes and extensions come from the most recent
//!   publication that has them.

use std::collections::HashMap;

use bytestring::ByteString;

use super::model::*;
use super::time::rfc3339;
use crate::registrar::Binding;
use crate::sip::Uri;

/// A live publication of one device: its parsed body and when it was received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    pub doc: Presence,
    /// Unix seconds when this body arrived (a refresh without a body keeps it).
    pub published_at: u64,
}

/// A registered contact of the AOR, as much of a binding as composition needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredDevice {
    /// The Contact URI as registered.
    pub contact: String,
    /// `+sip.instance`, with or without its angle brackets.
    pub instance: Option<String>,
    /// Unix seconds, the tuple's timestamp.
    pub registered_at: u64,
}

impl From<&Binding> for RegisteredDevice {
    fn from(b: &Binding) -> Self {
        RegisteredDevice {
            contact: b.uri.to_string(),
            instance: b.instance.as_deref().map(str::to_string),
            registered_at: b.registered_at,
        }
    }
}

/// Rank of an activity in the merge (higher wins); see the module documentation.
pub fn activity_rank(a: &Activity) -> u8 {
    match a {
        Activity::Known("on-the-phone") => 6,
        Activity::Known("busy") => 5,
        Activity::Known("meeting") => 4,
        Activity::Known("away") => 2,
        Activity::Known("unknown") => 1,
        _ => 3,
    }
}

/// The composed document for `aor`. `now` (Unix seconds) stamps the closed tuple of a
/// user with nothing registered or published.
pub fn compose(
    aor: &str,
    publications: &[Publication],
    devices: &[RegisteredDevice],
    now: u64,
) -> Presence {
    // Oldest first, so later ones overwrite; a stable sort keeps slice order on ties.
    let mut pubs: Vec<&Publication> = publications.iter().collect();
    pubs.sort_by_key(|p| p.published_at);

    let mut doc = Presence {
        entity: aor.to_string(),
        ..Presence::default()
    };
    let mut tuple_at: HashMap<String, usize> = HashMap::new();
    let mut device_at: HashMap<String, usize> = HashMap::new();
    for p in &pubs {
        for t in &p.doc.tuples {
            let mut t = t.clone();
            if t.timestamp.is_none() {
                t.timestamp = Some(rfc3339(p.published_at));
            }
            upsert(&mut doc.tuples, &mut tuple_at, t.id.clone(), t);
        }
        for d in &p.doc.devices {
            upsert(&mut doc.devices, &mut device_at, d.id.clone(), d.clone());
        }
        if !p.doc.notes.is_empty() {
            doc.notes = p.doc.notes.clone();
        }
        if !p.doc.extensions.is_empty() {
            doc.extensions = p.doc.extensions.clone();
        }
    }
    if let Some(person) = person(aor, &pubs) {
        doc.persons.push(person);
    }

    for d in devices {
        if pubs.iter().any(|p| matches(d, &p.doc)) {
            continue;
        }
        let id = format!("r{:016x}", fnv(d.instance.as_deref().unwrap_or(&d.contact)));
        if tuple_at.contains_key(&id) {
            continue;
        }
        tuple_at.insert(id.clone(), doc.tuples.len());
        doc.tuples.push(Tuple {
            id,
            status: Status {
                basic: Some(Basic::Open),
                extensions: Vec::new(),
            },
            device_id: d.instance.as_deref().map(|i| bare(i).to_string()),
            contact: Some(Contact {
                uri: d.contact.clone(),
                priority: None,
            }),
            timestamp: Some(rfc3339(d.registered_at)),
            ..Tuple::default()
        });
    }

    if doc.tuples.is_empty() {
        doc.tuples.push(Tuple {
            id: format!("c{:016x}", fnv(aor)),
            status: Status {
                basic: Some(Basic::Closed),
                extensions: Vec::new(),
            },
            timestamp: Some(rfc3339(now)),
            ..Tuple::default()
        });
    }
    doc
}

fn upsert<T>(list: &mut Vec<T>, at: &mut HashMap<String, usize>, id: String, item: T) {
    match at.get(&id) {
        Some(&i) => list[i] = item,
        None => {
            at.insert(id, list.len());
            list.push(item);
        }
    }
}

/// The merged person of publications sorted oldest first.
fn person(aor: &str, pubs: &[&Publication]) -> Option<Person> {
    let latest = pubs.iter().rev().find(|p| !p.doc.persons.is_empty())?;
    let mut out = Person {
        id: format!("p{:016x}", fnv(aor)),
        timestamp: Some(rfc3339(latest.published_at)),
        extensions: latest
            .doc
            .persons
            .iter()
            .flat_map(|x| x.extensions.iter().cloned())
            .collect(),
        ..Person::default()
    };

    // Newest first from here on, so ties in rank list the most recent first.
    let persons = || {
        pubs.iter()
            .rev()
            .flat_map(|p| p.doc.persons.iter())
            .collect::<Vec<_>>()
    };
    let top = persons()
        .iter()
        .filter_map(|x| x.activities.as_ref())
        .flat_map(|a| a.list.iter())
        .map(activity_rank)
        .max();
    if let Some(top) = top {
        let mut merged = Activities::default();
        for a in persons().iter().filter_map(|x| x.activities.as_ref()) {
            let mut contributed = false;
            for act in a.list.iter().filter(|act| activity_rank(act) == top) {
                contributed = true;
                if !merged.list.contains(act) {
                    merged.list.push(act.clone());
                }
            }
            if contributed && merged.notes.is_empty() {
                merged.notes = a.notes.clone();
            }
        }
        out.activities = Some(merged);
    }

    let inputs: Vec<&UserInput> = persons()
        .into_iter()
        .filter_map(|x| x.user_input.as_ref())
        .collect();
    out.user_input = inputs
        .iter()
        .find(|u| u.state == InputState::Active)
        .or_else(|| inputs.first())
        .map(|u| (*u).clone());

    if let Some(p) = pubs
        .iter()
        .rev()
        .find(|p| p.doc.persons.iter().any(|x| !x.notes.is_empty()))
    {
        out.notes = p
            .doc
            .persons
            .iter()
            .flat_map(|x| x.notes.iter().cloned())
            .collect();
    }
    Some(out)
}

/// Whether binding `d` is one of the devices that published `doc`.
fn matches(d: &RegisteredDevice, doc: &Presence) -> bool {
    if let Some(instance) = d.instance.as_deref().map(bare) {
        let ids = doc
            .tuples
            .iter()
            .filter_map(|t| t.device_id.as_deref())
            .chain(doc.devices.iter().filter_map(|x| x.device_id.as_deref()));
        for id in ids {
            if bare(id).eq_ignore_ascii_case(instance) {
                return true;
            }
        }
    }
    doc.tuples
        .iter()
        .filter_map(|t| t.contact.as_ref())
        .any(|c| same_uri(&c.uri, &d.contact))
}

fn bare(s: &str) -> &str {
    let s = s.trim();
    s.strip_prefix('<')
        .and_then(|s| s.strip_suffix('>'))
        .unwrap_or(s)
}

fn same_uri(a: &str, b: &str) -> bool {
    let (a, b) = (bare(a), bare(b));
    let (sa, sb) = (ByteString::from(a), ByteString::from(b));
    match (Uri::parse(&sa, a), Uri::parse(&sb, b)) {
        (Ok(Uri::Sip(x)), Ok(Uri::Sip(y))) => x.equivalent(&y),
        _ => a == b,
    }
}

/// FNV-1a, 64 bits: stable across runs and Rust versions, so generated ids do not change
/// between two NOTIFYs of the same state.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_follow_the_documented_order() {
        let r = |n: &str| Activity::known(n).map(|a| activity_rank(&a)).unwrap_or(0);
        assert!(r("on-the-phone") > r("busy"));
        assert!(r("busy") > r("meeting"));
        assert!(r("meeting") > r("vacation"));
        assert!(r("vacation") > r("away"));
        assert!(r("away") > r("unknown"));
        let other = Activity::Other(Note::new("bowling"));
        assert_eq!(activity_rank(&other), r("vacation"));
    }

    #[test]
    fn uri_and_instance_matching() {
        assert!(same_uri(
            "sip:a@192.0.2.1:5060;transport=TCP",
            "<sip:a@192.0.2.1:5060;transport=tcp>"
        ));
        assert!(!same_uri("sip:a@192.0.2.1", "sip:a@192.0.2.2"));
        assert!(same_uri("tel:+123", "tel:+123"));
        assert_eq!(bare("<urn:uuid:x>"), "urn:uuid:x");
        assert_eq!(fnv(""), 0xcbf2_9ce4_8422_2325);
    }
}
