//! The registrar (RFC 3261 §10.3): canonical AORs ([`aor`]), bindings ([`binding`]), the
//! in-memory table with atomic per-AOR updates ([`table`]).

pub mod aor;
pub mod binding;
pub mod expiry;
pub mod table;

pub use aor::Aor;
pub use binding::{Binding, Source};
pub use table::{BindingTable, Change, Limits, MaxContactsPolicy, Refused, Update};
