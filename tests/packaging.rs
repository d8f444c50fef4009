//! Packaging: `sipreg --version` names the commit, and the systemd unit in `packaging/`
//! passes `systemd-analyze verify` (SKIPPED without systemd-analyze, unless
//! SIPREG_REQUIRE_TOOLS=1).

mod common;

use std::path::Path;
use std::process::Command;

#[test]
fn version_prints_the_crate_version_and_the_commit() {
    let out = Command::new(env!("CARGO_BIN_EXE_sipreg"))
        .arg("--version")
        .output()
        .expect("run sipreg --version");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let expected = format!("sipreg {} (commit ", env!("CARGO_PKG_VERSION"));
    assert!(text.starts_with(&expected), "{text}");
    let commit = text
        .trim()
        .strip_prefix(&expected)
        .and_then(|s| s.strip_suffix(')'))
        .expect("a commit in parentheses");
    // In a git checkout, exactly the commit git names; elsewhere "unknown".
    let git = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output();
    match git {
        Ok(o) if o.status.success() => {
            assert_eq!(commit, String::from_utf8_lossy(&o.stdout).trim())
        }
        _ => assert_eq!(commit, "unknown"),
    }
}

#[test]
fn systemd_unit_is_hardened_and_verifies() {
    let unit_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/sipreg.service");
    let unit = std::fs::read_to_string(&unit_path).expect("packaging/sipreg.service");
    for line in [
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "StateDirectory=sipreg",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "ProtectHome=yes",
        "CapabilityBoundingSet=",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        "Environment=SIPREG_DATABASE_URL=sqlite:///var/lib/sipreg/sipreg.db?mode=rwc",
    ] {
        assert!(unit.lines().any(|l| l == line), "missing {line:?}");
    }
    if !common::tool("systemd-analyze") {
        return;
    }
    // verify checks that ExecStart's program exists: point it at the binary just built.
    let dir = tempfile::tempdir().expect("tempdir");
    let copy = dir.path().join("sipreg.service");
    let unit = unit.replace("/usr/local/bin/sipreg", env!("CARGO_BIN_EXE_sipreg"));
    std::fs::write(&copy, unit).expect("write the unit");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .expect("run systemd-analyze");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "systemd-analyze verify: {stderr}");
    assert!(
        !stderr.contains("sipreg.service:"),
        "warnings about the unit: {stderr}"
    );
}
