//! Admin subcommands of the `sipreg` binary: `user`, `token`, `apikey`, `keys`. They
//! open the same store as the server (from `--config` / `--database`), so they work
//! while it runs. Secrets go to stdout only where the command exists to print one.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Subcommand;

use super::{NewUser, User, UserQuery, UsersError, UsersService};
use crate::config::Config;

/// Store administration commands (flattened into the top-level `Command`).
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Manage users.
    #[command(subcommand)]
    User(UserCmd),
    /// Issue access tokens.
    #[command(subcommand)]
    Token(TokenCmd),
    /// Manage API keys of service accounts.
    #[command(subcommand, name = "apikey")]
    ApiKey(ApiKeyCmd),
    /// Manage token signing keys.
    #[command(subcommand)]
    Keys(KeysCmd),
}

#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// Create a user (password prompted on a terminal, or read with --password-stdin).
    Add {
        name: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Create the user without a password (API keys only).
        #[arg(long, conflicts_with = "password_stdin")]
        no_password: bool,
        /// Role (repeatable), e.g. admin.
        #[arg(long = "role")]
        roles: Vec<String>,
        /// Scope (repeatable). Default: the configured default scopes.
        #[arg(long = "scope")]
        scopes: Vec<String>,
    },
    /// List users.
    List {
        /// Only usernames containing this text.
        #[arg(long)]
        filter: Option<String>,
    },
    /// Show one user.
    Show { name: String },
    /// Set a user's password (revokes their refresh tokens).
    Passwd {
        name: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable a user: no login, their tokens stop validating.
    Disable { name: String },
    /// Delete a user with their tokens and keys.
    Remove { name: String },
}

#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Print an access token for NAME (only the token, on stdout).
    Issue {
        name: String,
        /// Space-separated scopes, a subset of the user's. Default: all of them.
        #[arg(long)]
        scope: Option<String>,
        /// Lifetime in seconds. Default: tokens.access_ttl_secs.
        #[arg(long)]
        ttl: Option<u64>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ApiKeyCmd {
    /// Create a key; it is printed once and cannot be shown again.
    Create {
        /// Owner of the key (a username).
        #[arg(long)]
        user: String,
        /// Label to tell keys apart.
        #[arg(long)]
        name: String,
        /// Scope (repeatable), a subset of the user's. Default: all of them.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Expire after this many days. Default: never.
        #[arg(long)]
        expires: Option<u64>,
    },
    /// List keys (metadata only).
    List {
        /// Only the keys of this username.
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke a key now.
    Revoke { id: String },
    /// Create a replacement; the old key keeps working for tokens.api_key_grace_secs.
    Rotate { id: String },
}

#[derive(Debug, Subcommand)]
pub enum KeysCmd {
    /// Add a new signing key; older keys retire once their tokens have expired.
    Rotate,
    /// List signing keys.
    List,
}

/// Runs `cmd` against the store of `config`.
pub fn run(cmd: AdminCommand, config: &Config) -> ExitCode {
    block_on_command(execute(cmd, config))
}

/// Runs one CLI command to completion on a small runtime; errors go to stderr with a
/// non-zero exit status.
pub fn block_on_command<E: std::fmt::Display>(
    command: impl std::future::Future<Output = Result<(), E>>,
) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sipreg: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sipreg: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(cmd: AdminCommand, config: &Config) -> Result<(), UsersError> {
    let svc = UsersService::open(config).await?;
    let mut out = std::io::stdout().lock();
    let w = |e: std::io::Error| UsersError::Internal(format!("cannot write output: {e}"));
    match cmd {
        AdminCommand::User(c) => user(&svc, c, &mut out).await?,
        AdminCommand::Token(TokenCmd::Issue { name, scope, ttl }) => {
            let user = svc.get_user_by_name(&name).await?;
            let scopes: Option<Vec<String>> =
                scope.map(|s| s.split_ascii_whitespace().map(str::to_string).collect());
            let token = svc.issue_token(&user, scopes.as_deref(), ttl)?;
            writeln!(out, "{}", token.access_token).map_err(w)?;
        }
        AdminCommand::ApiKey(c) => apikey(&svc, c, &mut out).await?,
        AdminCommand::Keys(KeysCmd::Rotate) => {
            let kid = svc.rotate_signing_key().await?;
            writeln!(out, "new signing key {kid}").map_err(w)?;
        }
        AdminCommand::Keys(KeysCmd::List) => {
            let current = svc.current_kid();
            for (k, retired) in svc.store().all_signing_keys().await? {
                let state = match (retired, k.retire_after) {
                    (Some(t), _) => format!("retired {t}"),
                    (None, Some(t)) => format!("verifying until {t}"),
                    (None, None) if k.kid == current => "signing".to_string(),
                    (None, None) => "live".to_string(),
                };
                writeln!(
                    out,
                    "{}  created {}  {}  {}",
                    k.kid, k.created_at, state, k.key_path
                )
                .map_err(w)?;
            }
        }
    }
    Ok(())
}

async fn user(
    svc: &Arc<UsersService>,
    cmd: UserCmd,
    out: &mut impl Write,
) -> Result<(), UsersError> {
    let w = |e: std::io::Error| UsersError::Internal(format!("cannot write output: {e}"));
    match cmd {
        UserCmd::Add {
            name,
            password_stdin,
            no_password,
            roles,
            scopes,
        } => {
            let password = if no_password {
                None
            } else {
                Some(read_password(password_stdin)?)
            };
            let user = svc
                .create_user(NewUser {
                    username: name,
                    password,
                    roles,
                    scopes: (!scopes.is_empty()).then_some(scopes),
                    ..Default::default()
                })
                .await?;
            writeln!(out, "created user {} ({})", user.username, user.id).map_err(w)?;
        }
        UserCmd::List { filter } => {
            let mut offset = 0;
            loop {
                let page = svc
                    .list_users(&UserQuery {
                        filter: filter.clone(),
                        limit: Some(500),
                        offset: Some(offset),
                    })
                    .await?;
                for u in &page {
                    let state = if u.active { "active" } else { "disabled" };
                    writeln!(
                        out,
                        "{}  {}  {}  roles={}",
                        u.id,
                        u.username,
                        state,
                        u.roles.join(",")
                    )
                    .map_err(w)?;
                }
                if page.len() < 500 {
                    break;
                }
                offset += 500;
            }
        }
        UserCmd::Show { name } => show(&svc.get_user_by_name(&name).await?, out).map_err(w)?,
        UserCmd::Passwd {
            name,
            password_stdin,
        } => {
            let user = svc.get_user_by_name(&name).await?;
            let password = read_password(password_stdin)?;
            svc.set_password(&user.id, &password).await?;
            writeln!(
                out,
                "password of {} changed; refresh tokens revoked",
                user.username
            )
            .map_err(w)?;
        }
        UserCmd::Disable { name } => {
            let user = svc.get_user_by_name(&name).await?;
            svc.disable_user(&user.id).await?;
            writeln!(out, "disabled {}", user.username).map_err(w)?;
        }
        UserCmd::Remove { name } => {
            let user = svc.get_user_by_name(&name).await?;
            svc.delete_user(&user.id).await?;
            writeln!(out, "removed {}", user.username).map_err(w)?;
        }
    }
    Ok(())
}

async fn apikey(
    svc: &Arc<UsersService>,
    cmd: ApiKeyCmd,
    out: &mut impl Write,
) -> Result<(), UsersError> {
    let w = |e: std::io::Error| UsersError::Internal(format!("cannot write output: {e}"));
    match cmd {
        ApiKeyCmd::Create {
            user,
            name,
            scopes,
            expires,
        } => {
            let owner = svc.get_user_by_name(&user).await?;
            let scopes = (!scopes.is_empty()).then_some(scopes);
            let (info, key) = svc
                .create_api_key(&owner.id, &name, scopes, expires)
                .await?;
            eprintln!(
                "API key {} created; store it now, it is not shown again:",
                info.id
            );
            writeln!(out, "{key}").map_err(w)?;
        }
        ApiKeyCmd::List { user } => {
            let owner = match user {
                Some(u) => Some(svc.get_user_by_name(&u).await?.id),
                None => None,
            };
            for k in svc.list_api_keys(owner.as_deref()).await? {
                let state = if k.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                let expires = k.expires_at.map_or("never".to_string(), |t| t.to_string());
                writeln!(
                    out,
                    "{}  sipreg_{}_…  user={}  name={}  scopes={}  expires={}  {}",
                    k.id,
                    k.prefix,
                    k.user_id,
                    k.name,
                    k.scopes.join(","),
                    expires,
                    state
                )
                .map_err(w)?;
            }
        }
        ApiKeyCmd::Revoke { id } => {
            svc.revoke_api_key(&id).await?;
            writeln!(out, "revoked {id}").map_err(w)?;
        }
        ApiKeyCmd::Rotate { id } => {
            let (info, key) = svc.rotate_api_key(&id).await?;
            let grace = svc.config().tokens.api_key_grace_secs;
            eprintln!(
                "API key {} replaces {id}, which stays valid for {grace} s; new key:",
                info.id
            );
            writeln!(out, "{key}").map_err(w)?;
        }
    }
    Ok(())
}

fn show(u: &User, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(out, "id:           {}", u.id)?;
    writeln!(out, "username:     {}", u.username)?;
    writeln!(
        out,
        "display name: {}",
        u.display_name.as_deref().unwrap_or("")
    )?;
    writeln!(out, "email:        {}", u.email.as_deref().unwrap_or(""))?;
    writeln!(out, "roles:        {}", u.roles.join(" "))?;
    writeln!(out, "scopes:       {}", u.scopes.join(" "))?;
    writeln!(out, "active:       {}", u.active)?;
    writeln!(out, "created:      {}", u.created_at)?;
    writeln!(
        out,
        "last login:   {}",
        u.last_login_at
            .map_or("never".to_string(), |t| t.to_string())
    )
}

/// The password from stdin's first line, or prompted twice on a terminal.
fn read_password(from_stdin: bool) -> Result<String, UsersError> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map_err(|e| {
            UsersError::Invalid(format!("cannot read the password from stdin: {e}"))
        })?;
        let password = line.trim_end_matches(['\n', '\r']).to_string();
        if password.is_empty() {
            return Err(UsersError::Invalid("empty password on stdin".to_string()));
        }
        return Ok(password);
    }
    if !std::io::stdin().is_terminal() {
        return Err(UsersError::Invalid(
            "no terminal to prompt for the password: use --password-stdin".to_string(),
        ));
    }
    let prompt = |p: &str| {
        rpassword::prompt_password(p)
            .map_err(|e| UsersError::Invalid(format!("cannot read the password: {e}")))
    };
    let first = prompt("Password: ")?;
    if prompt("Repeat password: ")? != first {
        return Err(UsersError::Invalid("the passwords differ".to_string()));
    }
    Ok(first)
}
