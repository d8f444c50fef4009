//! Presence (issue 5): PUBLISH (RFC 3903), SUBSCRIBE/NOTIFY (RFC 6665, RFC 3856) and one
//! composed PIDF document per AOR.
//!
//! Documents: the PIDF model ([`model`]), parsing ([`pidf`]) and printing
//! ([`mod@print`]) with RPID and the RFC 4479 data model, the errors a body is refused
//! with ([`error`]), and the one composed document a watcher of an AOR sees
//! ([`mod@compose`], stamped by [`time`]).
//!
//! SIP: the `[presence]` settings ([`config`]); the publications and their entity-tags
//! ([`publications`]) and the PUBLISH handler ([`publish`]); the subscriptions
//! ([`subscriptions`]), the SUBSCRIBE handler ([`subscribe`]) with sipreg's own Contact
//! ([`contact`]) and the NOTIFYs sipreg sends as a UAC ([`notifier`]), ended with their
//! WebSocket ([`flow`]); the service tying them to the registrar's bindings ([`service`])
//! and the handler the SIP core calls ([`handler`]).

pub mod compose;
pub mod config;
pub mod contact;
pub mod error;
pub mod flow;
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
