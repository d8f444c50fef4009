#!/usr/bin/env bash
# sipreg against Kamailio 5.6, side by side, with the same load generator (`sipreg bench`)
# in the same run (issue 6). For each system:
#   1. the highest sustainable REGISTER rate: the highest offered rate (open loop, UDP)
#      where >= 99.9 % of the REGISTERs are answered 200 within 100 ms with no
#      retransmission; searched by doubling, then bisecting;
#   2. latency percentiles at 50 % of that rate;
#   3. server CPU time per REGISTER at a fixed 5,000/s (utime+stime from /proc of every
#      server process, before and after, divided by the REGISTERs answered), measured
#      first, after one warm-up pass in which every user registers once.
# Between steps the script waits until the server is idle again.
# Systems: sipreg with Bearer tokens (cached after the first use), Kamailio without
# authentication, and Kamailio with Digest (MD5, qop=auth) against a SQLite subscriber
# table (bench/kamailio/kamailio.cfg, variant WITH_DIGEST).
# The same (1)-(3) for the floor: bench/floor/udp_floor.c, a C responder that copies the
# headers into a 200 and does no SIP work (what the kernel and wake-ups cost alone).
# Then, sipreg only:
#   4. RSS after 1,000,000 distinct AORs registered over SIP (--no-auth), and, after a clean
#      stop, the start-up reload of those bindings from the store (time until an OPTIONS is
#      answered) and the RSS after it.
# Then the secure transports (issue 13, bench/compare_secure.sh): sipreg and Kamailio over
# TLS and WSS: CPU per REGISTER, full and resumed TLS handshakes per second, memory per
# idle TLS connection (sipreg "n/a" until it has the listeners).
# Then the fleet workload (issue 15, bench/compare_fleet.sh): hot loop, a fleet of phones
# re-registering with long-lived tokens, first sightings of tokens, and a long run with
# the latency and the server's RSS per minute, for sipreg, Kamailio no-auth, Kamailio
# Digest (a fresh nonce per registration) and the floor.
# Prints the tables with the ratios and appends them to BENCHMARKS.md.
#
# Usage: bench/compare.sh [--quick] [--append | --no-append] [--secure-only | --no-secure]
#                         [--fleet-only | --no-fleet]
#   --quick        CI mode (about 2 minutes): shorter steps, coarser search, 100,000 AORs,
#                  1,000 idle TLS connections; prints the tables without appending unless
#                  --append is given.
#   --secure-only  only the TLS/WSS rows;  --no-secure  all but them.
#   --fleet-only   only the fleet rows;     --no-fleet   all but them.
# Environment overrides: USERS, AORS, CPU_RATE (REGISTER/s for 3.), CPU_SECS, STEP_SECS.
# Needs cargo, a C compiler, kamailio, kamailio-sqlite-modules, kamailio-tls-modules,
# kamailio-websocket-modules, openssl, sqlite3 and python3; the Debian packages
# are installed with apt-get when missing. All traffic stays on 127.0.0.1; every process
# started here is stopped on exit.
set -euo pipefail

QUICK=0
APPEND=""
SECURE=1
FLEET=1
for arg in "$@"; do
    case "$arg" in
        --quick) QUICK=1 ;;
        --append) APPEND=1 ;;
        --no-append) APPEND=0 ;;
        --secure-only) SECURE=only ;;
        --no-secure) SECURE=0 ;;
        --fleet-only) FLEET=only ;;
        --no-fleet) FLEET=0 ;;
        -h|--help) sed -n '2,41p' "$0"; exit 0 ;;
        *) echo "unknown argument: $arg" >&2; exit 2 ;;
    esac
done

if [ "$QUICK" = 1 ]; then
    USERS=${USERS:-1000}; AORS=${AORS:-100000}; CPU_SECS=${CPU_SECS:-3}; STEP_SECS=${STEP_SECS:-1}
    WARM_SECS=0.5; START_RATE=8000; BISECT=1; LAT_SECS=2
else
    USERS=${USERS:-2000}; AORS=${AORS:-1000000}; CPU_SECS=${CPU_SECS:-10}; STEP_SECS=${STEP_SECS:-3}
    WARM_SECS=1; START_RATE=4000; BISECT=4; LAT_SECS=5
fi
CPU_RATE=${CPU_RATE:-5000}
APPEND=${APPEND:-$((1 - QUICK))}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sipreg-compare.XXXXXX")
KAM_CFG="$ROOT/bench/kamailio/kamailio.cfg"
CLK_TCK=$(getconf CLK_TCK)
STARTED=()   # pids of the servers started here

log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

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

stop_server() {   # stop_server PID: SIGTERM (sipreg flushes its bindings), then SIGKILL
    local pid=$1 child
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    for child in $(children_of "$pid"); do kill -TERM "$child" 2>/dev/null || true; done
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local pid
    for pid in "${STARTED[@]:-}"; do
        [ -n "$pid" ] && stop_server "$pid"
    done
    if [ "${KEEP_WORK:-0}" = 1 ]; then echo "work dir kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# utime+stime in clock ticks, summed over the given pids.
cpu_ticks() {
    local total=0 pid s
    for pid in "$@"; do
        s=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        s=${s##*) }
        read -r -a f <<<"$s"
        total=$((total + f[11] + f[12]))
    done
    echo "$total"
}

need() {   # need TEST-COMMAND DEBIAN-PACKAGE
    eval "$1" >/dev/null 2>&1 && return 0
    log "installing $2 with apt-get"
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    if ! DEBIAN_FRONTEND=noninteractive timeout 300 $sudo apt-get install -y "$2" >"$WORK/apt-$2.log" 2>&1; then
        DEBIAN_FRONTEND=noninteractive timeout 300 $sudo apt-get update >/dev/null 2>&1 || true
        DEBIAN_FRONTEND=noninteractive timeout 300 $sudo apt-get install -y "$2" >"$WORK/apt-$2.log" 2>&1 \
            || { cat "$WORK/apt-$2.log" >&2; echo "cannot install $2" >&2; exit 1; }
    fi
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

# jget FILE KEY...: a value from the JSON object on the last line of FILE
# (nested keys in order, e.g. jget out latency p99_us).
jget() {
    python3 - "$@" <<'EOF'
import json, sys
with open(sys.argv[1]) as f:
    v = json.loads(f.read().strip().splitlines()[-1])
for k in sys.argv[2:]:
    v = v.get(k, 0) if isinstance(v, dict) else 0
print(json.dumps(v) if isinstance(v, (dict, list, bool)) else v)
EOF
}

# gen OUTFILE PORT ARGS...: one generator run against 127.0.0.1:PORT, JSON on the last line.
gen() {
    local out=$1 port=$2; shift 2
    timeout 900 "$BIN" bench "127.0.0.1:$port" --json "$@" >"$out" 2>"$out.err" \
        || { cat "$out" "$out.err" >&2; echo "the generator failed" >&2; exit 1; }
}

# One OPTIONS answered by 127.0.0.1:PORT? (ARGS: e.g. --transport tls --tls-insecure)
options_ok() {
    timeout 5 "$BIN" bench "127.0.0.1:$1" --json --scenario options --no-auth --users 1 \
        --requests 1 --concurrency 1 --warmup 0 --duration 2 --timeout-ms 300 "${@:2}" \
        >"$WORK/probe.out" 2>/dev/null || return 1
    [ "$(jget "$WORK/probe.out" answered)" = 1 ]
}

wait_ready() {   # wait_ready PORT PID SECONDS
    local deadline=$((SECONDS + $3))
    while [ $SECONDS -lt $deadline ]; do
        kill -0 "$2" 2>/dev/null || { echo "server $2 exited" >&2; return 1; }
        options_ok "$1" && return 0
        sleep 0.05
    done
    echo "server on port $1 not ready after $3 s" >&2
    return 1
}

# settle "PIDS": waits (at most 60 s) until the server uses under 5 % of a core, so one
# step's backlog (sipreg's write-behind, queued datagrams) does not weigh on the next.
settle() {
    local t0 t1 start=$SECONDS
    while [ $((SECONDS - start)) -lt 60 ]; do
        # shellcheck disable=SC2086
        t0=$(cpu_ticks $1)
        sleep 0.5
        # shellcheck disable=SC2086
        t1=$(cpu_ticks $1)
        [ $(( (t1 - t0) * 100 )) -lt $(( CLK_TCK * 5 / 2 )) ] && break
    done
    [ $((SECONDS - start)) -le 1 ] || log "server busy for $((SECONDS - start)) s after the step"
}

# rate_args RATE: how the generator offers RATE REGISTER/s: open loop, or with
# RATE_MODEL=fleet, FLEET_USERS users each re-registering every FLEET_USERS/RATE s.
rate_args() {
    if [ "${RATE_MODEL:-}" = fleet ]; then
        echo "--model fleet --interval $(awk -v n="$FLEET_USERS" -v r="$1" 'BEGIN { printf "%.4f", n / r }')"
    else
        echo "--rate $1"
    fi
}

# step NAME PORT RATE ARGS...: one search step; true when the rate was sustained.
step() {
    local name=$1 port=$2 rate=$3; shift 3
    local out="$WORK/$name-search-$rate.out" ok
    # shellcheck disable=SC2046
    gen "$out" "$port" $(rate_args "$rate") --duration "$STEP_SECS" --warmup "$WARM_SECS" --timeout-ms 2000 "$@"
    ok=$(jget "$out" sustained)
    log "$name: $rate/s offered -> sustained=$ok, p99 $(jget "$out" latency p99_us) µs, retransmissions $(jget "$out" retransmissions), skipped (users busy) $(jget "$out" skipped), 200 in time $(jget "$out" ok_in_time)/$(jget "$out" sent)"
    settle "$SETTLE_PIDS"
    [ "$ok" = true ]
}

# search NAME PORT ARGS...: prints the highest sustained rate (doubling, then bisecting).
search() {
    local name=$1 port=$2; shift 2
    local lo=0 hi=0 r=$START_RATE mid
    if step "$name" "$port" "$r" "$@"; then
        lo=$r
        while [ "$r" -lt 1024000 ]; do
            r=$((r * 2))
            if step "$name" "$port" "$r" "$@"; then lo=$r; else hi=$r; break; fi
        done
    else
        hi=$r
        while [ "$r" -gt 250 ]; do
            r=$((r / 2))
            if step "$name" "$port" "$r" "$@"; then lo=$r; break; else hi=$r; fi
        done
    fi
    if [ "$lo" -gt 0 ] && [ "$hi" -gt 0 ]; then
        for _ in $(seq "$BISECT"); do
            mid=$(( (lo + hi) / 2 ))
            if step "$name" "$port" "$mid" "$@"; then lo=$mid; else hi=$mid; fi
        done
    fi
    echo "$lo"
}

# measure NAME PORT "PIDS" ARGS...: (1)-(3) for one system; writes $WORK/NAME.result:
# max_rate p50 p90 p99 p999 max cpu_us answered
# The CPU run comes first, on a server that has only seen the warm-up pass: after the
# search, sipreg's transaction table would still hold up to Timer J (32 s) of the fastest
# step's transactions, which a steady 5,000/s never builds up.
measure() {
    local name=$1 port=$2 pids=$3; shift 3
    SETTLE_PIDS=$pids
    log "$name: warm-up, every user registers once"
    gen "$WORK/$name-warm.out" "$port" --requests "$USERS" --concurrency 64 --warmup 0 --duration 60 "$@"
    settle "$pids"
    log "$name: CPU at $CPU_RATE/s for $CPU_SECS s"
    local before after
    # shellcheck disable=SC2086
    before=$(cpu_ticks $pids)
    gen "$WORK/$name-cpu.out" "$port" --rate "$CPU_RATE" --duration "$CPU_SECS" --warmup 0 "$@"
    # shellcheck disable=SC2086
    after=$(cpu_ticks $pids)
    local answered cpu_us
    answered=$(jget "$WORK/$name-cpu.out" answered)
    cpu_us=$(awk -v t=$((after - before)) -v n="$answered" -v hz="$CLK_TCK" \
        'BEGIN { if (n > 0) printf "%.1f", t * 1e6 / hz / n; else print "n/a" }')
    log "$name: $cpu_us µs per REGISTER ($answered answered, $((after - before)) ticks; statuses $(jget "$WORK/$name-cpu.out" statuses))"
    settle "$pids"
    log "$name: searching the highest sustained rate"
    local max
    max=$(search "$name" "$port" "$@")
    local half=$(( max / 2 > 100 ? max / 2 : 100 ))
    log "$name: latency at $half/s (50 % of $max/s)"
    gen "$WORK/$name-lat.out" "$port" --rate "$half" --duration "$LAT_SECS" --warmup "$WARM_SECS" "$@"
    local f="$WORK/$name-lat.out"
    echo "$max $(jget "$f" latency p50_us) $(jget "$f" latency p90_us) $(jget "$f" latency p99_us) $(jget "$f" latency p999_us) $(jget "$f" latency max_us) $cpu_us $answered" \
        >"$WORK/$name.result"
}

# ---------------------------------------------------------------------------------------
need "command -v kamailio" kamailio
need "test -f /usr/lib/x86_64-linux-gnu/kamailio/modules/db_sqlite.so" kamailio-sqlite-modules
need "command -v sqlite3" sqlite3
need "command -v python3" python3

log "building sipreg (release)"
(cd "$ROOT" && cargo build --release --quiet --bin sipreg)
TARGET_DIR=${CARGO_TARGET_DIR:-target}
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
BIN="$TARGET_DIR/release/sipreg"

# append_run SECTION HEADER TABLE: adds a run to its section of BENCHMARKS.md (the section
# is created at the end when missing; a run goes after the section's last one).
append_run() {
    local section=$1 BM="$ROOT/BENCHMARKS.md"
    grep -qF "$section" "$BM" 2>/dev/null \
        || printf '\n%s\n\nRuns of `bench/compare.sh`, newest last.\n' "$section" >>"$BM"
    printf '\n#### Run: %s\n\n%s\n' "$2" "$3" >"$WORK/entry.md"
    awk -v entry="$WORK/entry.md" -v section="$section" '
        function put() { while ((getline l < entry) > 0) print l; done = 1 }
        /^## / && insec && !done && $0 != section { put(); print "" }
        $0 == section { insec = 1 }
        { print }
        END { if (!done) put() }' "$BM" >"$WORK/BENCHMARKS.md"
    cat "$WORK/BENCHMARKS.md" >"$BM"
    log "appended to $BM ($section)"
}

KAM_VERSION=$(kamailio -v 2>/dev/null | awk '/^version:/ {print $3; exit}')
start_kamailio() {   # start_kamailio NAME [-A ...]: sets K_PID, K_PORT (UDP)
    local name=$1; shift
    mkdir -p "$WORK/$name"
    K_PORT=$(free_port)
    kamailio -f "$KAM_CFG" -l "udp:127.0.0.1:$K_PORT" -DD -E -Y "$WORK/$name" -P "$WORK/$name/kamailio.pid" "$@" \
        >"$WORK/$name/kamailio.log" 2>&1 &
    K_PID=$!
    STARTED+=("$K_PID")
    wait_ready "$K_PORT" "$K_PID" 30
}

# For the tables: a ÷ b (n/a unless both are positive), µs as ms, a target's verdict.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "n/a" }'; }
ms() { awk -v u="$1" 'BEGIN { printf "%.2f", u / 1000 }'; }
verdict() { awk -v ok="$1" 'BEGIN { print (ok == 1) ? "met" : "missed" }'; }

# The fleet rows (issue 15) live in their own file, run here or at the end.
if [ "$FLEET" = only ]; then
    # shellcheck source=bench/compare_fleet.sh
    . "$ROOT/bench/compare_fleet.sh"
    exit 0
fi

# The TLS/WSS rows (issue 13) live in their own file, run here or at the end.
if [ "$SECURE" = only ]; then
    # shellcheck source=bench/compare_secure.sh
    . "$ROOT/bench/compare_secure.sh"
    exit 0
fi

# --- sipreg with Bearer tokens ----------------------------------------------------------
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
[limits]
# Every benchmark request comes from 127.0.0.1: no per-address rate limit.
requests_per_ip_per_sec = 0
EOF
log "sipreg sipp-users --count $USERS"
RUST_LOG=warn timeout 300 "$BIN" --config "$WORK/s/sipreg.toml" sipp-users --count "$USERS" --prefix bench \
    --out "$WORK/users.csv" >/dev/null
S_PORT=$(free_port)
RUST_LOG=warn "$BIN" --config "$WORK/s/sipreg.toml" serve --sip-listen "127.0.0.1:$S_PORT" \
    --http-listen 127.0.0.1:0 >"$WORK/s/sipreg.log" 2>&1 &
S_PID=$!
STARTED+=("$S_PID")
wait_ready "$S_PORT" "$S_PID" 30
measure sipreg "$S_PORT" "$S_PID" --users-csv "$WORK/users.csv"
stop_server "$S_PID"

# --- Kamailio, no authentication --------------------------------------------------------
start_kamailio kamailio
K_PIDS="$K_PID $(children_of "$K_PID" | tr '\n' ' ')"
measure kamailio "$K_PORT" "$K_PIDS" --no-auth --users "$USERS" --prefix bench
stop_server "$K_PID"

# --- Kamailio, Digest against SQLite ----------------------------------------------------
# The schema of Debian's kamailio-sqlite-modules (version + subscriber tables), with the
# same users and passwords sipreg has.
python3 - "$WORK/users.csv" >"$WORK/subscribers.sql" <<'EOF'
import sys
print("BEGIN;")
print("CREATE TABLE version (id INTEGER PRIMARY KEY NOT NULL, table_name VARCHAR(32) NOT NULL,"
      " table_version INTEGER DEFAULT 0 NOT NULL, CONSTRAINT version_table_name_idx UNIQUE (table_name));")
print("INSERT INTO version (table_name, table_version) VALUES ('version', 1), ('subscriber', 7);")
print("CREATE TABLE subscriber (id INTEGER PRIMARY KEY NOT NULL, username VARCHAR(64) DEFAULT '' NOT NULL,"
      " domain VARCHAR(64) DEFAULT '' NOT NULL, password VARCHAR(64) DEFAULT '' NOT NULL,"
      " ha1 VARCHAR(128) DEFAULT '' NOT NULL, ha1b VARCHAR(128) DEFAULT '' NOT NULL,"
      " CONSTRAINT subscriber_account_idx UNIQUE (username, domain));")
print("CREATE INDEX subscriber_username_idx ON subscriber (username);")
for line in open(sys.argv[1]):
    f = line.strip().split(";")
    if len(f) < 2 or f[0] in ("SEQUENTIAL", "RANDOM", "USER"):
        continue
    user, pw = (x.replace("'", "''") for x in f[:2])
    print(f"INSERT INTO subscriber (username, domain, password) VALUES ('{user}', '127.0.0.1', '{pw}');")
print("COMMIT;")
EOF
mkdir -p "$WORK/kamailio-digest"
sqlite3 "$WORK/kamailio-digest/subscriber.db" <"$WORK/subscribers.sql"
start_kamailio kamailio-digest -A WITH_DIGEST -A "DBURL=\"sqlite://$WORK/kamailio-digest/subscriber.db\""
KD_PIDS="$K_PID $(children_of "$K_PID" | tr '\n' ' ')"
measure kamailio-digest "$K_PORT" "$KD_PIDS" --scenario register-digest --users-csv "$WORK/users.csv"
stop_server "$K_PID"

# --- The floor: a UDP responder that does no SIP work (bench/floor/udp_floor.c) ----------
need "command -v cc" gcc
cc -O2 -o "$WORK/udp_floor" "$ROOT/bench/floor/udp_floor.c"
F_PORT=$(free_port)
"$WORK/udp_floor" "$F_PORT" >"$WORK/floor.log" 2>&1 &
F_PID=$!
STARTED+=("$F_PID")
wait_ready "$F_PORT" "$F_PID" 10
measure floor "$F_PORT" "$F_PID" --no-auth --users "$USERS" --prefix bench
stop_server "$F_PID"

# --- sipreg holding AORS bindings: RSS, then reload after a restart ---------------------
mkdir -p "$WORK/b"
cat >"$WORK/b/sipreg.toml" <<EOF
[database]
url = "sqlite://$WORK/b/sipreg.db?mode=rwc"
[tokens]
key_dir = "$WORK/b/keys"
[limits]
# Every benchmark request comes from 127.0.0.1: no per-address rate limit.
requests_per_ip_per_sec = 0
EOF
B_PORT=$(free_port)
RUST_LOG=warn "$BIN" --config "$WORK/b/sipreg.toml" serve --no-auth --sip-listen "127.0.0.1:$B_PORT" \
    --http-listen 127.0.0.1:0 >"$WORK/b/sipreg.log" 2>&1 &
B_PID=$!
STARTED+=("$B_PID")
wait_ready "$B_PORT" "$B_PID" 30
log "registering $AORS distinct AORs (--no-auth)"
gen "$WORK/aors.out" "$B_PORT" --no-auth --users "$AORS" --prefix aor --requests "$AORS" \
    --concurrency 64 --warmup 0 --duration 600 --timeout-ms 5000
A_OK=$(jget "$WORK/aors.out" statuses 200)
A_RATE=$(jget "$WORK/aors.out" achieved_rate)
sleep 1
RSS_KB=$(awk '/^VmRSS/ {print $2}' "/proc/$B_PID/status")
log "$A_OK AORs registered at $(printf '%.0f' "$A_RATE")/s, RSS $((RSS_KB / 1024)) MB; stopping (flush) and restarting"
stop_server "$B_PID"
t0=$(date +%s%N)
RUST_LOG=warn,sipreg::server::app=info "$BIN" --config "$WORK/b/sipreg.toml" serve --no-auth \
    --sip-listen "127.0.0.1:$B_PORT" --http-listen 127.0.0.1:0 >"$WORK/b/reload.log" 2>&1 &
B_PID=$!
STARTED+=("$B_PID")
wait_ready "$B_PORT" "$B_PID" 180
t1=$(date +%s%N)
RELOAD_MS=$(( (t1 - t0) / 1000000 ))
LOADED=$(sed 's/\x1b\[[0-9;]*m//g' "$WORK/b/reload.log" | awk -F'bindings=' '/bindings loaded/ {split($2, a, " "); print a[1]; exit}')
sleep 1
RELOAD_RSS_KB=$(awk '/^VmRSS/ {print $2}' "/proc/$B_PID/status")
stop_server "$B_PID"

# --- table ------------------------------------------------------------------------------
read -r S_MAX S_P50 S_P90 S_P99 S_P999 S_PMAX S_CPU S_N <"$WORK/sipreg.result"
read -r K_MAX K_P50 K_P90 K_P99 K_P999 K_PMAX K_CPU K_N <"$WORK/kamailio.result"
read -r D_MAX D_P50 D_P90 D_P99 D_P999 D_PMAX D_CPU D_N <"$WORK/kamailio-digest.result"
read -r F_MAX F_P50 F_P90 F_P99 F_P999 F_PMAX F_CPU F_N <"$WORK/floor.result"
RATE_X=$(ratio "$S_MAX" "$K_MAX")
CPU_X=$(ratio "$S_CPU" "$K_CPU")
FLOOR_X=$(ratio "$F_CPU" "$K_CPU")
RSS_MB=$((RSS_KB / 1024))
RELOAD_RSS_MB=$((RELOAD_RSS_KB / 1024))
RELOAD_S=$(awk -v ms="$RELOAD_MS" 'BEGIN { printf "%.2f", ms / 1000 }')
T_RATE=$(verdict "$(awk -v x="$RATE_X" 'BEGIN { print (x != "n/a" && x >= 3) }')")
T_CPU=$(verdict "$(awk -v s="$S_CPU" -v k="$K_CPU" 'BEGIN { print (s + 0 > 0 && k + 0 > 0 && s <= k / 7) }')")
T_P99=$(verdict "$(awk -v p="$S_P99" 'BEGIN { print (p + 0 <= 1000) }')")
if [ "$AORS" -ge 1000000 ]; then
    T_RSS=$(verdict "$(awk -v m="$RSS_MB" 'BEGIN { print (m <= 300) }')")
    T_RELOAD=$(verdict "$(awk -v s="$RELOAD_S" 'BEGIN { print (s <= 5) }')")
else
    T_RSS="(quick: the target is for 1,000,000)"; T_RELOAD=$T_RSS
fi
MODE=$([ "$QUICK" = 1 ] && echo "quick" || echo "full")
CPU_MODEL=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)

TABLE=$(cat <<EOF
| Measure | sipreg (Bearer) | Kamailio ${KAM_VERSION:-?} (no auth) | Kamailio (Digest MD5, SQLite) | No-op UDP responder (the floor) | sipreg ÷ Kamailio no auth | Target (issue 6) |
|---|---|---|---|---|---|---|
| Highest sustained REGISTER/s (≥ 99.9 % 200 within 100 ms, no retransmission) | $S_MAX | $K_MAX | $D_MAX | $F_MAX | $RATE_X | ≥ 3: $T_RATE |
| Latency at 50 % of that rate, p50 / p90 / p99 / p99.9 / max (ms) | $(ms "$S_P50") / $(ms "$S_P90") / $(ms "$S_P99") / $(ms "$S_P999") / $(ms "$S_PMAX") | $(ms "$K_P50") / $(ms "$K_P90") / $(ms "$K_P99") / $(ms "$K_P999") / $(ms "$K_PMAX") | $(ms "$D_P50") / $(ms "$D_P90") / $(ms "$D_P99") / $(ms "$D_P999") / $(ms "$D_PMAX") | $(ms "$F_P50") / $(ms "$F_P90") / $(ms "$F_P99") / $(ms "$F_P999") / $(ms "$F_PMAX") | | sipreg p99 ≤ 1 ms: $T_P99 |
| Server CPU per REGISTER at $CPU_RATE/s for $CPU_SECS s (µs; REGISTERs answered) | $S_CPU ($S_N) | $K_CPU ($K_N) | $D_CPU ($D_N) | $F_CPU ($F_N) | $CPU_X | ≤ 1/7 (0.14): $T_CPU (the floor alone: $FLOOR_X) |
| RSS after $A_OK AORs registered over SIP (MB) | $RSS_MB | | | | | ≤ 300 MB: $T_RSS |
| Restart: reload of ${LOADED:-?} bindings until an OPTIONS is answered (s); RSS after (MB) | $RELOAD_S; $RELOAD_RSS_MB | | | | | ≤ 5 s: $T_RELOAD |
EOF
)
HEADER="$(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git -C "$ROOT" rev-parse --short HEAD), mode $MODE, nproc $(nproc), CPU \"$CPU_MODEL\", load average at the end $LOAD, $USERS users, search steps of ${STEP_SECS} s"
echo
echo "$HEADER"
echo
echo "$TABLE"

if [ "$APPEND" = 1 ]; then
    append_run '## sipreg against Kamailio (issue 6)' "$HEADER" "$TABLE"
fi

if [ "$FLEET" = 1 ]; then
    # shellcheck source=bench/compare_fleet.sh
    . "$ROOT/bench/compare_fleet.sh"
fi

if [ "$SECURE" = 1 ]; then
    # shellcheck source=bench/compare_secure.sh
    . "$ROOT/bench/compare_secure.sh"
fi
