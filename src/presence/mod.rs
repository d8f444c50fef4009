//! Presence documents (issue 5, "PIDF composition"): the PIDF model ([`model`]), parsing
//! ([`pidf`]) and printing ([`print`]) with RPID and the RFC 4479 data model, and the
//! errors a body is refused with ([`error`]). No SIP here: PUBLISH and NOTIFY build on
//! these.

pub mod error;
pub mod model;
pub mod pidf;
pub mod print;

pub use error::PidfError;
pub use model::*;
pub use pidf::{Limits, parse};
