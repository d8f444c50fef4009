//! [`ReloadableAcceptor`]: the server's TLS configuration (rustls with the ring provider,
//! TLS 1.2 and 1.3) built from PEM files, and swapped whole on [`ReloadableAcceptor::reload`].
//! A handshake takes the configuration current when it starts, so open connections keep
//! theirs and are never dropped by a reload; a reload that fails keeps the old one.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio_rustls::TlsAcceptor;

use super::config::TlsSettings;

/// Why a TLS configuration could not be built. Every file error names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("TLS {what} file {}: cannot read it: {source}", path.display())]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("TLS {what} file {}: {problem}", path.display())]
    Content {
        what: &'static str,
        path: PathBuf,
        problem: String,
    },
    #[error("TLS certificate {} and key {} do not go together: {source}", cert.display(), key.display())]
    Pair {
        cert: PathBuf,
        key: PathBuf,
        source: rustls::Error,
    },
    #[error("TLS settings: {0}")]
    Setting(String),
    #[error("cannot listen for TLS on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// What the files looked like when last read: modification time, length and inode, so a
/// replacement by rename is seen as well as a rewrite.
type Stamp = Option<(SystemTime, u64, u64)>;

fn stamp(path: &Path) -> Stamp {
    let m = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let ino = std::os::unix::fs::MetadataExt::ino(&m);
    #[cfg(not(unix))]
    let ino = 0;
    Some((m.modified().ok()?, m.len(), ino))
}

/// A TLS acceptor whose certificate can be replaced while the listener runs.
pub struct ReloadableAcceptor {
    settings: TlsSettings,
    current: RwLock<Arc<ServerConfig>>,
    /// The files' stamps at the last load attempt (successful or not), so a watcher
    /// retries only when they change again.
    seen: Mutex<Vec<Stamp>>,
    reloads: AtomicU64,
}

impl ReloadableAcceptor {
    /// Reads the files; the error names the file and what is wrong with it.
    pub fn load(settings: &TlsSettings) -> Result<Arc<Self>, TlsError> {
        let seen = Self::stamps_of(settings);
        let config = build(settings)?;
        Ok(Arc::new(ReloadableAcceptor {
            settings: settings.clone(),
            current: RwLock::new(Arc::new(config)),
            seen: Mutex::new(seen),
            reloads: AtomicU64::new(0),
        }))
    }

    /// Re-reads the files: new handshakes use the new certificate, open connections keep
    /// theirs. On error the current configuration stays (and the error is logged).
    pub fn reload(&self) -> Result<(), TlsError> {
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = Self::stamps_of(&self.settings);
        match build(&self.settings) {
            Ok(config) => {
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(config);
                self.reloads.fetch_add(1, Ordering::Relaxed);
                tracing::info!(cert = %self.settings.cert_file.display(), "TLS certificate reloaded");
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, "TLS reload failed; the previous certificate stays in use");
                Err(e)
            }
        }
    }

    /// Reloads when a file changed since the last attempt; `None` when none did.
    pub fn reload_if_changed(&self) -> Option<Result<(), TlsError>> {
        let now = Self::stamps_of(&self.settings);
        let changed = *self.seen.lock().unwrap_or_else(|e| e.into_inner()) != now;
        changed.then(|| self.reload())
    }

    /// The current acceptor (a cheap clone of an `Arc`).
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(Arc::clone(
            &self.current.read().unwrap_or_else(|e| e.into_inner()),
        ))
    }

    /// Successful reloads so far.
    pub fn reloads(&self) -> u64 {
        self.reloads.load(Ordering::Relaxed)
    }

    pub fn settings(&self) -> &TlsSettings {
        &self.settings
    }

    fn stamps_of(s: &TlsSettings) -> Vec<Stamp> {
        let mut v = vec![stamp(&s.cert_file), stamp(&s.key_file)];
        if let Some(ca) = &s.client_ca_file {
            v.push(stamp(ca));
        }
        v
    }
}

/// The crypto provider: ring, as reqwest already uses (no aws-lc build).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

fn content(what: &'static str, path: &Path, problem: impl Into<String>) -> TlsError {
    TlsError::Content {
        what,
        path: path.to_path_buf(),
        problem: problem.into(),
    }
}

/// Every CERTIFICATE block of a PEM file (other blocks are skipped); at least one.
pub fn read_certificates(
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(what, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| content(what, path, format!("not valid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(content(what, path, "no CERTIFICATE block in it"));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read("key", path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => content(
            "key",
            path,
            "no private key in it (PEM PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)",
        ),
        e => content("key", path, format!("not valid PEM: {e}")),
    })
}

fn build(s: &TlsSettings) -> Result<ServerConfig, TlsError> {
    let certs = read_certificates("certificate", &s.cert_file)?;
    let key = read_key(&s.key_file)?;
    let provider = provider();
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Setting(format!("TLS versions: {e}")))?;
    let builder = match &s.client_ca_file {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in read_certificates("client CA", path)? {
                roots
                    .add(c)
                    .map_err(|e| content("client CA", path, format!("unusable CA: {e}")))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| content("client CA", path, e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    builder
        .with_single_cert(certs, key)
        .map_err(|source| TlsError::Pair {
            cert: s.cert_file.clone(),
            key: s.key_file.clone(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::tls::self_signed::self_signed;

    fn write_pair(dir: &Path, name: &str) -> TlsSettings {
        let pair = self_signed(name).expect("generate");
        std::fs::write(dir.join("cert.pem"), &pair.cert_pem).expect("write");
        std::fs::write(dir.join("key.pem"), &pair.key_pem).expect("write");
        TlsSettings {
            cert_file: dir.join("cert.pem"),
            key_file: dir.join("key.pem"),
            client_ca_file: None,
        }
    }

    #[test]
    fn errors_name_the_file_and_the_problem() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = write_pair(dir.path(), "a.example");
        let missing = TlsSettings {
            cert_file: dir.path().join("nope.pem"),
            ..s.clone()
        };
        let e = ReloadableAcceptor::load(&missing).err().expect("missing");
        assert!(
            e.to_string().contains("nope.pem") && e.to_string().contains("cannot read"),
            "{e}"
        );

        std::fs::write(dir.path().join("empty.pem"), "hello\n").expect("write");
        let empty = TlsSettings {
            cert_file: dir.path().join("empty.pem"),
            ..s.clone()
        };
        let e = ReloadableAcceptor::load(&empty).err().expect("empty");
        assert!(
            e.to_string().contains("empty.pem") && e.to_string().contains("no CERTIFICATE"),
            "{e}"
        );

        let no_key = TlsSettings {
            key_file: dir.path().join("cert.pem"),
            ..s.clone()
        };
        let e = ReloadableAcceptor::load(&no_key).err().expect("no key");
        assert!(
            e.to_string().contains("key file") && e.to_string().contains("no private key"),
            "{e}"
        );

        // Another pair's key: refused, naming both files.
        let other = tempfile::tempdir().expect("tempdir");
        let o = write_pair(other.path(), "b.example");
        let mismatch = TlsSettings {
            key_file: o.key_file.clone(),
            ..s.clone()
        };
        let e = ReloadableAcceptor::load(&mismatch).err().expect("mismatch");
        assert!(matches!(e, TlsError::Pair { .. }), "{e}");
        assert!(e.to_string().contains("do not go together"), "{e}");
    }

    #[test]
    fn a_failed_reload_keeps_the_old_configuration_and_changes_are_noticed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = write_pair(dir.path(), "a.example");
        let acc = ReloadableAcceptor::load(&s).expect("load");
        assert!(acc.reload_if_changed().is_none());
        let before = acc.acceptor();
        std::fs::write(&s.cert_file, "garbage").expect("write");
        assert!(acc.reload_if_changed().expect("changed").is_err());
        // Unchanged since the failed attempt: not retried.
        assert!(acc.reload_if_changed().is_none());
        assert!(Arc::ptr_eq(before.config(), acc.acceptor().config()));
        assert_eq!(acc.reloads(), 0);
        write_pair(dir.path(), "c.example");
        assert!(acc.reload_if_changed().expect("changed").is_ok());
        assert!(!Arc::ptr_eq(before.config(), acc.acceptor().config()));
        assert_eq!(acc.reloads(), 1);
    }
}
