# Secure transports (issue 13): the TLS and WSS rows of bench/compare.sh. Sourced by
# compare.sh (after its helpers and the release build; `compare.sh --secure-only` runs only
# these rows), not run on its own. For sipreg and for Kamailio (bench/kamailio/kamailio.cfg
# with WITH_TLS and WITH_WS, no authentication on either side), in the same run, with the
# same generator (`sipreg bench`, --tls-insecure: the lab certificate is not checked, the
# handshake signatures are):
#   a. server CPU per REGISTER over persistent TLS connections (16) at $TLS_RATE/s;
#   b. full TLS handshakes per second: a new connection per REGISTER, $HS_CONC at a time,
#      closed loop (TCP connect + handshake + REGISTER + close), and the server's CPU per
#      handshake;
#   c. the same with session resumption (--tls-resume; TLS 1.3 tickets);
#   d. memory per idle TLS connection: $IDLE_CONNS connections opened (handshake, no
#      message) and held; the servers' memory before and while held ÷ connections. Memory is
#      the sum of PSS over the server's processes (Kamailio forks; PSS counts a shared page
#      once, RSS in every process that maps it); for one process it is its RSS;
#   e. server CPU per REGISTER over persistent WSS connections (16) at $TLS_RATE/s.
# Each CPU step follows a warm-up pass in which every user registers once over that
# transport, and is run $SECURE_REPEAT times: the row shows the median (these figures are
# dominated by thread wake-ups, which vary from minute to minute on a VM). Kamailio keeps
# its bindings in memory only (usrloc db_mode 0), so sipreg does too by default here
# (SIPREG_PERSISTENCE=memory); SIPREG_PERSISTENCE=write-behind measures its default
# persistence instead (every refresh written to SQLite behind the answer). The sipreg side is "n/a" while `sipreg serve --help` lists no --sips-listen
# (a, b, c, d) or --wss-listen (e).
# Environment: TLS_RATE, IDLE_CONNS, HS_CONC, SECURE_SECS, SECURE_REPEAT; SIPREG_TLS_TOML: extra lines for
# sipreg's [tls] section; SIPREG_SERVE_BIN: the sipreg binary to serve with (default: the
# one just built, which also generates the load), e.g. a branch's build.
# shellcheck shell=bash

if [ "$QUICK" = 1 ]; then
    SECURE_SECS=${SECURE_SECS:-1}; IDLE_CONNS=${IDLE_CONNS:-1000}; HOLD_SECS=2
else
    SECURE_SECS=${SECURE_SECS:-10}; IDLE_CONNS=${IDLE_CONNS:-10000}; HOLD_SECS=8
fi
TLS_RATE=${TLS_RATE:-2000}
HS_CONC=${HS_CONC:-16}
if [ "$QUICK" = 1 ]; then SECURE_REPEAT=${SECURE_REPEAT:-1}; else SECURE_REPEAT=${SECURE_REPEAT:-3}; fi
SIPREG_PERSISTENCE=${SIPREG_PERSISTENCE:-memory}
# Lanes connect from 127.0.0.1 ... 127.0.0.16: a connection per REGISTER leaves a TIME_WAIT
# per connection, and 10,000 held connections need that many ports.
SOURCES=16

need "command -v openssl" openssl
need "test -f /usr/lib/x86_64-linux-gnu/kamailio/modules/tls.so" kamailio-tls-modules
need "test -f /usr/lib/x86_64-linux-gnu/kamailio/modules/websocket.so" kamailio-websocket-modules

# Each side holds IDLE_CONNS descriptors: raise the soft limit to the hard one, and hold
# fewer connections if even that is short.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
FD_LIMIT=$(ulimit -n)
if [ "$FD_LIMIT" != unlimited ] && [ "$IDLE_CONNS" -gt $((FD_LIMIT - 500)) ]; then
    log "ulimit -n is $FD_LIMIT: holding $((FD_LIMIT - 500)) idle connections, not $IDLE_CONNS"
    IDLE_CONNS=$((FD_LIMIT - 500))
fi

# The lab certificate of both servers: ECDSA P-256, as `sipreg tls self-signed` makes.
mkdir -p "$WORK/tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$WORK/tls/key.pem" -out "$WORK/tls/cert.pem" >"$WORK/tls/openssl.log" 2>&1

# Sum of PSS (kB) over the given pids.
pss_kb() {
    local total=0 pid v
    for pid in "$@"; do
        v=$(awk '/^Pss:/ {print $2; exit}' "/proc/$pid/smaps_rollup" 2>/dev/null) || continue
        total=$((total + ${v:-0}))
    done
    echo "$total"
}

# cpu_per NAME PORT "PIDS" COUNT-KEY ARGS...: one generator run; prints "µs-per-COUNT COUNT"
# (the server's CPU ticks over the run ÷ the JSON's COUNT-KEY, e.g. answered or connects).
cpu_per() {
    local name=$1 port=$2 pids=$3 key=$4; shift 4
    local before after n
    # shellcheck disable=SC2086
    before=$(cpu_ticks $pids)
    gen "$WORK/$name.out" "$port" "$@"
    # shellcheck disable=SC2086
    after=$(cpu_ticks $pids)
    n=$(jget "$WORK/$name.out" "$key")
    awk -v t=$((after - before)) -v n="$n" -v hz="$CLK_TCK" \
        'BEGIN { if (n > 0) printf "%.1f %d\n", t * 1e6 / hz / n, n; else print "n/a 0" }'
}

# cpu_median NAME PORT "PIDS" COUNT-KEY ARGS...: cpu_per SECURE_REPEAT times (servers
# settled between runs); prints the median "µs-per-COUNT COUNT" and logs every run.
cpu_median() {
    local name=$1 port=$2 pids=$3 key=$4 i runs=()
    shift 4
    for i in $(seq "$SECURE_REPEAT"); do
        [ "$i" = 1 ] || settle "$pids"
        runs+=("$(cpu_per "$name-$i" "$port" "$pids" "$key" "$@")")
    done
    log "$name: runs (µs, count): $(printf '%s; ' "${runs[@]}")"
    printf '%s\n' "${runs[@]}" | sort -g | awk '{ r[NR] = $0 } END { print r[int((NR + 1) / 2)] }'
}

# idle_memory NAME PORT "PIDS": the servers' memory per idle TLS connection (kB), and how
# many were held.
idle_memory() {
    local name=$1 port=$2 pids=$3 before during held out="$WORK/$1-idle.out"
    # shellcheck disable=SC2086
    before=$(pss_kb $pids)
    timeout 300 "$BIN" bench "127.0.0.1:$port" --json --transport tls --tls-insecure --no-auth \
        --users "$IDLE_CONNS" --prefix idle --sockets "$IDLE_CONNS" --concurrency "$IDLE_CONNS" \
        --requests 0 --warmup 0 --duration 1 --hold "$HOLD_SECS" --source-addresses "$SOURCES" \
        >"$out" 2>"$out.err" &
    local gen_pid=$! deadline=$((SECONDS + 240))
    until grep -q "holding" "$out.err" 2>/dev/null; do
        if ! kill -0 "$gen_pid" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
            kill "$gen_pid" 2>/dev/null || true
            wait "$gen_pid" 2>/dev/null || true
            cat "$out.err" >&2
            echo "n/a 0"
            return 0
        fi
        sleep 0.2
    done
    held=$(sed -n 's/.*holding \([0-9]*\) connections.*/\1/p' "$out.err")
    # The server has accepted and finished every handshake; let it settle.
    sleep 1
    # shellcheck disable=SC2086
    during=$(pss_kb $pids)
    wait "$gen_pid" || true
    awk -v b="$before" -v d="$during" -v n="$held" \
        'BEGIN { if (n > 0) printf "%.1f %d\n", (d - b) / n, n; else print "n/a 0" }'
}

# secure_measure NAME TLS-PORT WSS-PORT "PIDS": a-e for one server (WSS-PORT empty: no
# WSS); writes $WORK/NAME.secure:
# tls_cpu tls_n hs_rate hs_cpu hs_n res_rate res_cpu resumed res_n idle_kb idle_n wss_cpu wss_n
secure_measure() {
    local name=$1 tport=$2 wport=$3 pids=$4
    local tls=(--transport tls --tls-insecure --no-auth --users "$USERS" --prefix sec)
    SETTLE_PIDS=$pids
    log "$name: warm-up over TLS, every user registers once"
    gen "$WORK/$name-tls-warm.out" "$tport" "${tls[@]}" --requests "$USERS" --concurrency 64 \
        --warmup 0 --duration 60
    settle "$pids"
    log "$name: CPU per REGISTER over TLS at $TLS_RATE/s for $SECURE_SECS s"
    local tls_cpu
    tls_cpu=$(cpu_median "$name-tls-cpu" "$tport" "$pids" answered "${tls[@]}" --sockets 16 \
        --rate "$TLS_RATE" --duration "$SECURE_SECS" --warmup 0)
    log "$name: $tls_cpu (µs per REGISTER, answered)"
    settle "$pids"
    local per_call=(--connect-per-call --concurrency "$HS_CONC" --source-addresses "$SOURCES"
        --duration "$SECURE_SECS" --warmup "$WARM_SECS")
    log "$name: full handshakes, a connection per REGISTER, $HS_CONC at a time"
    local hs res
    hs=$(cpu_per "$name-hs" "$tport" "$pids" connects "${tls[@]}" "${per_call[@]}")
    log "$name: $(jget "$WORK/$name-hs.out" connects_per_s) handshakes/s, $hs (µs per handshake, handshakes); statuses $(jget "$WORK/$name-hs.out" statuses), connect errors $(jget "$WORK/$name-hs.out" connect_errors)"
    settle "$pids"
    log "$name: the same with session resumption"
    res=$(cpu_per "$name-res" "$tport" "$pids" connects "${tls[@]}" "${per_call[@]}" --tls-resume)
    log "$name: $(jget "$WORK/$name-res.out" connects_per_s) handshakes/s, $(jget "$WORK/$name-res.out" tls_resumed) resumed, $res"
    settle "$pids"
    log "$name: memory of $IDLE_CONNS idle TLS connections"
    local idle
    idle=$(idle_memory "$name" "$tport" "$pids")
    log "$name: $idle (kB per idle connection, connections held)"
    settle "$pids"
    local wss="n/a 0"
    if [ -n "$wport" ]; then
        local wargs=(--transport wss --tls-insecure --no-auth --users "$USERS" --prefix secw)
        log "$name: warm-up over WSS, every user registers once"
        gen "$WORK/$name-wss-warm.out" "$wport" "${wargs[@]}" --requests "$USERS" \
            --concurrency 64 --warmup 0 --duration 60
        settle "$pids"
        log "$name: CPU per REGISTER over WSS at $TLS_RATE/s for $SECURE_SECS s"
        wss=$(cpu_median "$name-wss-cpu" "$wport" "$pids" answered "${wargs[@]}" --sockets 16 \
            --rate "$TLS_RATE" --duration "$SECURE_SECS" --warmup 0)
        log "$name: $wss (µs per REGISTER, answered)"
    fi
    echo "$tls_cpu $(jget "$WORK/$name-hs.out" connects_per_s) $hs" \
        "$(jget "$WORK/$name-res.out" connects_per_s) $(awk '{print $1}' <<<"$res")" \
        "$(jget "$WORK/$name-res.out" tls_resumed) $(awk '{print $2}' <<<"$res") $idle $wss" \
        >"$WORK/$name.secure"
}

# --- sipreg over TLS and WSS, when it has the listeners ---------------------------------
SERVE_BIN=${SIPREG_SERVE_BIN:-$BIN}
SERVE_HELP=$("$SERVE_BIN" serve --help 2>&1 || true)
S_TLS_NA=""; S_WSS_NA=""
grep -q -- '--sips-listen' <<<"$SERVE_HELP" || S_TLS_NA="n/a: sipreg has no TLS listener yet"
grep -q -- '--wss-listen' <<<"$SERVE_HELP" || S_WSS_NA="n/a: sipreg has no WSS listener yet"
# The sipreg server is only started with TLS (WSS needs its certificate too).
[ -z "$S_TLS_NA" ] || S_WSS_NA=${S_WSS_NA:-$S_TLS_NA}
if [ -z "$S_TLS_NA" ]; then
    mkdir -p "$WORK/st"
    cat >"$WORK/st/sipreg.toml" <<EOF
[sip]
tcp_max_connections = $((IDLE_CONNS + 1000))
[registrar]
persistence = "$SIPREG_PERSISTENCE"
[database]
url = "sqlite://$WORK/st/sipreg.db?mode=rwc"
[tokens]
key_dir = "$WORK/st/keys"
[tls]
cert_file = "$WORK/tls/cert.pem"
key_file = "$WORK/tls/key.pem"
# Every connection comes from 127.0.0.1-16: no per-address cap below the idle count.
max_connections = $((IDLE_CONNS + 1000))
max_connections_per_ip = $((IDLE_CONNS + 1000))
${SIPREG_TLS_TOML:-}
[limits]
# Every benchmark request comes from 127.0.0.1: no per-address rate limit.
requests_per_ip_per_sec = 0
EOF
    ST_UDP=$(free_port); ST_TLS=$(free_port); ST_WSS=""
    extra=()
    if [ -z "$S_WSS_NA" ]; then ST_WSS=$(free_port); extra=(--wss-listen "127.0.0.1:$ST_WSS"); fi
    RUST_LOG=warn "$SERVE_BIN" --config "$WORK/st/sipreg.toml" serve --no-auth \
        --sip-listen "127.0.0.1:$ST_UDP" --sips-listen "127.0.0.1:$ST_TLS" "${extra[@]}" \
        --http-listen 127.0.0.1:0 >"$WORK/st/sipreg.log" 2>&1 &
    ST_PID=$!
    STARTED+=("$ST_PID")
    if wait_ready "$ST_UDP" "$ST_PID" 30 && options_ok "$ST_TLS" --transport tls --tls-insecure; then
        secure_measure sipreg "$ST_TLS" "$ST_WSS" "$ST_PID"
    else
        log "sipreg did not answer over TLS; see its log:"
        tail -5 "$WORK/st/sipreg.log" >&2
        S_TLS_NA="n/a: sipreg did not start with TLS (see the log above)"
        S_WSS_NA=${S_WSS_NA:-$S_TLS_NA}
    fi
    stop_server "$ST_PID"
fi

# --- Kamailio over TLS and WSS ----------------------------------------------------------
mkdir -p "$WORK/kt"
KT_UDP=$(free_port); KT_TLS=$(free_port); KT_WSS=$(free_port)
KAM_VERSION=$(kamailio -v 2>/dev/null | awk '/^version:/ {print $3; exit}')
kamailio -f "$KAM_CFG" -l "udp:127.0.0.1:$KT_UDP" -l "tls:127.0.0.1:$KT_TLS" -l "tls:127.0.0.1:$KT_WSS" \
    -m 1024 -DD -E -Y "$WORK/kt" -P "$WORK/kt/kamailio.pid" -A WITH_TLS -A WITH_WS \
    -A "TLS_CERT=\"$WORK/tls/cert.pem\"" -A "TLS_KEY=\"$WORK/tls/key.pem\"" \
    >"$WORK/kt/kamailio.log" 2>&1 &
KT_PID=$!
STARTED+=("$KT_PID")
wait_ready "$KT_UDP" "$KT_PID" 30
for _ in $(seq 50); do options_ok "$KT_TLS" --transport tls --tls-insecure && break; sleep 0.1; done
KT_PIDS="$KT_PID $(children_of "$KT_PID" | tr '\n' ' ')"
secure_measure kamailio "$KT_TLS" "$KT_WSS" "$KT_PIDS"
stop_server "$KT_PID"

# --- table ------------------------------------------------------------------------------
read -r K_TCPU K_TN K_HS K_HSCPU K_HSN K_RES K_RESCPU K_RESD K_RESN K_IDLE K_IDLEN K_WCPU K_WN \
    <"$WORK/kamailio.secure"
if [ -f "$WORK/sipreg.secure" ]; then
    read -r S_TCPU S_TN S_HS S_HSCPU S_HSN S_RES S_RESCPU S_RESD S_RESN S_IDLE S_IDLEN S_WCPU S_WN \
        <"$WORK/sipreg.secure"
fi
# cell VALUE N-A: the value, or why there is none.
cell() { if [ -n "$2" ]; then echo "$2"; else echo "$1"; fi; }
sratio() { if [ -n "$3" ]; then echo "n/a"; else ratio "$1" "$2"; fi; }
r0() { awk -v x="$1" 'BEGIN { if (x + 0 > 0) printf "%.0f", x; else print "n/a" }'; }
S_WSS_NA=${S_WSS_NA:-}
[ -n "$S_WSS_NA" ] || [ "${S_WCPU:-n/a}" != n/a ] || S_WSS_NA="n/a: no WSS result"
SECURE_TABLE=$(cat <<EOF
| Measure | sipreg (no auth) | Kamailio ${KAM_VERSION:-?} (no auth) | sipreg ÷ Kamailio |
|---|---|---|---|
| Server CPU per REGISTER over persistent TLS (16 connections) at $TLS_RATE/s for $SECURE_SECS s (µs; REGISTERs answered) | $(cell "${S_TCPU:-} (${S_TN:-})" "$S_TLS_NA") | $K_TCPU ($K_TN) | $(sratio "${S_TCPU:-}" "$K_TCPU" "$S_TLS_NA") |
| Full TLS handshakes per second, a connection per REGISTER, $HS_CONC at a time (server CPU per handshake, µs) | $(cell "$(r0 "${S_HS:-}") (${S_HSCPU:-})" "$S_TLS_NA") | $(r0 "$K_HS") ($K_HSCPU) | $(sratio "${S_HS:-}" "$K_HS" "$S_TLS_NA") |
| The same with session resumption (resumed of opened; server CPU per handshake, µs) | $(cell "$(r0 "${S_RES:-}") (${S_RESD:-} of ${S_RESN:-}; ${S_RESCPU:-})" "$S_TLS_NA") | $(r0 "$K_RES") ($K_RESD of $K_RESN; $K_RESCPU) | $(sratio "${S_RES:-}" "$K_RES" "$S_TLS_NA") |
| Memory per idle TLS connection, $IDLE_CONNS held (kB, PSS after − before ÷ connections; held) | $(cell "${S_IDLE:-} (${S_IDLEN:-})" "$S_TLS_NA") | $K_IDLE ($K_IDLEN) | $(sratio "${S_IDLE:-}" "$K_IDLE" "$S_TLS_NA") |
| Server CPU per REGISTER over persistent WSS (16 connections) at $TLS_RATE/s for $SECURE_SECS s (µs; REGISTERs answered) | $(cell "${S_WCPU:-} (${S_WN:-})" "$S_WSS_NA") | $K_WCPU ($K_WN) | $(sratio "${S_WCPU:-}" "$K_WCPU" "$S_WSS_NA") |
EOF
)
MODE=$([ "$QUICK" = 1 ] && echo "quick" || echo "full")
CPU_MODEL=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
SECURE_HEADER="$(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git -C "$ROOT" rev-parse --short HEAD), mode $MODE, nproc $(nproc), CPU \"$CPU_MODEL\", load average at the end $(cut -d' ' -f1-3 /proc/loadavg), $USERS users, ECDSA P-256 lab certificate, ulimit -n $FD_LIMIT, CPU rows the median of $SECURE_REPEAT runs, sipreg registrar.persistence = $SIPREG_PERSISTENCE, Kamailio usrloc db_mode 0"
echo
echo "$SECURE_HEADER"
echo
echo "$SECURE_TABLE"
if [ "$APPEND" = 1 ]; then
    append_run '## Secure transports (issue 13)' "$SECURE_HEADER" "$SECURE_TABLE"
fi
