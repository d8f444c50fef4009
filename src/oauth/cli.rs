//! `sipreg client add|list|show|remove`: the OAuth clients registry from the command
//! line, on the same store as the server. A confidential client's secret is printed
//! once, at creation.

use std::io::Write;
use std::process::ExitCode;

use clap::Subcommand;

use super::{NewClient, OAuthServer};
use crate::config::Config;
use crate::users::store::ClientRecord;
use crate::users::{UsersError, UsersService};

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Manage OAuth 2.0 clients (phones, softclients, services).
    #[command(subcommand)]
    Client(ClientCmd),
}

#[derive(Debug, Subcommand)]
pub enum ClientCmd {
    /// Register a client; prints its client_id (and, unless --public, its secret).
    Add {
        /// A name for people.
        name: String,
        /// The client_id (default: generated).
        #[arg(long)]
        id: Option<String>,
        /// A public client (no secret): phones and apps that cannot keep one.
        #[arg(long)]
        public: bool,
        /// Grant it may use (repeatable): password, refresh_token, client_credentials.
        #[arg(long = "grant", required = true)]
        grants: Vec<String>,
        /// Exact redirect URI (repeatable).
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// Scope it may ask for (repeatable), e.g. sip.register.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
    },
    /// List registered clients.
    List,
    /// Show one client.
    Show { id: String },
    /// Remove a client (its refresh tokens are revoked).
    Remove { id: String },
}

pub fn run(cmd: ClientCommand, config: &Config) -> ExitCode {
    crate::users::cli::block_on_command(execute(cmd, config))
}

async fn execute(cmd: ClientCommand, config: &Config) -> Result<(), UsersError> {
    let server = OAuthServer::new(UsersService::open(config).await?);
    let mut out = std::io::stdout().lock();
    let w = |e: std::io::Error| UsersError::Internal(format!("cannot write output: {e}"));
    let ClientCommand::Client(cmd) = cmd;
    match cmd {
        ClientCmd::Add {
            name,
            id,
            public,
            grants,
            redirect_uris,
            scopes,
        } => {
            let (client, secret) = server
                .add_client(NewClient {
                    id,
                    name,
                    public,
                    grants,
                    redirect_uris,
                    scopes,
                })
                .await?;
            writeln!(out, "client_id={}", client.id).map_err(w)?;
            if let Some(s) = secret {
                writeln!(out, "client_secret={s}").map_err(w)?;
            }
        }
        ClientCmd::List => {
            for c in server.list_clients().await? {
                writeln!(out, "{}", line(&c)).map_err(w)?;
            }
        }
        ClientCmd::Show { id } => {
            let c = server.get_client(&id).await?;
            writeln!(out, "{}", line(&c)).map_err(w)?;
            for uri in &c.redirect_uris {
                writeln!(out, "  redirect_uri {uri}").map_err(w)?;
            }
        }
        ClientCmd::Remove { id } => {
            server.remove_client(&id).await?;
            writeln!(out, "removed client {id}").map_err(w)?;
        }
    }
    Ok(())
}

fn line(c: &ClientRecord) -> String {
    format!(
        "{}  {}  {}  grants={}  scopes={}  \"{}\"",
        c.id,
        if c.is_public() {
            "public"
        } else {
            "confidential"
        },
        c.created_at,
        c.grants.join(","),
        c.scopes.join(","),
        c.name
    )
}
