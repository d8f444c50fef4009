//! `sipreg tls ...`: `self-signed` writes a lab certificate and key and prints the
//! configuration lines that use them.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;

use super::self_signed::self_signed;

#[derive(Debug, Subcommand)]
pub enum TlsCommand {
    /// Write cert.pem and key.pem (mode 0600) for a lab: a self-signed certificate for
    /// HOST, localhost, 127.0.0.1 and ::1. Clients must be told to trust cert.pem.
    SelfSigned {
        /// Folder to write into (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// The server's host name or IP address, as clients will name it.
        #[arg(long)]
        name: String,
        /// Replace existing files.
        #[arg(long)]
        force: bool,
    },
}

pub fn run(cmd: TlsCommand) -> ExitCode {
    match execute(cmd) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sipreg: {e}");
            ExitCode::FAILURE
        }
    }
}

fn execute(cmd: TlsCommand) -> Result<(), String> {
    let TlsCommand::SelfSigned { out, name, force } = cmd;
    let pair = self_signed(&name).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let out = std::fs::canonicalize(&out).unwrap_or(out);
    let cert = out.join("cert.pem");
    let key = out.join("key.pem");
    if !force {
        for f in [&cert, &key] {
            if f.exists() {
                return Err(format!(
                    "{} exists (use --force to replace it)",
                    f.display()
                ));
            }
        }
    }
    write_file(&key, pair.key_pem.as_bytes(), 0o600)?;
    write_file(&cert, pair.cert_pem.as_bytes(), 0o644)?;
    println!(
        "# Wrote {} and {} (self-signed, for {name}).",
        cert.display(),
        key.display()
    );
    println!("# Add to the [tls] section of the configuration file:");
    println!("cert_file = {}", toml_path(&cert));
    println!("key_file = {}", toml_path(&key));
    println!(
        "# Or: SIPREG_TLS_CERT_FILE={} SIPREG_TLS_KEY_FILE={} sipreg serve",
        cert.display(),
        key.display()
    );
    Ok(())
}

/// A path as a TOML string (quoted and escaped).
fn toml_path(p: &Path) -> String {
    toml::Value::String(p.display().to_string()).to_string()
}

/// Writes `data` to `path` created with `mode` (the key is never readable by others, not
/// even for a moment).
fn write_file(path: &Path, data: &[u8], mode: u32) -> Result<(), String> {
    let err = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        opts.mode(mode);
        let mut f = opts.open(path).map_err(err)?;
        // An existing file keeps its mode on open: set it.
        f.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(err)?;
        f.write_all(data).map_err(err)
    }
    #[cfg(not(unix))]
    {
        let _ = mode;
        opts.open(path).map_err(err)?.write_all(data).map_err(err)
    }
}
