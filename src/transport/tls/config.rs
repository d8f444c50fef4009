//! The `[tls]` configuration section and [`TlsSettings`], the files an acceptor is built
//! from. An empty path means "not set" (TOML has no null, and the shipped file shows
//! every key with its default).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::acceptor::TlsError;
use super::listener::TlsLimits;

/// `[tls]`: SIP over TLS. Served when `cert_file` is set.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// The TLS listener's address (flag --sips-listen, env SIPREG_SIPS_LISTEN).
    pub listen: SocketAddr,
    /// PEM certificate chain, leaf first. Empty: TLS off.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of the leaf certificate.
    pub key_file: PathBuf,
    /// PEM CA certificates; when set, clients must present a certificate they signed.
    pub client_ca_file: PathBuf,
    /// A connection that has not finished its handshake after this long is closed.
    pub handshake_timeout_secs: u64,
    /// Most TLS connections (handshaking or open) from one IP address.
    pub max_connections_per_ip: usize,
    /// Most TLS connections open at once on the listener.
    pub max_connections: usize,
    /// How often the PEM files are checked for changes (0: only on SIGHUP).
    pub reload_poll_secs: u64,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 5061)),
            cert_file: PathBuf::new(),
            key_file: PathBuf::new(),
            client_ca_file: PathBuf::new(),
            handshake_timeout_secs: 10,
            max_connections_per_ip: 100,
            max_connections: 10_000,
            reload_poll_secs: 5,
        }
    }
}

/// The files a [`ReloadableAcceptor`](super::ReloadableAcceptor) reads (and re-reads on
/// reload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// Client certificates are required, and must chain to these CAs, when set.
    pub client_ca_file: Option<PathBuf>,
}

fn set(p: &Path) -> Option<PathBuf> {
    (!p.as_os_str().is_empty()).then(|| p.to_path_buf())
}

impl TlsConfig {
    /// The files to serve TLS with; `None` when no certificate is configured (TLS off).
    /// A key without a certificate, or the reverse, is an error.
    pub fn settings(&self) -> Result<Option<TlsSettings>, TlsError> {
        match (set(&self.cert_file), set(&self.key_file)) {
            (None, None) => Ok(None),
            (Some(cert_file), Some(key_file)) => Ok(Some(TlsSettings {
                cert_file,
                key_file,
                client_ca_file: set(&self.client_ca_file),
            })),
            (Some(_), None) => Err(TlsError::Setting(
                "tls.cert_file is set but tls.key_file is not".into(),
            )),
            (None, Some(_)) => Err(TlsError::Setting(
                "tls.key_file is set but tls.cert_file is not".into(),
            )),
        }
    }

    /// The listener's limits.
    pub fn limits(&self) -> TlsLimits {
        TlsLimits {
            handshake_timeout: Duration::from_secs(self.handshake_timeout_secs.max(1)),
            max_connections_per_ip: self.max_connections_per_ip.max(1),
            max_connections: self.max_connections.max(1),
        }
    }

    /// The file watcher's period; `None` when polling is off.
    pub fn reload_poll(&self) -> Option<Duration> {
        (self.reload_poll_secs > 0).then(|| Duration::from_secs(self.reload_poll_secs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_certificate_means_tls_off_and_half_a_pair_is_an_error() {
        let mut c = TlsConfig::default();
        assert_eq!(c.settings().expect("valid"), None);
        c.cert_file = "c.pem".into();
        let err = c.settings().expect_err("no key");
        assert!(err.to_string().contains("tls.key_file"), "{err}");
        c.key_file = "k.pem".into();
        let s = c.settings().expect("valid").expect("on");
        assert_eq!(s.client_ca_file, None);
        c.client_ca_file = "ca.pem".into();
        let s = c.settings().expect("valid").expect("on");
        assert_eq!(s.client_ca_file, Some(PathBuf::from("ca.pem")));
        c.cert_file = PathBuf::new();
        assert!(c.settings().is_err());
    }
}
