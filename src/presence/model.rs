//! The PIDF document model: RFC 3863 (`presence`, `tuple`, `status`, `basic`, `contact`,
//! `note`, `timestamp`), the RFC 4479 data model (`dm:person`, `dm:device`,
//! `dm:deviceID`) and the RPID elements sipreg reads (RFC 4480 `activities`,
//! `user-input`).
//!
//! Everything else is kept as an [`XmlFragment`] where it was found, so a document
//! survives a parse and print without losing what sipreg does not understand.

/// The media type of a PIDF body (RFC 3863 §7).
pub const CONTENT_TYPE: &str = "application/pidf+xml";

/// `urn:ietf:params:xml:ns:pidf` (RFC 3863).
pub const NS_PIDF: &str = "urn:ietf:params:xml:ns:pidf";
/// `urn:ietf:params:xml:ns:pidf:data-model` (RFC 4479).
pub const NS_DM: &str = "urn:ietf:params:xml:ns:pidf:data-model";
/// `urn:ietf:params:xml:ns:pidf:rpid` (RFC 4480).
pub const NS_RPID: &str = "urn:ietf:params:xml:ns:pidf:rpid";

/// A whole PIDF document.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Presence {
    /// The presentity (`entity` attribute), e.g. `sip:alice@example.com`.
    pub entity: String,
    pub tuples: Vec<Tuple>,
    /// Notes directly under `presence`.
    pub notes: Vec<Note>,
    pub persons: Vec<Person>,
    pub devices: Vec<Device>,
    /// Other children of `presence`, in document order.
    pub extensions: Vec<XmlFragment>,
}

/// A `tuple`: one service of the presentity (RFC 3863 §4.1.2), a "service" in RFC 4479.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tuple {
    pub id: String,
    pub status: Status,
    /// `dm:deviceID`: the device the service runs on (RFC 4479 §6.2.3).
    pub device_id: Option<String>,
    pub contact: Option<Contact>,
    pub notes: Vec<Note>,
    /// RFC 3339, as written.
    pub timestamp: Option<String>,
    /// Other children (unknown namespaces and unknown names in known ones), in order.
    pub extensions: Vec<XmlFragment>,
}

/// `status`: `basic` and whatever status extensions came with it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Status {
    pub basic: Option<Basic>,
    pub extensions: Vec<XmlFragment>,
}

/// `basic`: the only status RFC 3863 defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basic {
    Open,
    Closed,
}

impl Basic {
    pub fn as_str(self) -> &'static str {
        match self {
            Basic::Open => "open",
            Basic::Closed => "closed",
        }
    }
}

/// `contact` with its optional `priority` (a qvalue, kept as written).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Contact {
    pub uri: String,
    pub priority: Option<String>,
}

/// `note` (any of the three namespaces) with its `xml:lang`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Note {
    pub text: String,
    pub lang: Option<String>,
}

impl Note {
    pub fn new(text: impl Into<String>) -> Note {
        Note {
            text: text.into(),
            lang: None,
        }
    }
}

/// `dm:person`: the human behind the devices (RFC 4479 §6.1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Person {
    pub id: String,
    pub activities: Option<Activities>,
    pub user_input: Option<UserInput>,
    /// `dm:note` children.
    pub notes: Vec<Note>,
    pub timestamp: Option<String>,
    /// Other RPID elements (mood, place-type, ...) and foreign ones, in order.
    pub extensions: Vec<XmlFragment>,
}

/// `dm:device` (RFC 4479 §6.3).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Device {
    pub id: String,
    pub device_id: Option<String>,
    pub notes: Vec<Note>,
    pub timestamp: Option<String>,
    pub extensions: Vec<XmlFragment>,
}

/// `rpid:activities` (RFC 4480 §3.2).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Activities {
    pub id: Option<String>,
    pub from: Option<String>,
    pub until: Option<String>,
    /// `rpid:note` children.
    pub notes: Vec<Note>,
    pub list: Vec<Activity>,
}

/// One activity. RPID has no "available": a person without activities is available.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Activity {
    /// One of the RFC 4480 §3.2 names, by its element name (see [`ACTIVITY_NAMES`]).
    Known(&'static str),
    /// `rpid:other` with its text.
    Other(Note),
    /// Any other element (an extension activity), kept as it came.
    Extension(XmlFragment),
}

/// The activity element names of RFC 4480 §3.2, `other` aside.
pub const ACTIVITY_NAMES: &[&str] = &[
    "appointment",
    "away",
    "breakfast",
    "busy",
    "dinner",
    "holiday",
    "in-transit",
    "looking-for-work",
    "meal",
    "meeting",
    "on-the-phone",
    "performance",
    "permanent-absence",
    "playing",
    "presentation",
    "shopping",
    "sleeping",
    "spectator",
    "steering",
    "travel",
    "tv",
    "unknown",
    "vacation",
    "working",
    "worship",
];

impl Activity {
    /// The activity for an RFC 4480 element name, if it is one.
    pub fn known(name: &str) -> Option<Activity> {
        ACTIVITY_NAMES
            .iter()
            .find(|n| **n == name)
            .map(|n| Activity::Known(n))
    }
}

/// `rpid:user-input` (RFC 4480 §3.13).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInput {
    pub state: InputState,
    pub id: Option<String>,
    /// RFC 3339, as written.
    pub last_input: Option<String>,
    /// Seconds.
    pub idle_threshold: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputState {
    Active,
    Idle,
}

impl InputState {
    pub fn as_str(self) -> &'static str {
        match self {
            InputState::Active => "active",
            InputState::Idle => "idle",
        }
    }
}

/// An element sipreg does not interpret, kept as well-formed XML that stands alone: the
/// namespace declarations it relies on from its ancestors are copied onto its root, so
/// it can be printed into any other document and still mean the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlFragment {
    /// Namespace of the root element (empty when it has none).
    pub namespace: String,
    /// Local name of the root element.
    pub local_name: String,
    /// The element as XML text.
    pub xml: String,
}
