//! Presence documents (issue 5, "PIDF composition"): the PIDF model ([`model`]),
//! parsing ([`pidf`]) and printing ([`mod@print`]) with RPID and the RFC 4479 data
//! model, the errors a body is refused with ([`error`]), and the one composed document a
//! watcher of an AOR sees ([`mod@compose`], stamped by [`time`]). No SIP here: PUBLISH
//! and NOTIFY build on these.

pub mod compose;
pub mod config;
pub mod error;
pub mod handler;
pub mod model;
pub mod notifier;
pub mod pidf;
pub mod print;
pub mod publications;
pub mod publish;
pub mod service;
pub mod subscribe;
pub mod subscriptions;
pub mod time;

pub use compose::{Publication, RegisteredDevice, compose};
pub use config::{Policy, PresenceConfig};
pub use error::PidfError;
pub use handler::PresenceHandler;
pub use model::*;
pub use pidf::{Limits, parse};
pub use service::PresenceService;
