//! sipreg: a SIP registrar and presence server with OAuth Bearer (RFC 8898) and Digest
//! authentication against an embedded users store.
//!
//! The modules follow the data flow of a request:
//!
//! - [`sip`]: the message model, the parser and the typed headers.
//! - [`transport`]: UDP and TCP listeners, framing, and the way back to the sender.
//! - [`transaction`]: non-INVITE server transactions (RFC 3261 §17.2.2), so a
//!   retransmission is answered without being processed twice.
//! - [`server`]: wires transports, transactions and the request handlers together and
//!   owns the shutdown path.
//! - [`config`]: defaults, the TOML file, environment variables and flags.
//! - [`users`]: the embedded users store, passwords, tokens, API keys and the admin CLI.
//! - [`auth`]: signing keys, JWKS, and the token validator shared by SIP and HTTP.
//! - [`oauth`]: the OAuth 2.0 authorization server (clients, grants, discovery).
//! - [`http`]: the admin HTTP API and the OAuth endpoints.
//! - [`presence`]: PIDF documents and their composition across a user's devices.
//! - [`metrics`]: Prometheus metrics (names, the recorder, the scrape).
//! - [`loadgen`]: `sipreg bench`, the load generator of the benchmarks.
//! - [`logs`]: the process's log (text or JSON, level changed live).
//! - [`trace`]: the SIP message trace (file, HEPv3), credentials redacted.

pub mod auth;
pub mod clock;
pub mod config;
pub mod http;
pub mod loadgen;
pub mod logs;
pub mod metrics;
pub mod oauth;
pub mod presence;
pub mod registrar;
pub mod server;
pub mod sip;
pub mod trace;
pub mod transaction;
pub mod transport;
pub mod users;
