//! `[trace]` in the config file: where the SIP message trace goes.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

/// The SIP message trace; off unless `file` or `hep` is set.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TraceConfig {
    /// Append every message received and sent to this file (flag --sip-trace).
    pub file: Option<PathBuf>,
    /// Send every message to this HEPv3 collector (Homer) over UDP.
    pub hep: Option<SocketAddr>,
    /// The capture agent id in HEP packets (chunk 12).
    pub hep_capture_id: u32,
    /// Messages waiting for the writer at most; beyond, messages are left out of the
    /// trace (counted and logged), never delaying SIP.
    pub queue: usize,
}

impl Default for TraceConfig {
    fn default() -> Self {
        TraceConfig {
            file: None,
            hep: None,
            hep_capture_id: 2001,
            queue: 10_000,
        }
    }
}

impl TraceConfig {
    /// Whether anything is traced.
    pub fn is_on(&self) -> bool {
        self.file.is_some() || self.hep.is_some()
    }

    /// Values that parse but cannot work, for `sipreg config check`.
    pub fn validate(&self) -> Vec<(&'static str, String)> {
        let mut errors = Vec::new();
        if self.queue == 0 {
            errors.push(("trace.queue", "must be at least 1".to_string()));
        }
        if let Some(f) = &self.file
            && f.as_os_str().is_empty()
        {
            errors.push((
                "trace.file",
                "is empty (remove the key to turn it off)".into(),
            ));
        }
        errors
    }
}
