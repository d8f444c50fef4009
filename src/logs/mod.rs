//! The process's log: where `tracing` events go (standard error), in which format (text
//! for people, JSON lines for a log shipper), at which level. The level can change while
//! running ([`LogHandle::set_level`], on SIGHUP); `RUST_LOG`, when set, wins over the
//! configured level.
//!
//! The HTTP access log is a target of its own, `sipreg::access` (`crate::http::access_log`),
//! so `RUST_LOG=info,sipreg::access=off` silences it.

use serde::Deserialize;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, reload};

/// `[log]` in the config file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json` (flag --log-format, env SIPREG_LOG_FORMAT).
    pub format: LogFormat,
    /// A `tracing` filter: a level (`info`) or per-target directives
    /// (`info,sipreg::access=warn`). `RUST_LOG` overrides it.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: "info".to_string(),
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (timestamp, level, target, fields).
    Json,
}

impl LogConfig {
    /// Errors in the filter, for `sipreg config check`.
    pub fn validate(&self) -> Result<(), String> {
        EnvFilter::try_new(&self.level)
            .map(|_| ())
            .map_err(|e| format!("invalid filter {:?}: {e}", self.level))
    }
}

/// Changes the level of the installed log.
#[derive(Clone)]
pub struct LogHandle {
    filter: reload::Handle<EnvFilter, Registry>,
    /// `RUST_LOG` was set at start: it keeps precedence over the config file.
    from_env: bool,
}

impl LogHandle {
    /// Applies `level` (an [`EnvFilter`] directive); ignored while `RUST_LOG` rules.
    /// Returns whether the level changed.
    pub fn set_level(&self, level: &str) -> Result<bool, String> {
        if self.from_env {
            return Ok(false);
        }
        let filter =
            EnvFilter::try_new(level).map_err(|e| format!("invalid filter {level:?}: {e}"))?;
        self.filter
            .reload(filter)
            .map_err(|e| format!("cannot change the log level: {e}"))?;
        Ok(true)
    }
}

/// Installs the process's subscriber: `format` on standard error, filtered by `RUST_LOG`
/// when set, else by `level` (else `info`, when `level` does not parse).
pub fn init(format: LogFormat, level: &str) -> LogHandle {
    let (filter, from_env) = match EnvFilter::try_from_default_env() {
        Ok(f) => (f, true),
        Err(_) => (
            EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info")),
            false,
        ),
    };
    let (filter, handle) = reload::Layer::new(filter);
    let registry = tracing_subscriber::registry().with(filter);
    let installed = match format {
        LogFormat::Text => registry
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
    if let Err(e) = installed {
        eprintln!("sipreg: cannot install the log: {e}");
    }
    LogHandle {
        filter: handle,
        from_env,
    }
}
