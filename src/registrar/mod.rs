//! The registrar (RFC 3261 §10.3): canonical AORs ([`aor`]), bindings ([`binding`]), the
//! in-memory table with atomic per-AOR updates ([`table`]), expiry on a deadline queue
//! ([`expiry`]), the compact form each AOR is stored in ([`packed`], behind a one-word pointer: [`thin`]), write-behind persistence ([`persist`], its bounded queue: [`queue`]), the REGISTER handler
//! ([`service`]), its settings ([`config`]) and the served domains ([`domains`]).

pub mod aor;
pub mod bench_users;
pub mod binding;
pub mod cli;
pub mod config;
pub mod domains;
pub mod expiry;
pub mod packed;
pub mod persist;
pub mod queue;
pub mod service;
pub mod table;
pub mod thin;

pub use aor::Aor;
pub use binding::{Binding, Source};
pub use config::{Persistence, RegistrarConfig};
pub use domains::Domains;
pub use service::{BindingEvent, Registrar, RegistrarHandler};
pub use table::{
    Applied, BindingTable, Change, Expired, Limits, MaxContactsPolicy, Refused, Update,
};
