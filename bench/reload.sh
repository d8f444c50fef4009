#!/usr/bin/env bash
# The start-up reload of N stored bindings (issue 4): a fresh store gets N bindings, one
# per AOR, from one sqlite3 statement (realistic sizes: a Contact
# sip:userN@10.x.y.z:5060;transport=udp, a 31-character Call-ID, a User-Agent), then the
# release binary starts on it. Prints the time from start until an OPTIONS is answered
# and VmRSS / VmHWM WAIT seconds later (default 1).
#
# Usage: bench/reload.sh [N]        (default 1,000,000; the targets: <= 5 s, <= 300 MB)
# Needs cargo, sqlite3 and python3 (sqlite3 is installed with apt-get when missing).
# Loopback only; the server is stopped on exit.
set -euo pipefail
N=${1:-1000000}
WAIT=${WAIT:-1}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sipreg-reload.XXXXXX")
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
command -v sqlite3 >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y sqlite3 >/dev/null
(cd "$ROOT" && cargo build --release --quiet --bin sipreg)
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/sipreg
PORT=$(python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf '[database]\nurl = "sqlite://%s/sipreg.db?mode=rwc"\n[tokens]\nkey_dir = "%s/keys"\n' "$WORK" "$WORK" >"$WORK/sipreg.toml"
# Creates the store (migrations) without starting the server.
RUST_LOG=warn "$BIN" --config "$WORK/sipreg.toml" registrations >/dev/null
NOW=$(date +%s)
sqlite3 "$WORK/sipreg.db" >/dev/null <<SQL
PRAGMA synchronous = OFF;
BEGIN;
INSERT INTO bindings (aor, id, uri, instance, reg_id, q, expires_at, call_id, cseq, path,
                      transport, source, user_agent, registered_at)
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < $N)
SELECT 'sip:user' || i || '@example.com', i + 1,
       'sip:user' || i || '@10.' || (i / 65536 % 256) || '.' || (i / 256 % 256) || '.' || (i % 256) || ':5060;transport=udp',
       NULL, NULL, NULL, $NOW + 86400,
       printf('%08x-%08x-%04x@10.0.0.1', i, (i * 2654435761) % 4294967296, i % 65536), 1, '[]', 'udp',
       '10.' || (i / 65536 % 256) || '.' || (i / 256 % 256) || '.' || (i % 256) || ':5060',
       'Bench-Phone/1.0', $NOW
FROM n;
COMMIT;
SQL
t0=$(date +%s%N)
RUST_LOG=warn,sipreg::server::app=info "$BIN" --config "$WORK/sipreg.toml" serve \
    --sip-listen "127.0.0.1:$PORT" --http-listen 127.0.0.1:0 >"$WORK/sipreg.log" 2>&1 &
PID=$!
until timeout 5 "$BIN" bench "127.0.0.1:$PORT" --scenario options --no-auth --users 1 --requests 1 \
        --concurrency 1 --warmup 0 --duration 2 --timeout-ms 300 --json 2>/dev/null \
        | tail -1 | python3 -c 'import json, sys; sys.exit(json.loads(sys.stdin.read()).get("answered") != 1)'; do
    kill -0 "$PID" 2>/dev/null || { cat "$WORK/sipreg.log" >&2; exit 1; }
    sleep 0.05
done
t1=$(date +%s%N)
LOADED=$(sed 's/\x1b\[[0-9;]*m//g' "$WORK/sipreg.log" | awk -F'bindings=' '/bindings loaded/ {split($2, a, " "); print a[1]; exit}')
sleep "$WAIT"
RSS=$(awk '/^VmRSS/ {print $2}' "/proc/$PID/status")
HWM=$(awk '/^VmHWM/ {print $2}' "/proc/$PID/status")
printf 'reload of %s bindings: %.2f s until an OPTIONS is answered; RSS %d MB (VmHWM %d MB) %s s later\n' \
    "${LOADED:-?}" "$(awk -v ns=$((t1 - t0)) 'BEGIN { print ns / 1e9 }')" $((RSS / 1024)) $((HWM / 1024)) "$WAIT"
