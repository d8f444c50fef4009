#!/usr/bin/env bash
# The cost of metrics (issue 17, item 1): server CPU per REGISTER with `[metrics] enabled`
# on and off, two sipreg servers side by side in the same run, the same load generator
# (`sipreg bench`, Bearer tokens from `sipreg sipp-users`) at a fixed rate. The rounds
# alternate on/off so drift on a shared machine weighs on both. CPU is utime+stime from
# /proc/PID/stat before and after each run, divided by the REGISTERs answered (as
# bench/compare.sh does). Target: on/off <= 1.02.
#
# Usage: bench/metrics_cost.sh
# Environment: USERS (2000), RATE (REGISTER/s, 5000), SECS (per run, 10), ROUNDS (3).
# Needs cargo, python3 and curl. All traffic stays on 127.0.0.1; both servers are stopped
# on exit.
set -euo pipefail

USERS=${USERS:-2000}; RATE=${RATE:-5000}; SECS=${SECS:-10}; ROUNDS=${ROUNDS:-3}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sipreg-metrics-cost.XXXXXX")
CLK_TCK=$(getconf CLK_TCK)
PIDS=()

log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

cleanup() {
    local pid
    for pid in "${PIDS[@]:-}"; do
        [ -n "$pid" ] || continue
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cpu_ticks() {   # utime+stime of PID, in clock ticks
    local s
    s=$(cat "/proc/$1/stat")
    s=${s##*) }
    read -r -a f <<<"$s"
    echo $((f[11] + f[12]))
}

free_port() {
    python3 -c 'import socket
for _ in range(100):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0)); p = u.getsockname()[1]
    t = socket.socket()
    try:
        t.bind(("127.0.0.1", p)); print(p); break
    except OSError: pass
    finally: t.close(); u.close()'
}

jget() {   # jget FILE KEY: a top-level value of the JSON on the last line of FILE
    python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1]).get(sys.argv[2], 0))' "$1" "$2"
}

gen() {   # gen OUT PORT CSV ARGS...
    local out=$1 port=$2 csv=$3; shift 3
    timeout 600 "$BIN" bench "127.0.0.1:$port" --json --users-csv "$csv" "$@" >"$out" 2>"$out.err" \
        || { cat "$out" "$out.err" >&2; echo "the generator failed" >&2; exit 1; }
}

log "building sipreg (release)"
(cd "$ROOT" && cargo build --release --quiet --bin sipreg)
TARGET_DIR=${CARGO_TARGET_DIR:-target}
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
BIN="$TARGET_DIR/release/sipreg"

declare -A PORT PID HTTP
for mode in on off; do
    mkdir -p "$WORK/$mode"
    enabled=$([ "$mode" = on ] && echo true || echo false)
    cat >"$WORK/$mode/sipreg.toml" <<TOML
[database]
url = "sqlite://$WORK/$mode/sipreg.db?mode=rwc"
[tokens]
key_dir = "$WORK/$mode/keys"
[users]
argon2_memory_kib = 64
argon2_iterations = 1
[metrics]
enabled = $enabled
TOML
    RUST_LOG=warn timeout 300 "$BIN" --config "$WORK/$mode/sipreg.toml" sipp-users --count "$USERS" \
        --prefix bench --out "$WORK/$mode/users.csv" >/dev/null
    PORT[$mode]=$(free_port); HTTP[$mode]=$(free_port)
    RUST_LOG=warn "$BIN" --config "$WORK/$mode/sipreg.toml" serve --sip-listen "127.0.0.1:${PORT[$mode]}" \
        --http-listen "127.0.0.1:${HTTP[$mode]}" >"$WORK/$mode/sipreg.log" 2>&1 &
    PID[$mode]=$!
    PIDS+=("${PID[$mode]}")
done
for mode in on off; do
    for _ in $(seq 300); do
        curl -sf "http://127.0.0.1:${HTTP[$mode]}/ready" >/dev/null && break
        kill -0 "${PID[$mode]}" || { cat "$WORK/$mode/sipreg.log" >&2; exit 1; }
        sleep 0.1
    done
    log "metrics $mode: warm-up, every user registers once"
    gen "$WORK/$mode/warm.out" "${PORT[$mode]}" "$WORK/$mode/users.csv" \
        --requests "$USERS" --concurrency 64 --warmup 0 --duration 60
done
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${HTTP[off]}/metrics")" = 404 ] \
    || { echo "metrics should be off on the second server" >&2; exit 1; }

declare -A TICKS=([on]=0 [off]=0) ANSWERED=([on]=0 [off]=0)
for round in $(seq "$ROUNDS"); do
    order="on off"; [ $((round % 2)) = 0 ] && order="off on"
    for mode in $order; do
        before=$(cpu_ticks "${PID[$mode]}")
        gen "$WORK/$mode/cpu-$round.out" "${PORT[$mode]}" "$WORK/$mode/users.csv" \
            --rate "$RATE" --duration "$SECS" --warmup 0
        after=$(cpu_ticks "${PID[$mode]}")
        n=$(jget "$WORK/$mode/cpu-$round.out" answered)
        TICKS[$mode]=$((TICKS[$mode] + after - before)); ANSWERED[$mode]=$((ANSWERED[$mode] + n))
        log "round $round, metrics $mode: $((after - before)) ticks for $n REGISTERs"
        sleep 2
    done
done
series=$(curl -sf "http://127.0.0.1:${HTTP[on]}/metrics" | grep -c '^sipreg_sip_requests_total{' || true)
log "metrics on: $series request series in the scrape"

awk -v ton="${TICKS[on]}" -v non="${ANSWERED[on]}" -v toff="${TICKS[off]}" -v noff="${ANSWERED[off]}" \
    -v hz="$CLK_TCK" -v rate="$RATE" -v secs="$SECS" -v rounds="$ROUNDS" 'BEGIN {
    if (non == 0 || noff == 0 || toff == 0) { print "no REGISTER answered" > "/dev/stderr"; exit 1 }
    on = ton * 1e6 / hz / non; off = toff * 1e6 / hz / noff
    printf "| metrics | CPU per REGISTER | REGISTERs answered |\n|---|---|---|\n"
    printf "| on | %.1f µs | %d |\n| off | %.1f µs | %d |\n", on, non, off, noff
    printf "\non/off = %.3f (target <= 1.02); %d rounds of %d s at %d/s\n", on / off, rounds, secs, rate
}'
