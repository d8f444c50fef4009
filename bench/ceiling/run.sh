#!/usr/bin/env bash
# Builds and runs the parse ceiling program (see src/main.rs) with sipreg's own lock file
# and target directory, so it reuses the release build of sipreg's dependencies.
#   bash bench/ceiling/run.sh            agreement check, then timing (pin it: taskset -c 1)
#   bash bench/ceiling/run.sh --check    agreement check only (CI)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cp "$root/Cargo.lock" "$here/Cargo.lock"
CARGO_TARGET_DIR="$root/target" cargo build --quiet --release --manifest-path "$here/Cargo.toml"
exec "$root/target/release/parse-ceiling" "$@"
