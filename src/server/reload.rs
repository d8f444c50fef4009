//! SIGHUP: re-read the configuration file and apply what can change while running, with
//! no binding, subscription or connection dropped:
//!
//! - `log.level`;
//! - `[auth]` challenge policy: `challenges`, `client_rules`, `bearer_over_cleartext`,
//!   `max_failures`, `failure_window_secs`;
//! - `[limits]`: the per-address rate limit, the failure map's bound, the stream
//!   message deadline (for connections opened from then on);
//! - `[registrar]` policy: expiry bounds, contact limit, Retry-After;
//! - `[sip] domains` (registrar and presence), `max_transactions`,
//!   `transaction_memory_bytes`, `tcp_idle_timeout_secs` (new connections);
//! - `[tokens] trusted_issuers` (cached verdicts of a removed or changed issuer's tokens
//!   are forgotten);
//! - the TLS certificate and key files' contents (re-read from the same paths).
//!
//! Any other key whose value changed in the file is named in the log as needing a
//! restart (listen addresses, the database, ...). A file with problems
//! ([`crate::config::check`]) is refused whole: nothing changes, every problem is logged.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::auth::sip::SipAuth;
use crate::auth::validator::Validator;
use crate::config::Config;
use crate::logs::LogHandle;
use crate::presence::PresenceService;
use crate::registrar::Registrar;
use crate::server::Core;
use crate::transport::tls::ReloadableAcceptor;

/// Keys applied live (dotted, as in the file).
pub const LIVE: &[&str] = &[
    "log.level",
    "auth.challenges",
    "auth.client_rules",
    "auth.bearer_over_cleartext",
    "auth.max_failures",
    "auth.failure_window_secs",
    "limits.max_auth_failure_sources",
    "limits.requests_per_ip_per_sec",
    "limits.request_burst",
    "limits.rate_limit_action",
    "limits.rate_limit_retry_after_secs",
    "limits.rate_limit_exempt",
    "limits.max_rate_sources",
    "limits.sip_message_timeout_secs",
    "registrar.default_expires",
    "registrar.min_expires",
    "registrar.max_expires",
    "registrar.max_contacts",
    "registrar.max_contacts_policy",
    "registrar.retry_after_secs",
    "sip.domains",
    "sip.max_transactions",
    "sip.tcp_idle_timeout_secs",
    "sip.transaction_memory_bytes",
    "tokens.trusted_issuers",
];

/// The running parts a reload changes; a part left `None` keeps its keys restart-only.
#[derive(Default)]
pub struct Targets {
    pub log: Option<LogHandle>,
    pub auth: Option<Arc<SipAuth>>,
    pub tls: Option<Arc<ReloadableAcceptor>>,
    /// The SIP core (its rate limit).
    pub core: Option<Arc<Core>>,
    pub registrar: Option<Arc<Registrar>>,
    pub presence: Option<Arc<PresenceService>>,
    /// The token validator (trusted issuers).
    pub validator: Option<Arc<Validator>>,
}

impl Targets {
    /// Whether the part that applies `key` (a [`LIVE`] key) is here.
    fn applies(&self, key: &str) -> bool {
        match key.split_once('.').map_or(key, |(section, _)| section) {
            "log" => self.log.is_some(),
            "auth" => self.auth.is_some(),
            "limits" if key == "limits.max_auth_failure_sources" => self.auth.is_some(),
            "limits" => self.core.is_some(),
            "registrar" => self.registrar.is_some(),
            "sip" if key == "sip.domains" => self.registrar.is_some() || self.presence.is_some(),
            "sip" => self.core.is_some(),
            "tokens" => self.validator.is_some(),
            _ => false,
        }
    }
}

/// What a reload did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Changed keys now in force.
    pub applied: Vec<String>,
    /// Changed keys that take effect at the next restart.
    pub needs_restart: Vec<String>,
}

/// What SIGHUP reloads.
pub struct Reloader {
    path: Option<PathBuf>,
    /// The file's table as last applied (the baseline changes are found against).
    current: Mutex<toml::Table>,
    to: Targets,
}

impl Reloader {
    /// `path` is the file the server started from (none: only TLS files are re-read).
    pub fn new(path: Option<PathBuf>, to: Targets) -> Reloader {
        let current = path
            .as_deref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|t| toml::from_str(&t).ok())
            .unwrap_or_default();
        Reloader {
            path,
            current: Mutex::new(current),
            to,
        }
    }

    /// Re-reads everything; logs what happened.
    pub fn reload(&self) -> Result<Outcome, String> {
        if let Some(tls) = &self.to.tls {
            tracing::info!("SIGHUP: reloading the TLS certificate");
            // A failure is logged by reload itself; the old certificate stays.
            let _ = tls.reload();
        }
        let Some(path) = &self.path else {
            tracing::info!("SIGHUP: no configuration file to re-read (started without --config)");
            return Ok(Outcome::default());
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let config = crate::config::check::check_text(&text).map_err(|problems| {
            let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
            format!(
                "{} refused, nothing changed: {}",
                path.display(),
                list.join("; ")
            )
        })?;
        let table: toml::Table = toml::from_str(&text).map_err(|e| e.to_string())?;
        let mut current = self
            .current
            .lock()
            .map_err(|_| "reload state poisoned".to_string())?;
        let changed = changed_keys(&current, &table);
        let outcome = self.apply(&config, changed)?;
        *current = table;
        Ok(outcome)
    }

    fn apply(&self, config: &Config, changed: Vec<String>) -> Result<Outcome, String> {
        let mut out = Outcome::default();
        for key in changed {
            if LIVE.contains(&key.as_str()) && self.to.applies(&key) {
                out.applied.push(key);
            } else {
                out.needs_restart.push(key);
            }
        }
        let changed = |prefix: &str| out.applied.iter().any(|k| k.starts_with(prefix));
        // Trusted issuers first: the only change that can fail (an unreadable key file),
        // and then nothing else has changed either.
        if changed("tokens.trusted_issuers")
            && let Some(v) = &self.to.validator
        {
            let touched = v.set_trusted_issuers(&config.tokens.trusted_issuers)?;
            tracing::info!(issuers = ?touched, "trusted issuers added, changed or removed");
        }
        if changed("log.level")
            && let Some(log) = &self.to.log
            && !log.set_level(&config.log.level)?
        {
            tracing::warn!("log.level changed, but RUST_LOG is set and keeps precedence");
        }
        if changed("limits.") {
            if let Some(core) = &self.to.core {
                core.pike.set(&config.limits);
            }
            if let Some(auth) = &self.to.auth {
                auth.set_max_failure_sources(config.limits.max_auth_failure_sources);
            }
        }
        if changed("registrar.")
            && let Some(r) = &self.to.registrar
        {
            r.set_policy(config.registrar.clone());
        }
        if (changed("sip.tcp_idle_timeout_secs") || changed("limits.sip_message_timeout_secs"))
            && let Some(core) = &self.to.core
        {
            core.stream_timeouts.set(
                config.sip.tcp_idle_timeout_secs,
                config.limits.sip_message_timeout_secs,
            );
        }
        if (changed("sip.max_transactions") || changed("sip.transaction_memory_bytes"))
            && let Some(core) = &self.to.core
        {
            core.transactions.set_bounds(
                config.sip.max_transactions,
                config.sip.transaction_memory_bytes,
            );
        }
        if changed("sip.domains") {
            if let Some(r) = &self.to.registrar {
                r.set_domains(config.sip.domains.clone());
            }
            if let Some(p) = &self.to.presence {
                p.set_domains(config.sip.domains.clone());
            }
        }
        if changed("auth.")
            && let Some(auth) = &self.to.auth
        {
            let mut settings = crate::server::app::auth_settings(&config.auth)?;
            // Fixed at start (nonces handed out, realms clients cached).
            let old = auth.settings();
            settings.realm = old.realm.clone();
            settings.nonce_ttl = old.nonce_ttl;
            auth.update(settings);
        }
        Ok(out)
    }
}

/// Dotted keys (`section.key`, or `section` for a top-level value) whose value differs
/// between `old` and `new`, added or removed.
pub fn changed_keys(old: &toml::Table, new: &toml::Table) -> Vec<String> {
    let empty = toml::Table::new();
    let mut keys = Vec::new();
    let sections: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for section in sections {
        match (old.get(section), new.get(section)) {
            (a, b) if a == b => {}
            (
                a @ (Some(toml::Value::Table(_)) | None),
                b @ (Some(toml::Value::Table(_)) | None),
            ) => {
                let ta = a.and_then(toml::Value::as_table).unwrap_or(&empty);
                let tb = b.and_then(toml::Value::as_table).unwrap_or(&empty);
                let names: std::collections::BTreeSet<&String> =
                    ta.keys().chain(tb.keys()).collect();
                for k in names {
                    if ta.get(k) != tb.get(k) {
                        keys.push(format!("{section}.{k}"));
                    }
                }
            }
            _ => keys.push(section.clone()),
        }
    }
    keys
}

/// Reloads on every SIGHUP until the process ends. The signal is hooked before this
/// returns, so a SIGHUP never finds the default action (termination) in place.
pub fn on_sighup(reloader: Reloader) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP: no live reload");
                return;
            }
        };
        let reloader = Arc::new(reloader);
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                let r = Arc::clone(&reloader);
                match tokio::task::spawn_blocking(move || r.reload()).await {
                    Ok(Ok(o)) => {
                        for key in &o.needs_restart {
                            tracing::warn!(setting = %key, "changed in the configuration file; takes effect at the next restart");
                        }
                        tracing::info!(applied = ?o.applied, needs_restart = ?o.needs_restart, "SIGHUP: configuration reloaded");
                    }
                    Ok(Err(e)) => tracing::error!(error = %e, "SIGHUP: configuration not reloaded"),
                    Err(e) => tracing::error!(error = %e, "SIGHUP: reload failed"),
                }
            }
        });
    }
    #[cfg(not(unix))]
    let _ = reloader;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_keys_are_named_dotted() {
        let old: toml::Table = toml::from_str(
            "[sip]\nlisten = \"0.0.0.0:5060\"\nt1_ms = 500\n[log]\nlevel = \"info\"\n",
        )
        .unwrap();
        let new: toml::Table = toml::from_str("[sip]\nlisten = \"0.0.0.0:5070\"\nt1_ms = 500\n[log]\nlevel = \"debug\"\n[auth]\nchallenges = [\"bearer\"]\n").unwrap();
        assert_eq!(
            changed_keys(&old, &new),
            ["auth.challenges", "log.level", "sip.listen"]
        );
        assert!(changed_keys(&new, &new).is_empty());
    }
}
