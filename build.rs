//! Build script: records the git commit the binary was built from, for `sipreg --version`.
//! Outside a git checkout (a tarball, `cargo install` from a copy) or without git the
//! commit is "unknown"; the build never fails for it.

use std::path::Path;
use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=SIPREG_GIT_COMMIT={commit}");
    // A new commit moves HEAD's ref (or HEAD itself when detached). In a worktree `.git`
    // is a file; ask git where the real files are.
    let git_dir = Command::new("git")
        .args(["rev-parse", "--git-dir"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string());
    match git_dir {
        Some(dir) => {
            let dir = Path::new(&dir);
            let head = dir.join("HEAD");
            println!("cargo:rerun-if-changed={}", head.display());
            if let Ok(text) = std::fs::read_to_string(&head)
                && let Some(r) = text.strip_prefix("ref: ")
            {
                let common = Command::new("git")
                    .args(["rev-parse", "--git-common-dir"])
                    .output()
                    .ok()
                    .filter(|o| o.status.success())
                    .and_then(|o| String::from_utf8(o.stdout).ok())
                    .map(|s| s.trim().to_string())
                    .unwrap_or_else(|| dir.display().to_string());
                // Only files that exist: a missing one would rerun this script every build.
                for f in [r.trim(), "packed-refs"] {
                    let path = Path::new(&common).join(f);
                    if path.exists() {
                        println!("cargo:rerun-if-changed={}", path.display());
                    }
                }
            }
        }
        None => println!("cargo:rerun-if-changed=build.rs"),
    }
}
