//! Registrar commands of the `sipreg` binary: `registrations` (what the store holds) and
//! `sipp-users` (users and tokens for a load test, as a sipp injection file) and
//! `bench-users` (the same in bulk, bench only).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use super::aor::Aor;
use super::persist;
use crate::clock::unix_now;
use crate::config::Config;
use crate::users::{NewUser, UsersError, UsersService};

#[derive(Debug, Subcommand)]
pub enum RegistrarCommand {
    /// List stored bindings, of every AOR or of one (works while the server runs; in
    /// write-behind mode the newest changes reach the store within a batch window).
    Registrations {
        /// An address-of-record, e.g. sip:alice@example.com.
        aor: Option<String>,
    },
    /// Create (or reuse, with a new password) N users and write a sipp injection file:
    /// `SEQUENTIAL`, then `username;password;access token;[authentication ...][;domain]`
    /// per line (field3 is sipp's Digest keyword for that user).
    SippUsers {
        #[arg(long)]
        count: u32,
        #[arg(long, default_value = "user")]
        prefix: String,
        /// Added as a fifth field, for scenarios that need it.
        #[arg(long)]
        domain: Option<String>,
        #[arg(long)]
        out: PathBuf,
        /// Lifetime of the access tokens, in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
    },
    /// Bench only: N users sharing one password (hashed once, role `bench`) and their
    /// access tokens, in bulk, for `sipreg bench` (see BENCHMARKS.md, "Fleet").
    BenchUsers(super::bench_users::BenchUsersArgs),
}

pub fn run(cmd: RegistrarCommand, config: &Config) -> ExitCode {
    crate::users::cli::block_on_command(execute(cmd, config))
}

/// A password the default policy accepts, random enough for a lab.
pub(super) fn lab_password() -> String {
    let mut b = [0u8; 12];
    rand::fill(&mut b);
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("Lab-{hex}-Q7")
}

async fn execute(cmd: RegistrarCommand, config: &Config) -> Result<(), String> {
    let svc = UsersService::open(config)
        .await
        .map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    match cmd {
        RegistrarCommand::Registrations { aor } => {
            let want = match aor {
                Some(a) => {
                    Some(Aor::parse(&a).ok_or_else(|| format!("'{a}' is not a SIP or SIPS URI"))?)
                }
                None => None,
            };
            let now = unix_now();
            let rows = persist::list(svc.store().pool(), now)
                .await
                .map_err(|e| format!("cannot read bindings: {e}"))?;
            let mut shown = 0;
            for (aor, b) in rows
                .iter()
                .filter(|(a, _)| want.as_ref().is_none_or(|w| w == a))
            {
                writeln!(
                    out,
                    "{aor}\t<{}>\texpires={}\t{}\t{}",
                    b.uri,
                    b.remaining(now),
                    b.instance.as_deref().unwrap_or("-"),
                    b.source.addr
                )
                .map_err(|e| e.to_string())?;
                shown += 1;
            }
            if shown == 0
                && let Some(w) = want
            {
                return Err(format!("no bindings for {w}"));
            }
        }
        RegistrarCommand::BenchUsers(args) => {
            super::bench_users::run(&svc, args, &mut out).await?;
        }
        RegistrarCommand::SippUsers {
            count,
            prefix,
            domain,
            out: path,
            ttl,
        } => {
            let mut lines = vec!["SEQUENTIAL".to_string()];
            for i in 0..count {
                let name = format!("{prefix}{i}");
                let password = lab_password();
                let user = match svc.get_user_by_name(&name).await {
                    Ok(u) => {
                        svc.set_password(&u.id, &password)
                            .await
                            .map_err(|e| e.to_string())?;
                        u
                    }
                    Err(UsersError::NotFound(_)) => svc
                        .create_user(NewUser {
                            username: name.clone(),
                            password: Some(password.clone()),
                            ..Default::default()
                        })
                        .await
                        .map_err(|e| e.to_string())?,
                    Err(e) => return Err(e.to_string()),
                };
                let token = svc
                    .issue_token(&user, None, Some(ttl))
                    .map_err(|e| e.to_string())?;
                let mut line = format!(
                    "{name};{password};{};[authentication username={name} password={password}]",
                    token.access_token
                );
                if let Some(d) = &domain {
                    line.push(';');
                    line.push_str(d);
                }
                lines.push(line);
            }
            std::fs::write(&path, lines.join("\n") + "\n")
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            writeln!(out, "{count} users written to {}", path.display())
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}
