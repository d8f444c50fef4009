#!/usr/bin/env bash
# Registrar benchmark (issue 4, "Performance"):
#   1. server CPU per REGISTER with a cached Bearer token, sipp over UDP at a fixed
#      offered rate, CPU time read from /proc/<pid>/stat (utime+stime) before and after,
#      divided by the number of 200 OKs;
#   2. the same for Kamailio 5.6 (usrloc in memory, no auth, bench/kamailio/kamailio.cfg),
#      CPU summed over all its processes;
#   3. RSS of sipreg holding N bindings (1,000,000) and the time to reload them at start-up
#      (process start until it answers an OPTIONS).
# Prints a table and appends it to BENCHMARKS.md under "## Registrar (issue 4)".
#
# Usage: bench/registrar.sh [--quick] [--append | --no-append]
#   --quick      CI mode (well under 2 minutes): lower rate, shorter run, 100,000 bindings;
#                prints the table without appending it unless --append is given.
#   --no-append  print the table only.
# Environment overrides: RATE (REGISTER/s), DURATION (s), USERS, BINDINGS.
# Needs: cargo, sipp (sip-tester), kamailio, sqlite3; the Debian packages are installed with
# apt-get when missing. All traffic stays on 127.0.0.1; every process started here is
# stopped on exit.
set -euo pipefail

QUICK=0
APPEND=""
for arg in "$@"; do
    case "$arg" in
        --quick) QUICK=1 ;;
        --append) APPEND=1 ;;
        --no-append) APPEND=0 ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "unknown argument: $arg" >&2; exit 2 ;;
    esac
done

if [ "$QUICK" = 1 ]; then
    RATE=${RATE:-1000}; DURATION=${DURATION:-3}; USERS=${USERS:-200}; BINDINGS=${BINDINGS:-100000}
else
    RATE=${RATE:-5000}; DURATION=${DURATION:-10}; USERS=${USERS:-2000}; BINDINGS=${BINDINGS:-1000000}
fi
CALLS=$((RATE * DURATION))
APPEND=${APPEND:-$((1 - QUICK))}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sipreg-bench.XXXXXX")
SCENARIO="$ROOT/bench/sipp/register_load.xml"
OPTIONS_SF="$ROOT/bench/sipp/options_ping.xml"
KAM_CFG="$ROOT/bench/kamailio/kamailio.cfg"
CLK_TCK=$(getconf CLK_TCK)
STARTED=()   # pids of the servers started here
SIPP_PID=""  # the load generator while it runs

log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

cleanup() {
    local pid child
    if [ -n "$SIPP_PID" ]; then
        kill -TERM "$SIPP_PID" 2>/dev/null || true   # timeout passes it on to sipp
        wait "$SIPP_PID" 2>/dev/null || true
    fi
    for pid in "${STARTED[@]:-}"; do
        [ -n "$pid" ] || continue
        if kill -0 "$pid" 2>/dev/null; then
            # Kamailio's children follow their parent; make sure anyway.
            for child in $(children_of "$pid"); do kill -TERM "$child" 2>/dev/null || true; done
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    done
    if [ "${KEEP_WORK:-0}" = 1 ]; then echo "work dir kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

children_of() {
    local parent=$1 p s
    for p in /proc/[0-9]*; do
        s=$(cat "$p/stat" 2>/dev/null) || continue
        s=${s##*) }
        read -r _ ppid _ <<<"$s"
        [ "$ppid" = "$parent" ] && echo "${p#/proc/}"
    done
    return 0
}

# utime+stime in clock ticks, summed over the given pids.
cpu_ticks() {
    local total=0 pid s
    for pid in "$@"; do
        s=$(cat "/proc/$pid/stat")
        s=${s##*) }
        # after ") ": state(3) ppid(4) ... utime is field 14, stime 15 -> offsets 11, 12 here.
        read -r -a f <<<"$s"
        total=$((total + f[11] + f[12]))
    done
    echo "$total"
}

need() {   # need COMMAND DEBIAN-PACKAGE
    command -v "$1" >/dev/null 2>&1 && return 0
    log "$1 missing: apt-get install -y $2"
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    if ! DEBIAN_FRONTEND=noninteractive timeout 300 $sudo apt-get install -y "$2" >"$WORK/apt-$2.log" 2>&1; then
        DEBIAN_FRONTEND=noninteractive timeout 300 $sudo apt-get update >/dev/null 2>&1 || true
        DEBIAN_FRONTEND=noninteractive timeout 300 $sudo apt-get install -y "$2" >"$WORK/apt-$2.log" 2>&1 \
            || { cat "$WORK/apt-$2.log" >&2; echo "cannot install $2" >&2; exit 1; }
    fi
}

free_udp_port() {
    python3 -c 'import socket
for _ in range(100):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0)); p = u.getsockname()[1]
    t = socket.socket(); 
    try:
        t.bind(("127.0.0.1", p)); print(p); break
    except OSError: pass
    finally: t.close(); u.close()' 2>/dev/null || echo $((20000 + RANDOM % 20000))
}

udp_bound() {   # is 127.0.0.1:PORT bound for UDP? (true when ss cannot tell)
    command -v ss >/dev/null 2>&1 || return 0
    [ -n "$(ss -Hlun "( sport = :$1 )" 2>/dev/null)" ]
}

# One OPTIONS answered 200 by 127.0.0.1:PORT?
options_ok() {
    timeout 5 sipp -sf "$OPTIONS_SF" -m 1 -i 127.0.0.1 -p "$(free_udp_port)" -nostdin \
        -timeout 2s -timeout_error -recv_timeout 500 "127.0.0.1:$1" >/dev/null 2>&1
}

wait_ready() {   # wait_ready PORT PID SECONDS
    local deadline=$((SECONDS + $3))
    while [ $SECONDS -lt $deadline ]; do
        kill -0 "$2" 2>/dev/null || { echo "server $2 exited" >&2; return 1; }
        if udp_bound "$1" && options_ok "$1"; then return 0; fi
        sleep 0.02
    done
    echo "server on port $1 not ready after $3 s" >&2
    return 1
}

# run_sipp PORT CALLS RATE OUTFILE: the load scenario, returns nothing; output in OUTFILE.
# sipp runs in the background and is waited for, so that a signal reaches the trap at once
# and the trap can stop it (SIPP_PID).
run_sipp() {
    local limit=$(( $3 * 2 > 100 ? $3 * 2 : 100 ))
    timeout $(( $2 / $3 + 60 )) sipp -sf "$SCENARIO" -inf "$WORK/users.csv" -m "$2" -r "$3" -rp 1000 \
        -l "$limit" -i 127.0.0.1 -p "$(free_udp_port)" -nostdin -timeout $(( $2 / $3 + 30 ))s \
        "127.0.0.1:$1" >"$4" 2>&1 &
    SIPP_PID=$!
    wait "$SIPP_PID" || true
    SIPP_PID=""
}

sipp_count() {   # sipp_count FILE "Successful call"
    grep -m1 "$2" "$1" | awk -F'|' '{gsub(/ /, "", $3); print $3}'
}

# measure NAME PORT PIDS...: warm-up pass (every user once), then the measured run.
# Prints: ok_count cpu_ticks wall_seconds
measure() {
    local name=$1 port=$2; shift 2
    log "$name: warm-up, $USERS REGISTERs"
    run_sipp "$port" "$USERS" "$(( RATE < 1000 ? RATE : 1000 ))" "$WORK/$name-warm.out"
    local warm_ok
    warm_ok=$(sipp_count "$WORK/$name-warm.out" "Successful call")
    [ "${warm_ok:-0}" -gt 0 ] || { cat "$WORK/$name-warm.out" >&2; echo "$name: warm-up failed" >&2; exit 1; }
    log "$name: $CALLS REGISTERs at $RATE/s"
    local before after t0 t1
    before=$(cpu_ticks "$@")
    t0=$(date +%s%N)
    run_sipp "$port" "$CALLS" "$RATE" "$WORK/$name-load.out"
    t1=$(date +%s%N)
    after=$(cpu_ticks "$@")
    local ok failed
    ok=$(sipp_count "$WORK/$name-load.out" "Successful call")
    failed=$(sipp_count "$WORK/$name-load.out" "Failed call")
    log "$name: ${ok:-0} 200 OK, ${failed:-?} failed, $((after - before)) CPU ticks"
    echo "${ok:-0} $((after - before)) $(( (t1 - t0) / 1000000 ))"
}

# ---------------------------------------------------------------------------------------
need sipp sip-tester
need kamailio kamailio
need sqlite3 sqlite3
need python3 python3

log "building sipreg (release)"
(cd "$ROOT" && cargo build --release --quiet --bin sipreg)
# Where cargo put it: CARGO_TARGET_DIR when set (relative to the repository), else target/.
TARGET_DIR=${CARGO_TARGET_DIR:-target}
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
BIN="$TARGET_DIR/release/sipreg"

# --- 1. sipreg CPU per REGISTER ---------------------------------------------------------
mkdir -p "$WORK/s"
cat >"$WORK/s/sipreg.toml" <<EOF
[database]
url = "sqlite://$WORK/s/sipreg.db?mode=rwc"
[tokens]
key_dir = "$WORK/s/keys"
[users]
# The cost of logins is not measured here; keep user creation fast.
argon2_memory_kib = 64
argon2_iterations = 1
EOF
log "sipreg sipp-users --count $USERS"
RUST_LOG=warn timeout 300 "$BIN" --config "$WORK/s/sipreg.toml" sipp-users --count "$USERS" --prefix bench \
    --out "$WORK/users.csv" >/dev/null
SIPREG_PORT=$(free_udp_port)
RUST_LOG=warn "$BIN" --config "$WORK/s/sipreg.toml" serve --sip-listen "127.0.0.1:$SIPREG_PORT" \
    --http-listen 127.0.0.1:0 >"$WORK/s/sipreg.log" 2>&1 &
SIPREG_PID=$!
STARTED+=("$SIPREG_PID")
wait_ready "$SIPREG_PORT" "$SIPREG_PID" 30
measure sipreg "$SIPREG_PORT" "$SIPREG_PID" >"$WORK/sipreg.result"
read -r S_OK S_TICKS S_MS <"$WORK/sipreg.result"
S_RSS_KB=$(awk '/^VmRSS/ {print $2}' "/proc/$SIPREG_PID/status")
kill -TERM "$SIPREG_PID"; wait "$SIPREG_PID" 2>/dev/null || true

# --- 2. Kamailio CPU per REGISTER -------------------------------------------------------
mkdir -p "$WORK/k"
KAM_PORT=$(free_udp_port)
kamailio -f "$KAM_CFG" -l "udp:127.0.0.1:$KAM_PORT" -DD -E -Y "$WORK/k" -P "$WORK/k/kamailio.pid" \
    >"$WORK/k/kamailio.log" 2>&1 &
KAM_PID=$!
STARTED+=("$KAM_PID")
wait_ready "$KAM_PORT" "$KAM_PID" 30
KAM_VERSION=$(kamailio -v 2>/dev/null | awk '/^version:/ {print $3; exit}')
# shellcheck disable=SC2046
KAM_PIDS=("$KAM_PID" $(children_of "$KAM_PID"))
measure kamailio "$KAM_PORT" "${KAM_PIDS[@]}" >"$WORK/kamailio.result"
read -r K_OK K_TICKS K_MS <"$WORK/kamailio.result"
kill -TERM "$KAM_PID"; wait "$KAM_PID" 2>/dev/null || true

# --- 3. N bindings: RSS and reload time -------------------------------------------------
mkdir -p "$WORK/b"
cat >"$WORK/b/sipreg.toml" <<EOF
[database]
url = "sqlite://$WORK/b/sipreg.db?mode=rwc"
[tokens]
key_dir = "$WORK/b/keys"
EOF
# Creates the store (migrations) without starting the server.
RUST_LOG=warn timeout 60 "$BIN" --config "$WORK/b/sipreg.toml" registrations >/dev/null
NOW=$(date +%s)
log "inserting $BINDINGS bindings with sqlite3"
timeout 120 sqlite3 "$WORK/b/sipreg.db" >/dev/null <<EOF
PRAGMA synchronous = OFF;
BEGIN;
INSERT INTO bindings (aor, id, uri, instance, reg_id, q, expires_at, call_id, cseq, path,
                      transport, source, user_agent, registered_at)
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < $BINDINGS)
SELECT 'sip:user' || i || '@example.com', i + 1,
       'sip:user' || i || '@10.' || (i / 65536 % 256) || '.' || (i / 256 % 256) || '.' || (i % 256) || ':5060;transport=udp',
       NULL, NULL, NULL, $NOW + 86400,
       printf('%08x-%08x-%04x@10.0.0.1', i, (i * 2654435761) % 4294967296, i % 65536), 1, '[]', 'udp',
       '10.' || (i / 65536 % 256) || '.' || (i / 256 % 256) || '.' || (i % 256) || ':5060',
       'Bench-Phone/1.0', $NOW
FROM n;
COMMIT;
EOF
B_COUNT=$(sqlite3 "$WORK/b/sipreg.db" "SELECT count(*) FROM bindings")
B_PORT=$(free_udp_port)
log "starting sipreg on $B_COUNT stored bindings"
t0=$(date +%s%N)
RUST_LOG=warn,sipreg::server::app=info "$BIN" --config "$WORK/b/sipreg.toml" serve \
    --sip-listen "127.0.0.1:$B_PORT" --http-listen 127.0.0.1:0 >"$WORK/b/sipreg.log" 2>&1 &
B_PID=$!
STARTED+=("$B_PID")
wait_ready "$B_PORT" "$B_PID" 120
t1=$(date +%s%N)
RELOAD_MS=$(( (t1 - t0) / 1000000 ))
# The log is coloured even into a file: strip the escapes before looking for the count.
LOADED=$(sed 's/\x1b\[[0-9;]*m//g' "$WORK/b/sipreg.log" | awk -F'bindings=' '/bindings loaded/ {split($2, a, " "); print a[1]; exit}')
sleep 1
B_RSS_KB=$(awk '/^VmRSS/ {print $2}' "/proc/$B_PID/status")
B_HWM_KB=$(awk '/^VmHWM/ {print $2}' "/proc/$B_PID/status")
kill -TERM "$B_PID"; wait "$B_PID" 2>/dev/null || true

# --- table ------------------------------------------------------------------------------
us_per() {   # us_per TICKS COUNT
    awk -v t="$1" -v n="$2" -v hz="$CLK_TCK" 'BEGIN { if (n > 0) printf "%.1f", t * 1e6 / hz / n; else print "n/a" }'
}
rate_of() { awk -v n="$1" -v ms="$2" 'BEGIN { if (ms > 0) printf "%.0f", n * 1000 / ms; else print "n/a" }'; }
S_US=$(us_per "$S_TICKS" "$S_OK")
K_US=$(us_per "$K_TICKS" "$K_OK")
RATIO=$(awk -v s="$S_US" -v k="$K_US" 'BEGIN { if (k > 0) printf "%.2f", s / k; else print "n/a" }')
S_RATE=$(rate_of "$S_OK" "$S_MS")
K_RATE=$(rate_of "$K_OK" "$K_MS")
RSS_MB=$(awk -v k="$B_RSS_KB" 'BEGIN { printf "%.0f", k / 1024 }')
HWM_MB=$(awk -v k="$B_HWM_KB" 'BEGIN { printf "%.0f", k / 1024 }')
RELOAD_S=$(awk -v ms="$RELOAD_MS" 'BEGIN { printf "%.2f", ms / 1000 }')
target() { awk -v v="$1" -v max="$2" 'BEGIN { print (v != "n/a" && v + 0 <= max) ? "met" : "missed" }'; }
if [ "$BINDINGS" -ge 1000000 ]; then
    RSS_T="$(target "$RSS_MB" 300)"; RELOAD_T="$(target "$RELOAD_S" 5)"
else
    RSS_T="(quick: target is for 1,000,000)"; RELOAD_T="$RSS_T"
fi
MODE=$([ "$QUICK" = 1 ] && echo "quick" || echo "full")
CPU_MODEL=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)

TABLE=$(cat <<EOF
| Measure | sipreg | Kamailio ${KAM_VERSION:-?} | Target |
|---|---|---|---|
| Server CPU per REGISTER (µs), offered $RATE/s for ${DURATION} s over UDP | $S_US | $K_US | sipreg ≤ 10: $(target "$S_US" 10) |
| 200 OK received / achieved rate (per s) | $S_OK / $S_RATE | $K_OK / $K_RATE | |
| Ratio sipreg ÷ Kamailio, CPU per REGISTER (below 1: sipreg cheaper) | $RATIO | | |
| RSS holding $B_COUNT bindings (MB), peak during load in brackets | $RSS_MB [$HWM_MB] | | ≤ 300 MB: $RSS_T |
| Start-up reload of $B_COUNT bindings until an OPTIONS is answered (s) | $RELOAD_S (${LOADED:-?} loaded) | | ≤ 5 s: $RELOAD_T |
EOF
)
HEADER="$(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git -C "$ROOT" rev-parse --short HEAD), mode $MODE, nproc $(nproc), CPU \"$CPU_MODEL\", $USERS users, sipreg RSS after the CPU run $(( S_RSS_KB / 1024 )) MB"
echo
echo "$HEADER"
echo
echo "$TABLE"

if [ "$APPEND" = 1 ]; then
    BM="$ROOT/BENCHMARKS.md"
    grep -q '^## Registrar (issue 4)' "$BM" 2>/dev/null \
        || printf '\n## Registrar (issue 4)\n\nRuns of `bench/registrar.sh`, newest last.\n' >>"$BM"
    # Insert at the end of that section (before the next "## " heading, or at the end).
    printf '\n#### Run: %s\n\n%s\n' "$HEADER" "$TABLE" >"$WORK/entry.md"
    awk -v entry="$WORK/entry.md" '
        function put() { while ((getline l < entry) > 0) print l; done = 1 }
        /^## / && insec && !done { put(); print "" }
        /^## Registrar \(issue 4\)/ { insec = 1 }
        { print }
        END { if (!done) put() }' "$BM" >"$WORK/BENCHMARKS.md"
    cat "$WORK/BENCHMARKS.md" >"$BM"
    log "appended to $BM"
fi
