//! The admin subcommands of the `sipreg` binary against a temporary store.

use std::io::Write;
use std::process::{Command, Output, Stdio};

struct Cli {
    dir: tempfile::TempDir,
}

impl Cli {
    fn new() -> Cli {
        let dir = tempfile::tempdir().unwrap();
        let toml = format!(
            "[users]\nargon2_memory_kib = 64\nargon2_iterations = 1\n[tokens]\nkey_dir = \"{}\"\n",
            dir.path().join("keys").display()
        );
        std::fs::write(dir.path().join("sipreg.toml"), toml).unwrap();
        Cli { dir }
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let db = format!("sqlite://{}/cli.db?mode=rwc", self.dir.path().display());
        let mut child = Command::new(env!("CARGO_BIN_EXE_sipreg"))
            .arg("--config")
            .arg(self.dir.path().join("sipreg.toml"))
            .args(["--database", &db])
            .args(args)
            .env_remove("SIPREG_CONFIG")
            .env_remove("SIPREG_DATABASE_URL")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        } else {
            drop(child.stdin.take());
        }
        child.wait_with_output().unwrap()
    }

    fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

#[test]
fn user_lifecycle_token_and_keys() {
    let cli = Cli::new();
    cli.ok(
        &[
            "user",
            "add",
            "alice",
            "--password-stdin",
            "--role",
            "admin",
        ],
        Some("Secret-Pass-4-wonder?\n"),
    );
    // Without a terminal and without --password-stdin it fails clearly.
    let out = cli.run(&["user", "add", "bob"], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--password-stdin"));
    // Weak password: every rule listed.
    let out = cli.run(&["user", "add", "bob", "--password-stdin"], Some("bob\n"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 12"));
    // Duplicate.
    let out = cli.run(
        &["user", "add", "alice", "--password-stdin"],
        Some("Secret-Pass-4-wonder?\n"),
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("username 'alice' already exists"));

    let list = cli.ok(&["user", "list"], None);
    assert!(list.contains("alice") && list.contains("active"));
    let show = cli.ok(&["user", "show", "alice"], None);
    assert!(show.contains("admin"), "{show}");

    let token = cli.ok(
        &[
            "token",
            "issue",
            "alice",
            "--scope",
            "sip.register",
            "--ttl",
            "60",
        ],
        None,
    );
    let token = token.trim();
    assert_eq!(
        token.split('.').count(),
        3,
        "stdout must be the token only: {token:?}"
    );
    let out = cli.run(&["token", "issue", "alice", "--scope", "not.granted"], None);
    assert!(!out.status.success());

    let key = cli.ok(
        &[
            "apikey",
            "create",
            "--user",
            "alice",
            "--name",
            "ci",
            "--scope",
            "presence.read",
            "--expires",
            "3",
        ],
        None,
    );
    assert!(key.trim().starts_with("sipreg_"));
    let keys = cli.ok(&["apikey", "list"], None);
    assert!(!keys.contains(key.trim()), "secret shown in list");
    let id = keys.split_whitespace().next().unwrap().to_string();
    let rotated = cli.ok(&["apikey", "rotate", &id], None);
    assert!(rotated.trim().starts_with("sipreg_") && rotated != key);
    cli.ok(&["apikey", "revoke", &id], None);
    assert!(cli.ok(&["apikey", "list"], None).contains("revoked"));

    let before = cli.ok(&["keys", "list"], None);
    assert_eq!(before.lines().count(), 1);
    cli.ok(&["keys", "rotate"], None);
    let after = cli.ok(&["keys", "list"], None);
    assert_eq!(after.lines().count(), 2);
    assert!(
        after.contains("verifying until") && after.contains("signing"),
        "{after}"
    );

    cli.ok(
        &["user", "passwd", "alice", "--password-stdin"],
        Some("Other-Pass-5-wonder!\n"),
    );
    cli.ok(&["user", "disable", "alice"], None);
    assert!(cli.ok(&["user", "list"], None).contains("disabled"));
    assert!(!cli.run(&["token", "issue", "alice"], None).status.success());
    cli.ok(&["user", "remove", "alice"], None);
    assert!(!cli.run(&["user", "show", "alice"], None).status.success());
}

#[test]
fn oauth_client_lifecycle() {
    let cli = Cli::new();
    let out = cli.ok(
        &[
            "client",
            "add",
            "Desk phones",
            "--id",
            "desk",
            "--public",
            "--grant",
            "password",
            "--grant",
            "refresh_token",
            "--scope",
            "sip.register",
        ],
        None,
    );
    assert_eq!(
        out.trim(),
        "client_id=desk",
        "a public client has no secret"
    );
    let out = cli.ok(
        &[
            "client",
            "add",
            "Dashboard",
            "--grant",
            "client_credentials",
            "--scope",
            "presence.read",
        ],
        None,
    );
    let secret = out
        .lines()
        .find_map(|l| l.strip_prefix("client_secret="))
        .expect("a confidential client's secret is printed once");
    assert!(secret.starts_with("cs_") && secret.len() == 67, "{secret}");
    let list = cli.ok(&["client", "list"], None);
    assert_eq!(list.lines().count(), 2, "{list}");
    assert!(
        list.contains("desk  public") && list.contains("confidential"),
        "{list}"
    );
    assert!(!list.contains(secret), "the secret is never listed");
    // A public client cannot have client_credentials; errors exit non-zero.
    let bad = cli.run(
        &[
            "client",
            "add",
            "x",
            "--public",
            "--grant",
            "client_credentials",
            "--scope",
            "a",
        ],
        None,
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("public client"));
    cli.ok(&["client", "remove", "desk"], None);
    assert_eq!(cli.ok(&["client", "list"], None).lines().count(), 1);
    assert!(!cli.run(&["client", "show", "desk"], None).status.success());
}
