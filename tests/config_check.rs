//! `sipreg config check FILE`, the real binary: OK and exit 0 for a good file, every
//! problem with its key and exit 2 for a bad one.

use std::path::Path;
use std::process::{Command, Output};

fn check(path: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sipreg"))
        .args(["config", "check"])
        .arg(path)
        // A broken --config elsewhere must not matter: the named file is checked.
        .env("SIPREG_CONFIG", "/nonexistent/sipreg.toml")
        .output()
        .expect("run sipreg config check")
}

#[test]
fn the_shipped_file_is_ok() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/sipreg.toml");
    let out = check(&file);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .trim_end()
            .ends_with(": OK")
    );
}

#[test]
fn every_problem_is_named_with_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        "[sip]\nlisten = \"127.0.0.1:5070\"\n[registrar]\nmin_expires = 3600\nmax_expires = 60\n\
         [http]\nlisten = \"127.0.0.1:5070\"\npublic_listen = \"127.0.0.1:8443\"\n\
         [tls]\ncert_file = \"/nonexistent/cert.pem\"\nkey_file = \"/nonexistent/key.pem\"\n\
         [auth]\nchallenges = [\"kerberos\"]\n[log]\nlevel = \"info,=[\"\n",
    )
    .unwrap();
    let out = check(&file);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    for key in [
        "registrar.min_expires: 3600 is above registrar.max_expires (60)",
        "http.listen: 127.0.0.1:5070 is also sip.listen",
        "tls.cert_file: /nonexistent/cert.pem is not a readable file",
        "tls.key_file: /nonexistent/key.pem is not a readable file",
        "auth.challenges: ",
        "log.level: ",
    ] {
        assert!(err.contains(key), "{key:?} missing from:\n{err}");
    }
    assert!(err.contains("kerberos"), "{err}");
    assert!(err.contains("6 problem(s)"), "{err}");
}

#[test]
fn unknown_keys_and_wrong_types_are_all_reported() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("typos.toml");
    std::fs::write(
        &file,
        "[sip]\nlisten_typo = \"1.2.3.4:5\"\nt1_ms = \"fast\"\n[registar]\nmax_expires = 60\n\
         [tokens]\naccess_ttl_sec = 5\n",
    )
    .unwrap();
    let out = check(&file);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    for key in [
        ": registar: ",
        ": sip.listen_typo: ",
        ": sip.t1_ms: ",
        ": tokens.access_ttl_sec: ",
    ] {
        assert!(err.contains(key), "{key:?} missing from:\n{err}");
    }
    assert!(err.contains("unknown field `listen_typo`"), "{err}");
    assert!(err.contains("4 problem(s)"), "{err}");
}

#[test]
fn a_syntax_error_and_a_missing_file_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.toml");
    std::fs::write(&file, "[sip\nlisten = 1\n").unwrap();
    let out = check(&file);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let out = check(&dir.path().join("missing.toml"));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
}
