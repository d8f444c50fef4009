//! SIP over TLS (RFC 3261 §26, RFC 5630): a TLS listener whose connections, once the
//! handshake is done, are framed exactly like TCP ([`super::tcp::serve_framed`]), so
//! keep-alives, the idle timeout and flows are the same.
//!
//! - [`config`]: the `[tls]` section and the file settings the acceptor is built from.
//! - [`acceptor`]: the certificate chain, key and optional client CA read from PEM
//!   files into a rustls configuration that can be swapped while connections stay up.
//! - [`listener`]: the accept loop (handshake timeout, per-IP and listener-wide caps).
//! - [`reload`]: the file watcher that reloads when the PEM files change on disk.
//! - [`self_signed`] and [`cli`]: `sipreg tls self-signed`, a certificate for a lab.

pub mod acceptor;
pub mod cli;
pub mod config;
pub mod listener;
pub mod reload;
pub mod self_signed;

pub use acceptor::{ReloadableAcceptor, TlsError};
pub use config::{TlsConfig, TlsSettings};
pub use listener::{TlsLimits, TlsListener};
