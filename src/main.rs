//! The `sipreg` command: `sipreg serve` runs the server; the other subcommands
//! administer the store it uses.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use sipreg::config::Config;

// Measured on this project's 2-core machine, quiet: 40 µs of server CPU per REGISTER
// against 53-56 µs with glibc's malloc, and a start-up load of 1M bindings about twice as
// fast (BENCHMARKS.md, "Registrar").
// Built with the crate's `no_thp` feature: mimalloc otherwise asks for transparent huge
// pages on its arenas, and a huge page counts whole in the RSS however little of it is
// used (1,000,000 bindings: 380-396 MB with them, 331 MB without; an idle server 62 MB
// against 41 MB).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `sipreg --version`: the crate version and the commit it was built from (build.rs).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("SIPREG_GIT_COMMIT"),
    ")"
);

#[derive(Parser)]
#[command(name = "sipreg", version = VERSION, about = "SIP registrar and presence server")]
struct Cli {
    /// TOML configuration file (see config/sipreg.toml).
    #[arg(long, global = true, env = "SIPREG_CONFIG")]
    config: Option<PathBuf>,
    /// Database URL, e.g. sqlite://data/sipreg.db?mode=rwc or postgres://...
    #[arg(long, global = true, env = "SIPREG_DATABASE_URL")]
    database: Option<String>,
    /// Log format on standard error: text or json (log.format).
    #[arg(long, global = true, env = "SIPREG_LOG_FORMAT", value_enum)]
    log_format: Option<sipreg::logs::LogFormat>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the SIP server (UDP, TCP and, with a certificate, TLS) and the admin HTTP API.
    Serve(ServeArgs),
    #[command(flatten)]
    Admin(sipreg::users::cli::AdminCommand),
    #[command(flatten)]
    Registrar(sipreg::registrar::cli::RegistrarCommand),
    #[command(flatten)]
    Client(sipreg::oauth::cli::ClientCommand),
    /// Load generator for loopback benchmarks (see the README, "Benchmarks").
    Bench(sipreg::loadgen::cli::BenchArgs),
    /// Configuration files.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// TLS certificates (see the README, "SIP over TLS").
    #[command(subcommand)]
    Tls(sipreg::transport::tls::cli::TlsCommand),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Checks a configuration file: prints OK, or every problem with its key (exit code 2).
    Check {
        /// The TOML file to check.
        file: PathBuf,
    },
}

/// `sipreg config check FILE`.
fn config_check(file: &std::path::Path) -> ExitCode {
    match sipreg::config::check::check_file(file) {
        Ok(_) => {
            println!("{}: OK", file.display());
            ExitCode::SUCCESS
        }
        Err(problems) => {
            for p in &problems {
                eprintln!("{}: {p}", file.display());
            }
            eprintln!("{}: {} problem(s)", file.display(), problems.len());
            ExitCode::from(2)
        }
    }
}

#[derive(Args)]
struct ServeArgs {
    /// SIP listen address for UDP and TCP.
    #[arg(long, env = "SIPREG_SIP_LISTEN")]
    sip_listen: Option<SocketAddr>,
    /// Admin HTTP API listen address.
    #[arg(long, env = "SIPREG_HTTP_LISTEN")]
    http_listen: Option<SocketAddr>,
    /// Public HTTPS listen address (OAuth endpoints, pages, JWKS; needs the TLS certificate).
    #[arg(long, env = "SIPREG_PUBLIC_LISTEN")]
    public_listen: Option<SocketAddr>,
    /// A served domain (repeatable). None: serve any domain.
    #[arg(long = "domain", env = "SIPREG_DOMAINS", value_delimiter = ',')]
    domains: Vec<String>,
    /// Accept REGISTER, SUBSCRIBE and PUBLISH without authentication (lab use only).
    #[arg(long)]
    no_auth: bool,
    /// Write every SIP message received and sent to this file, credentials redacted
    /// (trace.file).
    #[arg(long, env = "SIPREG_SIP_TRACE")]
    sip_trace: Option<PathBuf>,
    #[command(flatten)]
    tls: TlsArgs,
    #[command(flatten)]
    websocket: WebSocketArgs,
}

/// SIP over TLS: served when a certificate is configured.
#[derive(Args)]
struct TlsArgs {
    /// SIP over TLS listen address.
    #[arg(long, env = "SIPREG_SIPS_LISTEN")]
    sips_listen: Option<SocketAddr>,
    /// PEM certificate chain for TLS (tls.cert_file).
    #[arg(long, env = "SIPREG_TLS_CERT_FILE")]
    tls_cert_file: Option<PathBuf>,
    /// PEM private key for TLS (tls.key_file).
    #[arg(long, env = "SIPREG_TLS_KEY_FILE")]
    tls_key_file: Option<PathBuf>,
}

impl TlsArgs {
    fn apply(self, config: &mut sipreg::transport::tls::TlsConfig) {
        if let Some(a) = self.sips_listen {
            config.listen = a;
        }
        if let Some(f) = self.tls_cert_file {
            config.cert_file = f;
        }
        if let Some(f) = self.tls_key_file {
            config.key_file = f;
        }
    }
}

/// SIP over WebSocket listeners (`[websocket]` in the config file).
#[derive(Args)]
struct WebSocketArgs {
    /// SIP over WebSocket (ws://) listen address, e.g. 0.0.0.0:5066.
    #[arg(long, env = "SIPREG_WS_LISTEN")]
    ws_listen: Option<SocketAddr>,
    /// SIP over secure WebSocket (wss://) listen address, e.g. 0.0.0.0:7443 (uses the [tls] certificate).
    #[arg(long, env = "SIPREG_WSS_LISTEN")]
    wss_listen: Option<SocketAddr>,
}

fn load_config(cli: &Cli) -> Result<Config, String> {
    let mut config = Config::load(cli.config.as_deref()).map_err(|e| e.to_string())?;
    if let Some(url) = &cli.database {
        config.database.url = url.clone();
    }
    Ok(config)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Checks the file it is given, not the --config one (which may be the broken one).
    if let Command::Config(ConfigCommand::Check { file }) = &cli.command {
        return config_check(file);
    }
    let mut config = match load_config(&cli) {
        Ok(c) => c,
        Err(e) => {
            sipreg::logs::init(cli.log_format.unwrap_or_default(), "info");
            eprintln!("sipreg: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(f) = cli.log_format {
        config.log.format = f;
    }
    let log = sipreg::logs::init(config.log.format, &config.log.level);
    match cli.command {
        Command::Admin(cmd) => sipreg::users::cli::run(cmd, &config),
        Command::Registrar(cmd) => sipreg::registrar::cli::run(cmd, &config),
        Command::Client(cmd) => sipreg::oauth::cli::run(cmd, &config),
        Command::Bench(args) => sipreg::loadgen::cli::run(args),
        Command::Tls(cmd) => sipreg::transport::tls::cli::run(cmd),
        Command::Config(ConfigCommand::Check { file }) => config_check(&file),
        Command::Serve(args) => {
            if let Some(a) = args.sip_listen {
                config.sip.listen = a;
            }
            if let Some(a) = args.http_listen {
                config.http.listen = a;
            }
            if let Some(a) = args.public_listen {
                config.http.public_listen = Some(a);
            }
            if !args.domains.is_empty() {
                config.sip.domains = args.domains;
            }
            if args.no_auth {
                config.auth.required = false;
            }
            if let Some(f) = args.sip_trace {
                config.trace.file = Some(f);
            }
            args.tls.apply(&mut config.tls);
            if let Some(a) = args.websocket.ws_listen {
                config.websocket.ws_listen = Some(a);
            }
            if let Some(a) = args.websocket.wss_listen {
                config.websocket.wss_listen = Some(a);
            }
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("sipreg: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let serve = sipreg::server::run_until_signal_with(config, cli.config, Some(log));
            match runtime.block_on(serve) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("sipreg: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
