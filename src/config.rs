//! Settings: built-in defaults, overridden by a TOML file (`--config`), then by
//! `SIPREG_*` environment variables and command-line flags.
//!
//! `config/sipreg.toml` documents every key with its default; keep the two in step.

pub mod check;

use std::net::SocketAddr;
use std::path::Path;

use serde::Deserialize;

/// Everything `sipreg serve` needs to run.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub sip: SipConfig,
    pub http: HttpConfig,
    pub database: DatabaseConfig,
    pub users: crate::users::UsersConfig,
    pub tokens: crate::auth::TokensConfig,
    pub auth: crate::auth::AuthConfig,
    pub registrar: crate::registrar::RegistrarConfig,
    pub presence: crate::presence::PresenceConfig,
    pub oauth: crate::oauth::OAuthConfig,
    pub tls: crate::transport::tls::TlsConfig,
    pub websocket: crate::transport::ws::WebSocketConfig,
    /// `[log]`: format and level of the process's log.
    pub log: crate::logs::LogConfig,
    /// `[trace]`: the SIP message trace (file, HEPv3).
    pub trace: crate::trace::TraceConfig,
    pub metrics: crate::metrics::MetricsConfig,
    /// `[limits]`: what one source may cost (rate, failures tracked, slow clients).
    pub limits: LimitsConfig,
}

/// The SIP side: listening address, served domains and protocol limits.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SipConfig {
    /// UDP and TCP both bind this address.
    pub listen: SocketAddr,
    /// Domains this registrar serves. Empty: a stand-in registrar for any domain.
    pub domains: Vec<String>,
    /// Answer at the packet's source address and port even without `rport`
    /// (most phones sit behind NAT). Off: RFC 3261 §18.2.2 routing.
    pub force_rport: bool,
    /// Largest message accepted, in octets (datagram or framed TCP message).
    pub max_message_size: usize,
    /// Most header fields one message may carry.
    pub max_headers: usize,
    /// Longest header line (after unfolding), in octets.
    pub max_header_line: usize,
    /// A TCP connection with no traffic for this long is closed.
    pub tcp_idle_timeout_secs: u64,
    /// Most TCP connections open at once; more are refused.
    pub tcp_max_connections: usize,
    /// RFC 3261 T1, in milliseconds: Timer J is 64·T1 on UDP.
    pub t1_ms: u64,
    /// Most server transactions remembered at once.
    pub max_transactions: usize,
    /// Most bytes the remembered server transactions (answers kept for Timer J) may take.
    pub transaction_memory_bytes: usize,
    /// Threads receiving UDP; 0 = one per CPU (at most 8).
    pub udp_threads: usize,
}

/// The HTTP listeners: the admin API, and the public HTTPS side (OAuth, pages, JWKS).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    /// The public HTTPS listener, with the `[tls]` certificate; `None`: the public routes
    /// are served on `listen` too.
    pub public_listen: Option<SocketAddr>,
}

/// Bounds that keep sipreg's memory and time per source in check under a flood.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Most source addresses whose failed authentications are tracked at once.
    pub max_auth_failure_sources: usize,
    /// SIP requests one source address may send per second, sustained (0: no limit).
    pub requests_per_ip_per_sec: u32,
    /// Requests one source address may send at once above the sustained rate.
    pub request_burst: u32,
    /// Over the rate: `"503"` (Service Unavailable with Retry-After) or `"drop"`.
    pub rate_limit_action: RateLimitAction,
    /// Seconds in the Retry-After of a rate-limit 503.
    pub rate_limit_retry_after_secs: u32,
    /// Addresses (IPs or CIDR prefixes, `"10.0.0.0/8"`) never rate-limited.
    pub rate_limit_exempt: Vec<String>,
    /// Most source addresses whose request rate is tracked at once.
    pub max_rate_sources: usize,
    /// A SIP message on a stream (TCP, TLS) must be complete this long after its first byte.
    pub sip_message_timeout_secs: u64,
    /// An HTTP request's header section must arrive within this many seconds.
    pub http_header_timeout_secs: u64,
    /// An HTTP request (body included) must be answered within this many seconds.
    pub http_request_timeout_secs: u64,
    /// Largest HTTP request body, in octets (413 beyond).
    pub http_max_body: usize,
}

/// What happens to a request over its source's rate.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub enum RateLimitAction {
    #[serde(rename = "503")]
    Reject,
    #[serde(rename = "drop")]
    Drop,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_auth_failure_sources: 100_000,
            requests_per_ip_per_sec: 500,
            request_burst: 2_000,
            rate_limit_action: RateLimitAction::Reject,
            rate_limit_retry_after_secs: 5,
            // The host itself: load generators, sipp in labs, a local edge proxy.
            rate_limit_exempt: vec!["127.0.0.0/8".into(), "::1".into()],
            max_rate_sources: 100_000,
            sip_message_timeout_secs: 30,
            http_header_timeout_secs: 10,
            http_request_timeout_secs: 30,
            http_max_body: 65_536,
        }
    }
}

/// Where users, tokens and bindings are stored.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    pub url: String,
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 5060)),
            domains: Vec::new(),
            force_rport: true,
            max_message_size: 65_536,
            max_headers: 256,
            max_header_line: 16_384,
            tcp_idle_timeout_secs: 300,
            tcp_max_connections: 10_000,
            t1_ms: 500,
            max_transactions: 200_000,
            transaction_memory_bytes: 32 << 20,
            udp_threads: 0,
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_listen: None,
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: "sqlite://data/sipreg.db?mode=rwc".to_string(),
        }
    }
}

/// A configuration file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {source}")]
    Parse {
        path: String,
        source: Box<toml::de::Error>,
    },
}

impl Config {
    /// Parses a TOML document; missing keys take their defaults, unknown keys are errors.
    pub fn from_toml(text: &str) -> Result<Config, toml::de::Error> {
        toml::from_str(text)
    }

    /// Loads `path`, or the defaults when `path` is `None`.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        Config::from_toml(&text).map_err(|source| ConfigError::Parse {
            path: shown,
            source: Box::new(source),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_config_file_matches_defaults() {
        let text = include_str!("../config/sipreg.toml");
        assert_eq!(Config::from_toml(text).unwrap(), Config::default());
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = Config::from_toml("[sip]\nlisten_typo = \"1.2.3.4:5\"\n").unwrap_err();
        assert!(err.to_string().contains("listen_typo"), "{err}");
    }

    #[test]
    fn partial_file_keeps_other_defaults() {
        let c =
            Config::from_toml("[sip]\nforce_rport = false\ndomains = [\"example.com\"]\n").unwrap();
        assert!(!c.sip.force_rport);
        assert_eq!(c.sip.domains, vec!["example.com".to_string()]);
        assert_eq!(c.sip.max_message_size, 65_536);
    }
}
