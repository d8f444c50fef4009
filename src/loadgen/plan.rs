//! What one run does: scenario, transport, load model, limits and timers, fixed before
//! the first request and shared read-only by every lane.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::users::User;

/// What each call does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// REGISTER (with the user's Bearer token when known) → 200; later calls refresh.
    Register,
    /// The first REGISTER of a user carries no credentials → 401, then Bearer → 200;
    /// later calls send the token straight away, as a phone does.
    RegisterAuth,
    /// Like register-auth, answering the 401's Digest challenge (MD5 or SHA-256, qop=auth)
    /// with the user's password; later calls reuse the nonce with the next nonce-count.
    RegisterDigest,
    /// OPTIONS → 200.
    Options,
    /// SUBSCRIBE (Event: presence) to another user → 2xx, then NOTIFYs, each answered
    /// 200; later calls refresh the subscription inside its dialog.
    Subscribe,
    /// PUBLISH (Event: presence) of a small PIDF document → 2xx with SIP-ETag; later
    /// calls refresh it with SIP-If-Match (RFC 3903 §4.2).
    Publish,
}

/// How users and their tokens are driven (the `register` and `register-auth` scenarios
/// send the token the model picks).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Model {
    /// Users in turn as fast as the load allows, each always with its first token.
    #[default]
    Hot,
    /// Each user re-registers every `--interval` seconds (exponential gaps between
    /// calls, so each user's interval varies), sending the same token `--token-uses`
    /// times before moving to its next one, as a phone with a long-lived token does.
    Fleet,
    /// Every REGISTER carries a token not sent before: each token of the users file once;
    /// a user whose tokens are used up makes no more calls.
    FirstSighting,
}

/// The load model and what long runs report.
#[derive(Debug, Clone)]
pub struct Workload {
    pub model: Model,
    /// Fleet: calls with one token before the next (0: never move on).
    pub token_uses: u32,
    /// register-digest: every call starts with a request without credentials and
    /// answers the fresh nonce of its 401, as phones re-registering after minutes do.
    pub fresh_nonce: bool,
    /// Latency, the share within the SLA (and the server's RSS) per window this long.
    pub window: Duration,
    /// The server's process, whose RSS is read from `/proc/PID/status` each window.
    pub server_pid: Option<u32>,
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            model: Model::Hot,
            token_uses: 0,
            fresh_nonce: false,
            window: Duration::from_secs(60),
            server_pid: None,
        }
    }
}

/// How requests travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Udp,
    Tcp,
    /// SIP over TLS (RFC 3261 §26), framed like TCP.
    Tls,
    /// SIP over WebSocket (RFC 7118), one message per frame.
    Ws,
    /// WebSocket over TLS.
    Wss,
}

impl Proto {
    pub fn via(self) -> &'static str {
        match self {
            Proto::Udp => "UDP",
            Proto::Tcp => "TCP",
            Proto::Tls => "TLS",
            Proto::Ws => "WS",
            Proto::Wss => "WSS",
        }
    }

    pub fn param(self) -> &'static str {
        match self {
            Proto::Udp => "udp",
            Proto::Tcp => "tcp",
            Proto::Tls => "tls",
            Proto::Ws => "ws",
            Proto::Wss => "wss",
        }
    }

    /// Over a connection: no retransmissions, a lost connection ends the lane.
    pub fn is_stream(self) -> bool {
        self != Proto::Udp
    }

    /// A TLS handshake opens each connection.
    pub fn is_tls(self) -> bool {
        matches!(self, Proto::Tls | Proto::Wss)
    }

    pub fn is_websocket(self) -> bool {
        matches!(self, Proto::Ws | Proto::Wss)
    }
}

/// How stream lanes connect (ignored over UDP).
#[derive(Debug, Clone, Default)]
pub struct Connect {
    /// Open a new connection for every call and close it after the call's last answer
    /// (each lane then has one call in flight).
    pub per_call: bool,
    /// TLS: offer the sessions of earlier handshakes (TLS 1.3 tickets, 1.2 session IDs).
    pub tls_resume: bool,
    /// TLS: accept any server certificate (lab certificates without a CA file).
    pub tls_insecure: bool,
    /// TLS: the CA certificates (PEM) the server's certificate must chain to.
    pub ca_file: Option<PathBuf>,
    /// TLS: the name sent in SNI and checked against the certificate (default: the
    /// target's IP address).
    pub server_name: Option<String>,
    /// WebSocket: the `Origin` header of the upgrade request (none when unset).
    pub origin: Option<String>,
    /// WebSocket: the request path of the upgrade.
    pub ws_path: String,
    /// After the last call, keep the connections open this long (idle-connection memory).
    pub hold: Duration,
    /// Lanes connect from 127.0.0.1 to 127.0.0.N in turn (IPv4 targets), so tens of
    /// thousands of connections do not exhaust one address's ephemeral ports.
    pub sources: u8,
}

/// Open loop (a fixed offered rate) or closed loop (a fixed number of calls in flight).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Load {
    Rate(f64),
    Concurrency(usize),
}

/// A whole run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub target: SocketAddr,
    pub scenario: Scenario,
    pub proto: Proto,
    pub users: Arc<[User]>,
    /// Send the users' tokens (false with `--no-auth`).
    pub auth: bool,
    pub load: Load,
    pub duration: Duration,
    pub warmup: Duration,
    /// Stop after this many calls (not counting warm-up ones).
    pub max_calls: Option<u64>,
    /// UDP sockets or TCP connections.
    pub lanes: usize,
    /// Timer E starts at T1 and doubles up to T2 (RFC 3261 §17.1.2.2).
    pub t1: Duration,
    pub t2: Duration,
    /// A transaction without a final answer after this long is a timeout (Timer F is
    /// 64×T1 = 32 s; benchmarks use less so a run ends soon after its last request).
    pub timeout: Duration,
    /// A 2xx within this long counts as answered in time.
    pub sla: Duration,
    /// Expires of REGISTER, SUBSCRIBE and PUBLISH.
    pub expires: u32,
    /// The domain in To/From and the REGISTER Request-URI (default: the target's address).
    pub domain: String,
    /// Print a progress line.
    pub progress: bool,
    /// Connections: TLS, WebSocket, one per call.
    pub connect: Connect,
    /// Load model, fresh Digest nonces, per-window reporting.
    pub workload: Workload,
}

impl Plan {
    /// `host:port` of the target as it appears in a SIP URI.
    pub fn target_hostport(&self) -> String {
        self.target.to_string()
    }

    /// Checks what the options cannot express. The generator only talks to loopback.
    pub fn validate(&self) -> Result<(), String> {
        if !self.target.ip().is_loopback() {
            return Err(format!(
                "{} is not a loopback address: sipreg bench only talks to 127.0.0.1 or ::1",
                self.target
            ));
        }
        if self.users.is_empty() {
            return Err("no users".into());
        }
        if self.lanes == 0 {
            return Err("at least one socket or connection is needed".into());
        }
        match self.load {
            Load::Rate(r) if !(r > 0.0 && r.is_finite()) => {
                return Err("the rate must be positive".into());
            }
            Load::Concurrency(0) => return Err("the concurrency must be at least 1".into()),
            _ => {}
        }
        let needs_token = matches!(
            self.scenario,
            Scenario::RegisterAuth | Scenario::RegisterDigest
        );
        if needs_token && !self.auth {
            return Err(format!(
                "{:?} needs users with credentials (a --users-csv file), not --no-auth",
                self.scenario
            ));
        }
        if self.workload.model == Model::FirstSighting && !self.auth {
            return Err("the first-sighting model needs users with tokens".into());
        }
        if self.workload.fresh_nonce && self.scenario != Scenario::RegisterDigest {
            return Err("--fresh-nonce is for --scenario register-digest".into());
        }
        if self.workload.window.is_zero() {
            return Err("the reporting window must be positive".into());
        }
        if self.connect.per_call && !self.proto.is_stream() {
            return Err("a connection per call needs --transport tcp, tls, ws or wss".into());
        }
        if self.connect.per_call && matches!(self.load, Load::Rate(_)) {
            return Err(
                "a connection per call runs closed loop: give --concurrency, not --rate".into(),
            );
        }
        if self.proto.is_tls() && !self.connect.tls_insecure && self.connect.ca_file.is_none() {
            return Err("TLS needs --ca-file FILE (the server's CA) or --tls-insecure".into());
        }
        if self.t1.is_zero() || self.timeout.is_zero() {
            return Err("T1 and the timeout must be positive".into());
        }
        Ok(())
    }
}
