//! The `sipreg bench` command line: options → [`Plan`], a runtime with the requested
//! number of threads, the table and (with `--json`) the JSON line.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::plan::{Connect, Load, Model, Plan, Proto, Scenario, Workload};
use super::users;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The server to load (loopback only), e.g. 127.0.0.1:5060.
    pub target: SocketAddr,
    #[arg(long, value_enum, default_value = "register")]
    pub scenario: Scenario,
    #[arg(long, value_enum, default_value = "udp")]
    pub transport: Proto,
    /// Users and tokens: the file `sipreg sipp-users` writes.
    #[arg(long, conflicts_with = "no_auth")]
    pub users_csv: Option<PathBuf>,
    /// Send no credentials; users are generated (`--users` of them, `--prefix`N).
    #[arg(long)]
    pub no_auth: bool,
    /// How many users to generate with --no-auth.
    #[arg(long, default_value_t = 1000)]
    pub users: usize,
    #[arg(long, default_value = "bench")]
    pub prefix: String,
    /// Open loop: start this many calls per second.
    #[arg(long, conflicts_with = "concurrency")]
    pub rate: Option<f64>,
    /// Closed loop: keep this many calls in flight (the default, 64, without --rate).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Measured seconds (after the warm-up).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds of load before measuring (fills caches, primes users).
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Stop after this many measured calls (even before --duration ends).
    #[arg(long)]
    pub requests: Option<u64>,
    /// UDP sockets or persistent connections (TCP, TLS, WS, WSS).
    #[arg(long, alias = "connections", default_value_t = 16)]
    pub sockets: usize,
    /// Connections: TLS, WebSocket, one per call (boxed: the command's enum stays small).
    #[command(flatten)]
    pub connect: Box<ConnectArgs>,
    /// Runtime worker threads.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Timer E's first interval (RFC 3261 T1), ms.
    #[arg(long, default_value_t = 500)]
    pub t1_ms: u64,
    /// Timer E's cap (T2), ms.
    #[arg(long, default_value_t = 4000)]
    pub t2_ms: u64,
    /// A transaction without a final answer after this long is a timeout, ms.
    #[arg(long, default_value_t = 5000)]
    pub timeout_ms: u64,
    /// A 2xx within this many ms counts as in time (for "sustained").
    #[arg(long, default_value_t = 100.0)]
    pub sla_ms: f64,
    #[arg(long, default_value_t = 3600)]
    pub expires: u32,
    /// Domain of the AORs (default: the target's address).
    #[arg(long)]
    pub domain: Option<String>,
    /// Print one JSON object as the last line.
    #[arg(long)]
    pub json: bool,
    /// Load model, fresh Digest nonces, per-window reporting (boxed like `connect`).
    #[command(flatten)]
    pub workload: Box<WorkloadArgs>,
}

/// The load model (see [`Model`]) and long-run reporting.
#[derive(Debug, Args)]
pub struct WorkloadArgs {
    /// hot: users in turn at --rate / --concurrency; fleet: every user re-registers each
    /// --interval s; first-sighting: every REGISTER with a token never sent before.
    #[arg(long, value_enum, default_value = "hot")]
    pub model: Model,
    /// Fleet: seconds between a user's registrations (on average); the offered rate
    /// is users ÷ interval.
    #[arg(long)]
    pub interval: Option<f64>,
    /// Fleet: registrations with one token before the user's next (a 1 h token and a
    /// 10 min re-registration: 6); 0 keeps the first token.
    #[arg(long, default_value_t = 6)]
    pub token_uses: u32,
    /// register-digest: every registration starts without credentials and answers a
    /// fresh nonce (401, then the authenticated REGISTER).
    #[arg(long)]
    pub fresh_nonce: bool,
    /// Seconds per reporting window (latency, share in time, server RSS).
    #[arg(long, default_value_t = 60.0)]
    pub window: f64,
    /// The server's process id: its RSS is read from /proc at the end of every window.
    #[arg(long)]
    pub server_pid: Option<u32>,
}

/// How stream transports connect (see [`Connect`]).
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// Open a new connection (TCP connect, TLS handshake, WebSocket upgrade) for every
    /// call and close it after the answer; --concurrency calls (and connections) at a time.
    #[arg(long, alias = "connect-per-request")]
    pub connect_per_call: bool,
    /// TLS: resume earlier sessions (tickets / session IDs) on new connections.
    #[arg(long)]
    pub tls_resume: bool,
    /// TLS: accept the server's certificate unchecked (lab certificates).
    #[arg(long, conflicts_with = "ca_file")]
    pub tls_insecure: bool,
    /// TLS: PEM file of the CA(s) the server's certificate must chain to.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// TLS: the name sent as SNI and checked in the certificate (default: the target IP).
    #[arg(long)]
    pub server_name: Option<String>,
    /// WebSocket: the Origin header of the upgrade (none by default).
    #[arg(long)]
    pub origin: Option<String>,
    /// WebSocket: the path of the upgrade request.
    #[arg(long, default_value = "/")]
    pub ws_path: String,
    /// After the last call, keep the persistent connections open this many seconds
    /// (prints "holding N connections" first, for memory measurements).
    #[arg(long, default_value_t = 0.0)]
    pub hold: f64,
    /// Connect from 127.0.0.1 … 127.0.0.N in turn (more ephemeral ports for many
    /// connections; IPv4 loopback targets).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..))]
    pub source_addresses: u8,
}

impl ConnectArgs {
    fn connect(
        &self,
        secs: impl Fn(f64, &str) -> Result<Duration, String>,
    ) -> Result<Connect, String> {
        Ok(Connect {
            per_call: self.connect_per_call,
            tls_resume: self.tls_resume,
            tls_insecure: self.tls_insecure,
            ca_file: self.ca_file.clone(),
            server_name: self.server_name.clone(),
            origin: self.origin.clone(),
            ws_path: self.ws_path.clone(),
            hold: secs(self.hold, "--hold")?,
            sources: self.source_addresses,
        })
    }
}

impl BenchArgs {
    pub fn plan(&self) -> Result<Plan, String> {
        let list = match (&self.users_csv, self.no_auth) {
            (Some(p), _) => users::read_csv(p)?,
            (None, true) => users::generated(&self.prefix, self.users),
            (None, false) => {
                return Err("give --users-csv FILE (from `sipreg sipp-users`) or --no-auth".into());
            }
        };
        let w = &self.workload;
        let load = match (w.model, w.interval, self.rate, self.concurrency) {
            (Model::Fleet, Some(i), None, None) if i > 0.0 => Load::Rate(list.len() as f64 / i),
            (Model::Fleet, _, _, _) => {
                return Err(
                    "--model fleet takes --interval SECONDS (> 0), not --rate or --concurrency"
                        .into(),
                );
            }
            (_, Some(_), _, _) => return Err("--interval is for --model fleet".into()),
            (_, None, Some(r), _) => Load::Rate(r),
            (_, None, None, c) => Load::Concurrency(c.unwrap_or(64)),
        };
        let secs = |s: f64, what: &str| {
            Duration::try_from_secs_f64(s)
                .map_err(|_| format!("{what} must be a number of seconds ≥ 0"))
        };
        Ok(Plan {
            target: self.target,
            scenario: self.scenario,
            proto: self.transport,
            users: Arc::from(list),
            auth: !self.no_auth,
            load,
            duration: secs(self.duration, "--duration")?,
            warmup: secs(self.warmup, "--warmup")?,
            max_calls: self.requests,
            lanes: self.sockets,
            t1: Duration::from_millis(self.t1_ms),
            t2: Duration::from_millis(self.t2_ms.max(self.t1_ms)),
            timeout: Duration::from_millis(self.timeout_ms),
            sla: secs(self.sla_ms / 1000.0, "--sla-ms")?,
            expires: self.expires,
            domain: self.domain.clone().unwrap_or_else(|| match self.target {
                SocketAddr::V4(a) => a.ip().to_string(),
                SocketAddr::V6(a) => format!("[{}]", a.ip()),
            }),
            progress: std::io::stdout().is_terminal(),
            connect: self.connect.connect(secs)?,
            workload: Workload {
                model: w.model,
                token_uses: w.token_uses,
                fresh_nonce: w.fresh_nonce,
                window: secs(w.window, "--window")?,
                server_pid: w.server_pid,
            },
        })
    }
}

pub fn run(args: BenchArgs) -> ExitCode {
    // What the options cannot express is a usage error too (exit 2).
    let plan = match args.plan().and_then(|p| p.validate().map(|()| p)) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("sipreg bench: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sipreg bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(super::run(plan)) {
        Ok(report) => {
            print!("{}", report.table());
            if args.json {
                println!("{}", report.json());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sipreg bench: {e}");
            ExitCode::FAILURE
        }
    }
}
