# The fleet workload (issue 15): the rows of bench/compare.sh for phones that re-register
# every few minutes with long-lived access tokens. Sourced by compare.sh (after its helpers
# and the release build; `compare.sh --fleet-only` runs only these rows), not run on its
# own. For sipreg (Bearer), Kamailio without authentication, Kamailio with Digest (MD5,
# SQLite subscribers; a fresh nonce per registration: 401, then the authenticated
# REGISTER, as phones that re-register after minutes do) and the floor, in one run:
#   a. hot loop: server CPU per registration at $CPU_RATE/s for $FLEET_CPU_SECS s, users in
#      turn, each with its first token (Kamailio Digest reusing its nonce), after a pass in
#      which every user registers once;
#   b. fleet: $FLEET_USERS users, each re-registering every $FLEET_INTERVAL s on average
#      (exponential gaps), each token sent $TOKEN_USES times before the user's next one (a
#      1 h token and a 10 min re-registration: 6; users start at staggered points, so one
#      registration in $TOKEN_USES brings a token not seen yet); CPU per registration over
#      $FLEET_SECS s, after one interval in which every user registers;
#   c. first sighting: every REGISTER carries a token sipreg has not seen ($FS_USERS users
#      with $FS_TOKENS tokens each, each sent once) at $FS_RATE/s; CPU per registration;
#      Kamailio no-auth as in (a), Kamailio Digest with a fresh nonce each time;
#   a'. the hot loop again, after the burst of new tokens (sipreg: after ÷ before);
#   d. the highest sustained fleet rate (the search of compare.sh with the fleet model:
#      users ÷ interval), then $LONG_SECS s at 50 % of it: p99, p99.9, max, the worst
#      window's share answered 2xx within 100 ms, and sipreg's RSS at the end of every
#      ${WINDOW}-second window (`sipreg bench --server-pid`).
# Users and tokens come from `sipreg bench-users` (one shared password hashed once; tokens
# of a $TOKEN_LIFETIME s lifetime signed with sipreg's own key), which also writes
# Kamailio's subscribers; the time it takes is printed under the table.
# sipreg keeps its bindings like Kamailio (in memory) unless SIPREG_PERSISTENCE says
# otherwise (write-behind: its default persistence).
# Environment: FLEET_USERS, FLEET_INTERVAL, FLEET_SECS, FLEET_CPU_SECS, TOKEN_USES,
# TOKEN_LIFETIME, FS_USERS, FS_TOKENS, FS_RATE, LONG_SECS, WINDOW, SIPREG_PERSISTENCE;
# FLEET_MAX: skip the search of (d) and run at half of this rate (the default in --quick).
# --quick: 300 fleet users every second, 100 x 3 first-sighting tokens, 4 s in 2-s windows.
# shellcheck shell=bash

if [ "$QUICK" = 1 ]; then
    FLEET_USERS=${FLEET_USERS:-300}; FLEET_INTERVAL=${FLEET_INTERVAL:-1}; FLEET_SECS=${FLEET_SECS:-2}
    FLEET_CPU_SECS=${FLEET_CPU_SECS:-1}; TOKEN_USES=${TOKEN_USES:-2}
    FS_USERS=${FS_USERS:-100}; FS_TOKENS=${FS_TOKENS:-3}; FS_RATE=${FS_RATE:-200}
    LONG_SECS=${LONG_SECS:-4}; WINDOW=${WINDOW:-2}
    # No search in CI (the main table's search runs there): (d) at half of this rate.
    FLEET_MAX=${FLEET_MAX:-2000}
else
    FLEET_USERS=${FLEET_USERS:-100000}; FLEET_INTERVAL=${FLEET_INTERVAL:-20}; FLEET_SECS=${FLEET_SECS:-120}
    FLEET_CPU_SECS=${FLEET_CPU_SECS:-$CPU_SECS}; TOKEN_USES=${TOKEN_USES:-6}
    FS_USERS=${FS_USERS:-20000}; FS_TOKENS=${FS_TOKENS:-4}; FS_RATE=${FS_RATE:-2000}
    LONG_SECS=${LONG_SECS:-600}; WINDOW=${WINDOW:-60}
    FLEET_MAX=${FLEET_MAX:-}
fi
TOKEN_LIFETIME=${TOKEN_LIFETIME:-3600}
SIPREG_PERSISTENCE=${SIPREG_PERSISTENCE:-memory}
# Calls per fleet user in (b), the warm pass and its priming interval; a user past its last
# token goes back to its first (seen by then).
FLEET_TOKENS=$(( (FLEET_SECS / FLEET_INTERVAL + 2) / TOKEN_USES + 2 ))
# (c) sends every token once: the run lasts until they are used up.
FS_POOL=$((FS_USERS * FS_TOKENS))
FS_PW="Lab-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')-Q7"

# cpu_run NAME PORT "PIDS" ARGS...: one generator run; prints the server CPU (µs) per
# registration (2xx) and the registrations, and logs them.
cpu_run() {
    local name=$1 port=$2 pids=$3; shift 3
    local before after n
    # shellcheck disable=SC2086
    before=$(cpu_ticks $pids)
    gen "$WORK/$name.out" "$port" --warmup 0 "$@"
    # shellcheck disable=SC2086
    after=$(cpu_ticks $pids)
    n=$(jget "$WORK/$name.out" registered)
    log "$name: $(awk -v t=$((after - before)) -v n="$n" -v hz="$CLK_TCK" 'BEGIN { if (n > 0) printf "%.1f", t * 1e6 / hz / n; else print "n/a" }') µs per registration ($n registered; statuses $(jget "$WORK/$name.out" statuses))"
    settle "$pids"
    awk -v t=$((after - before)) -v n="$n" -v hz="$CLK_TCK" \
        'BEGIN { if (n > 0) printf "%.1f %d\n", t * 1e6 / hz / n, n; else print "n/a 0" }'
}

# windows FILE: the worst window's share in time (%) and the RSS per window (MB, comma-separated).
windows() {
    python3 - "$1" <<'EOF'
import json, sys
with open(sys.argv[1]) as f:
    w = json.loads(f.read().strip().splitlines()[-1]).get("windows", [])
worst = min((x["in_time_pct"] for x in w if x["answered"] > 0), default=0)
rss = [x["rss_kib"] for x in w if x.get("rss_kib")]
print(f"{worst:.3f}", ",".join(f"{k / 1024:.0f}" for k in rss) or "-")
EOF
}

# fleet_measure NAME PORT "PIDS" RSS-PID HOT FLEET FIRST: (a)-(d) for one system, each
# step's generator arguments given as one string; FIRST "" skips (c) and (d) (the floor).
# Writes $WORK/fleet-NAME.result: hot fleet first hot-after max p99 p999 pmax worst rss.
fleet_measure() {
    local name=$1 port=$2 pids=$3 rss_pid=$4 hot=$5 fleet=$6 first=$7
    local a b c a2 max=0 half p99=0 p999=0 pmax=0 worst=0 rss=-
    SETTLE_PIDS=$pids
    log "$name: warm-up, every fleet user registers once"
    # shellcheck disable=SC2086
    gen "$WORK/fleet-$name-warm.out" "$port" --requests "$FLEET_USERS" --concurrency 64 --warmup 0 --duration 600 $hot
    settle "$pids"
    # shellcheck disable=SC2086
    a=$(cpu_run "fleet-$name-hot" "$port" "$pids" --rate "$CPU_RATE" --duration "$FLEET_CPU_SECS" $hot)
    log "$name: fleet, priming interval, then $FLEET_SECS s measured"
    # shellcheck disable=SC2086
    gen "$WORK/fleet-$name-prime.out" "$port" --model fleet --interval "$FLEET_INTERVAL" --duration "$FLEET_INTERVAL" --warmup 0 $fleet
    settle "$pids"
    # shellcheck disable=SC2086
    b=$(cpu_run "fleet-$name-fleet" "$port" "$pids" --model fleet --interval "$FLEET_INTERVAL" --duration "$FLEET_SECS" $fleet)
    c="n/a 0"; a2="n/a 0"
    if [ -n "$first" ]; then
        # shellcheck disable=SC2086
        c=$(cpu_run "fleet-$name-first" "$port" "$pids" --rate "$FS_RATE" --duration "$((FS_POOL / FS_RATE + 5))" --requests "$FS_POOL" $first)
        # shellcheck disable=SC2086
        a2=$(cpu_run "fleet-$name-hot-after" "$port" "$pids" --rate "$CPU_RATE" --duration "$FLEET_CPU_SECS" $hot)
        if [ -n "$FLEET_MAX" ]; then
            max=$FLEET_MAX
        else
            log "$name: searching the highest sustained fleet rate ($FLEET_USERS users)"
            # shellcheck disable=SC2086
            max=$(RATE_MODEL=fleet search "fleet-$name" "$port" $fleet)
        fi
        half=$(( max / 2 > 100 ? max / 2 : 100 ))
        log "$name: $LONG_SECS s at $half/s (50 % of $max/s), windows of $WINDOW s"
        local pid_arg=()
        [ -z "$rss_pid" ] || pid_arg=(--server-pid "$rss_pid")
        # shellcheck disable=SC2046,SC2086
        gen "$WORK/fleet-$name-long.out" "$port" $(RATE_MODEL=fleet rate_args "$half") --duration "$LONG_SECS" \
            --warmup "$WARM_SECS" --window "$WINDOW" "${pid_arg[@]}" $fleet
        local f="$WORK/fleet-$name-long.out"
        p99=$(jget "$f" latency p99_us); p999=$(jget "$f" latency p999_us); pmax=$(jget "$f" latency max_us)
        read -r worst rss <<<"$(windows "$f")"
        settle "$pids"
    fi
    echo "$a $b $c $a2 $max $p99 $p999 $pmax $worst $rss" >"$WORK/fleet-$name.result"
}

# --- users and tokens ---------------------------------------------------------------------
mkdir -p "$WORK/fl"
cat >"$WORK/fl/sipreg.toml" <<EOF
[registrar]
persistence = "$SIPREG_PERSISTENCE"
[database]
url = "sqlite://$WORK/fl/sipreg.db?mode=rwc"
[tokens]
key_dir = "$WORK/fl/keys"
[limits]
# Every benchmark request comes from 127.0.0.1: no per-address rate limit.
requests_per_ip_per_sec = 0
EOF
log "sipreg bench-users: $FLEET_USERS fleet users x $FLEET_TOKENS tokens, $FS_USERS first-sighting users x $FS_TOKENS"
BU_FLEET=$(RUST_LOG=warn timeout 3600 "$BIN" --config "$WORK/fl/sipreg.toml" bench-users --count "$FLEET_USERS" \
    --prefix fleet --tokens-per-user "$FLEET_TOKENS" --lifetime "$TOKEN_LIFETIME" --password "$FS_PW" \
    --out "$WORK/fleet.csv" --kamailio-db "$WORK/fl/subscriber.db")
BU_FS=$(RUST_LOG=warn timeout 3600 "$BIN" --config "$WORK/fl/sipreg.toml" bench-users --count "$FS_USERS" \
    --prefix first --tokens-per-user "$FS_TOKENS" --lifetime "$TOKEN_LIFETIME" --password "$FS_PW" \
    --out "$WORK/first.csv" --kamailio-db "$WORK/fl/subscriber.db")
log "$(tr '\n' ' ' <<<"$BU_FLEET")"
log "$(tr '\n' ' ' <<<"$BU_FS")"

# --- sipreg -------------------------------------------------------------------------------
FS_PORT=$(free_port)
RUST_LOG=warn "$BIN" --config "$WORK/fl/sipreg.toml" serve --sip-listen "127.0.0.1:$FS_PORT" \
    --http-listen 127.0.0.1:0 >"$WORK/fl/sipreg.log" 2>&1 &
FS_PID=$!
STARTED+=("$FS_PID")
wait_ready "$FS_PORT" "$FS_PID" 60
fleet_measure sipreg "$FS_PORT" "$FS_PID" "$FS_PID" "--users-csv $WORK/fleet.csv" \
    "--users-csv $WORK/fleet.csv --token-uses $TOKEN_USES" \
    "--users-csv $WORK/first.csv --model first-sighting"
stop_server "$FS_PID"

# --- Kamailio, no authentication ----------------------------------------------------------
NOAUTH="--no-auth --users $FLEET_USERS --prefix fleet"
start_kamailio fleet-kamailio
fleet_measure kamailio "$K_PORT" "$K_PID $(children_of "$K_PID" | tr '\n' ' ')" "" "$NOAUTH" "$NOAUTH" "$NOAUTH"
stop_server "$K_PID"

# --- Kamailio, Digest (a fresh nonce per registration in b, c, d) ---------------------------
start_kamailio fleet-kamailio-digest -A WITH_DIGEST -A "DBURL=\"sqlite://$WORK/fl/subscriber.db\""
fleet_measure kamailio-digest "$K_PORT" "$K_PID $(children_of "$K_PID" | tr '\n' ' ')" "" \
    "--scenario register-digest --users-csv $WORK/fleet.csv" \
    "--scenario register-digest --fresh-nonce --users-csv $WORK/fleet.csv" \
    "--scenario register-digest --fresh-nonce --users-csv $WORK/first.csv"
stop_server "$K_PID"

# --- the floor: (a) and (b) only ------------------------------------------------------------
need "command -v cc" gcc
cc -O2 -o "$WORK/udp_floor" "$ROOT/bench/floor/udp_floor.c"
FF_PORT=$(free_port)
"$WORK/udp_floor" "$FF_PORT" >"$WORK/fleet-floor.log" 2>&1 &
FF_PID=$!
STARTED+=("$FF_PID")
wait_ready "$FF_PORT" "$FF_PID" 10
fleet_measure floor "$FF_PORT" "$FF_PID" "" "$NOAUTH" "$NOAUTH" ""
stop_server "$FF_PID"

# --- table --------------------------------------------------------------------------------
# Each result: hot (µs n) fleet (µs n) first (µs n) hot-after (µs n) max p99 p999 pmax worst rss
read -r SA SAN SB SBN SC SCN SA2 SA2N SMAX SP99 SP999 SPMAX SWORST SRSS <"$WORK/fleet-sipreg.result"
read -r KA KAN KB KBN KC KCN _ _ KMAX KP99 KP999 KPMAX KWORST _ <"$WORK/fleet-kamailio.result"
read -r DA DAN DB DBN DC DCN _ _ DMAX DP99 DP999 DPMAX DWORST _ <"$WORK/fleet-kamailio-digest.result"
read -r FA FAN FB FBN _ <"$WORK/fleet-floor.result"
le() { awk -v x="$1" -v t="$2" 'BEGIN { print (x != "n/a" && x <= t) }'; }
R_FD=$(ratio "$SB" "$DB"); R_FK=$(ratio "$SB" "$KB"); R_CD=$(ratio "$SC" "$DC")
R_AK=$(ratio "$SA" "$KA"); R_AA=$(ratio "$SA2" "$SA"); R_LONG=$(ratio "$SP999" "$KP999")
# RSS: the first window's sample, the last, and the growth between them.
RSS_FIRST=${SRSS%%,*}; RSS_LAST=${SRSS##*,}
RSS_FLAT=$(awk -v a="$RSS_FIRST" -v b="$RSS_LAST" 'BEGIN { print (a + 0 > 0 && b <= a * 1.05) }')
FMODE=$([ "$QUICK" = 1 ] && echo "quick" || echo "full")
if [ "$QUICK" = 1 ]; then
    T_RSS="(quick: the target is for 100,000 AORs over 10 minutes)"
else
    T_RSS="≤ 100 MB: $(verdict "$(le "$RSS_LAST" 100)"), flat after the first minute (≤ +5 %): $(verdict "$RSS_FLAT")"
fi
FLEET_TABLE=$(cat <<EOF
| Measure | sipreg (Bearer) | Kamailio ${KAM_VERSION:-?} (no auth) | Kamailio (Digest MD5, SQLite, fresh nonce in b–d) | No-op UDP responder (the floor) | Ratios (targets, issue 15) |
|---|---|---|---|---|---|
| (a) Hot loop: server CPU per registration at $CPU_RATE/s for $FLEET_CPU_SECS s (µs; registrations) | $SA ($SAN) | $KA ($KAN) | $DA ($DAN, nonce reused) | $FA ($FAN) | sipreg ÷ no auth $R_AK (≤ 1.0: $(verdict "$(le "$R_AK" 1.0)")) |
| (b) Fleet: $FLEET_USERS users every $FLEET_INTERVAL s, each token sent $TOKEN_USES times; CPU per registration over $FLEET_SECS s (µs; registrations) | $SB ($SBN) | $KB ($KBN) | $DB ($DBN) | $FB ($FBN) | ÷ Digest $R_FD (≤ 0.3: $(verdict "$(le "$R_FD" 0.3)")); ÷ no auth $R_FK (≤ 1.0: $(verdict "$(le "$R_FK" 1.0)")) |
| (c) First sighting: every REGISTER a token not seen before, $FS_POOL at $FS_RATE/s; CPU per registration (µs; registrations) | $SC ($SCN) | $KC ($KCN, no token) | $DC ($DCN) | | ÷ Digest $R_CD (≤ 0.8: $(verdict "$(le "$R_CD" 0.8)")) |
| (a') Hot loop again, after the first sightings (µs; registrations) | $SA2 ($SA2N) | | | | after ÷ before $R_AA (≤ 1.2: $(verdict "$(le "$R_AA" 1.2)")) |
| (d) Highest sustained fleet rate (REGISTER/s, ≥ 99.9 % 200 within 100 ms)$([ -z "$FLEET_MAX" ] || echo "; not searched: FLEET_MAX") | $SMAX | $KMAX | $DMAX | | |
| (d) $LONG_SECS s at 50 % of it: p99 / p99.9 / max (ms); worst ${WINDOW}-s window's 2xx within 100 ms (%) | $(ms "$SP99") / $(ms "$SP999") / $(ms "$SPMAX"); $SWORST | $(ms "$KP99") / $(ms "$KP999") / $(ms "$KPMAX"); $KWORST | $(ms "$DP99") / $(ms "$DP999") / $(ms "$DPMAX"); $DWORST | | p99.9 ÷ no auth $R_LONG (≤ 2: $(verdict "$(le "$R_LONG" 2)")); 100 % within 100 ms: $(verdict "$(awk -v w="$SWORST" 'BEGIN { print (w + 0 >= 100) }')") |
| (d) sipreg RSS at the end of each ${WINDOW}-s window (MB) | $SRSS | | | | $T_RSS |
EOF
)
FLEET_HEADER="$(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git -C "$ROOT" rev-parse --short HEAD), mode $FMODE, nproc $(nproc), CPU \"$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)\", load average at the end $(cut -d' ' -f1-3 /proc/loadavg), tokens of $TOKEN_LIFETIME s, sipreg registrar.persistence = $SIPREG_PERSISTENCE, Kamailio usrloc db_mode 0; bench-users: $(tr '\n' ' ' <<<"$BU_FLEET")"
echo
echo "$FLEET_HEADER"
echo
echo "$FLEET_TABLE"
if [ "$APPEND" = 1 ]; then
    append_run '## Fleet workload (issue 15)' "$FLEET_HEADER" "$FLEET_TABLE"
fi
