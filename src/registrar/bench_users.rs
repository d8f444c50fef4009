//! `sipreg bench-users`: bench-only bulk users and tokens for `sipreg bench` (fleet and
//! first-sighting models) and the matching Kamailio Digest subscribers.
//!
//! Every user shares one password, hashed once (Argon2 per user would take hours for a
//! million); the users are marked with the `bench` role. The file is the sipp injection
//! format `sipp-users` writes, plus a sixth field with further tokens of the user
//! (comma-separated): `name;password;token;[authentication ...];;token2,token3`.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use md5::{Digest, Md5};
use sqlx::{AnyPool, Executor};

use crate::users::UsersService;

/// Subscribers per transaction in Kamailio's database.
const KAMAILIO_CHUNK: usize = 10_000;

/// What `sipreg bench-users` was asked for.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchUsersArgs {
    #[arg(long)]
    pub count: usize,
    #[arg(long, default_value = "bench")]
    pub prefix: String,
    /// The users file for `sipreg bench --users-csv`.
    #[arg(long)]
    pub out: std::path::PathBuf,
    /// Access tokens per user (the fleet model moves to the next one as a token nears
    /// its end; first-sighting sends each once).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub tokens_per_user: u32,
    /// Lifetime of the access tokens, in seconds.
    #[arg(long, default_value_t = 3600)]
    pub lifetime: u64,
    /// The shared password (default: a random one that the password policy accepts).
    #[arg(long)]
    pub password: Option<String>,
    /// Also write the users as Kamailio subscribers (auth_db, SQLite) to this file:
    /// password, ha1 and ha1b per user.
    #[arg(long)]
    pub kamailio_db: Option<std::path::PathBuf>,
    /// The Digest realm (and domain) of the Kamailio subscribers.
    #[arg(long, default_value = "127.0.0.1")]
    pub kamailio_domain: String,
}

fn md5_hex(s: &str) -> String {
    crate::auth::secret::hex(&Md5::digest(s.as_bytes()))
}

/// Users created, signed and written per round: the memory of a million-user run stays
/// that of one round.
const ROUND: usize = 50_000;

/// Runs the command; prints what it made and how long each part took.
pub async fn run(
    svc: &UsersService,
    args: BenchUsersArgs,
    out: &mut impl Write,
) -> Result<(), String> {
    let password = args
        .password
        .clone()
        .unwrap_or_else(super::cli::lab_password);
    let names: Vec<String> = (0..args.count)
        .map(|i| format!("{}{i}", args.prefix))
        .collect();
    let failed = |e: std::io::Error| format!("cannot write {}: {e}", args.out.display());
    let mut file = BufWriter::new(std::fs::File::create(&args.out).map_err(failed)?);
    writeln!(file, "SEQUENTIAL").map_err(failed)?;
    let t = Instant::now();
    let hash = svc
        .bench_password_hash(&password)
        .await
        .map_err(|e| e.to_string())?;
    let (mut created, mut signed) = (t.elapsed(), Duration::ZERO);
    for round in names.chunks(ROUND) {
        let t = Instant::now();
        let users = svc
            .create_bench_users(round, &password, &hash)
            .await
            .map_err(|e| e.to_string())?;
        created += t.elapsed();
        let t = Instant::now();
        let tokens = svc
            .issue_bench_tokens(&users, args.tokens_per_user as usize, args.lifetime)
            .map_err(|e| e.to_string())?;
        signed += t.elapsed();
        write_users(&mut file, round, &password, &tokens).map_err(failed)?;
    }
    file.flush().map_err(failed)?;
    writeln!(
        out,
        "{} users (created in {:.1} s), {} tokens (signed in {:.1} s) written to {}",
        names.len(),
        created.as_secs_f64(),
        names.len() * args.tokens_per_user as usize,
        signed.as_secs_f64(),
        args.out.display()
    )
    .map_err(|e| e.to_string())?;
    if let Some(db) = &args.kamailio_db {
        let t = Instant::now();
        kamailio_subscribers(db, &args.kamailio_domain, &names, &password).await?;
        writeln!(
            out,
            "{} Kamailio subscribers written to {} in {:.1} s",
            names.len(),
            db.display(),
            t.elapsed().as_secs_f64()
        )
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The lines of `names` and their `tokens` in the users file.
fn write_users(
    f: &mut impl Write,
    names: &[String],
    password: &str,
    tokens: &[Vec<String>],
) -> std::io::Result<()> {
    for (name, toks) in names.iter().zip(tokens) {
        let (first, more) = toks.split_first().map_or(("", &[][..]), |(a, b)| (a, b));
        write!(
            f,
            "{name};{password};{first};[authentication username={name} password={password}]"
        )?;
        if !more.is_empty() {
            write!(f, ";;{}", more.join(","))?;
        }
        writeln!(f)?;
    }
    Ok(())
}

/// The subscriber table of Debian's kamailio-sqlite-modules (table version 7), created
/// when missing, and one row per user.
async fn kamailio_subscribers(
    path: &Path,
    domain: &str,
    names: &[String],
    password: &str,
) -> Result<(), String> {
    let failed = |e: sqlx::Error| format!("Kamailio database {}: {e}", path.display());
    let pool = AnyPool::connect(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .map_err(failed)?;
    pool.execute(
        "CREATE TABLE IF NOT EXISTS version (id INTEGER PRIMARY KEY NOT NULL, \
         table_name VARCHAR(32) NOT NULL, table_version INTEGER DEFAULT 0 NOT NULL, \
         CONSTRAINT version_table_name_idx UNIQUE (table_name))",
    )
    .await
    .map_err(failed)?;
    pool.execute(
        "INSERT OR IGNORE INTO version (table_name, table_version) \
         VALUES ('version', 1), ('subscriber', 7)",
    )
    .await
    .map_err(failed)?;
    pool.execute(
        "CREATE TABLE IF NOT EXISTS subscriber (id INTEGER PRIMARY KEY NOT NULL, \
         username VARCHAR(64) DEFAULT '' NOT NULL, domain VARCHAR(64) DEFAULT '' NOT NULL, \
         password VARCHAR(64) DEFAULT '' NOT NULL, ha1 VARCHAR(128) DEFAULT '' NOT NULL, \
         ha1b VARCHAR(128) DEFAULT '' NOT NULL, \
         CONSTRAINT subscriber_account_idx UNIQUE (username, domain))",
    )
    .await
    .map_err(failed)?;
    pool.execute("CREATE INDEX IF NOT EXISTS subscriber_username_idx ON subscriber (username)")
        .await
        .map_err(failed)?;
    for chunk in names.chunks(KAMAILIO_CHUNK) {
        let mut tx = pool.begin().await.map_err(failed)?;
        for name in chunk {
            sqlx::query(
                "INSERT OR REPLACE INTO subscriber (username, domain, password, ha1, ha1b) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(name)
            .bind(domain)
            .bind(password)
            .bind(md5_hex(&format!("{name}:{domain}:{password}")))
            .bind(md5_hex(&format!("{name}@{domain}:{domain}:{password}")))
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
        }
        tx.commit().await.map_err(failed)?;
    }
    pool.close().await;
    Ok(())
}
