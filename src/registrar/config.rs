//! The `[registrar]` section: expiry bounds, the per-AOR contact limit, persistence mode
//! and the write-behind queue's bound.

use serde::Deserialize;

use super::table::{Limits, MaxContactsPolicy};

/// When bindings reach the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Persistence {
    /// In batches after the answer (the default: the hot path never waits on the database).
    WriteBehind,
    /// Before the 200 OK is sent.
    Sync,
    /// Never: bindings live in memory only and are gone after a restart (Kamailio's
    /// usrloc `db_mode 0`), for labs and CI that need no durability.
    Memory,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistrarConfig {
    pub default_expires: u32,
    pub min_expires: u32,
    pub max_expires: u32,
    pub max_contacts: usize,
    pub max_contacts_policy: MaxContactsPolicy,
    pub persistence: Persistence,
    pub batch_max_ms: u64,
    pub batch_max_changes: usize,
    /// Most bindings with changes waiting in the write-behind queue (each binding takes
    /// one slot however often it changes); beyond, REGISTERs that would change bindings
    /// get 503 with Retry-After.
    pub write_behind_max: usize,
    /// The Retry-After (seconds) of a 503 given because bindings cannot be stored now.
    pub retry_after_secs: u32,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        RegistrarConfig {
            default_expires: 3600,
            min_expires: 60,
            max_expires: 86_400,
            max_contacts: 10,
            max_contacts_policy: MaxContactsPolicy::Reject,
            persistence: Persistence::WriteBehind,
            batch_max_ms: 100,
            batch_max_changes: 1000,
            write_behind_max: 100_000,
            retry_after_secs: 30,
        }
    }
}

impl RegistrarConfig {
    pub fn limits(&self) -> Limits {
        Limits {
            default_expires: self.default_expires,
            min_expires: self.min_expires,
            max_expires: self.max_expires.max(self.min_expires),
            max_contacts: self.max_contacts.max(1),
            policy: self.max_contacts_policy,
        }
    }
}
