#!/usr/bin/env bash
# Starts a throw-away PostgreSQL cluster for the tests' second pass: its own folder, a
# free loopback port, no system service, trust authentication on loopback only.
# Usage: .ci/postgres.sh start DIR   -> prints the admin URL (postgres://postgres@127.0.0.1:PORT/postgres)
#        .ci/postgres.sh stop DIR
# DIR's parent must be open to the postgres user (mktemp -d makes 0700: chmod 755 it).
set -euo pipefail
cmd=$1 dir=$2
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$bin" ] || { echo "postgresql is not installed" >&2; exit 1; }

# initdb and the server refuse to run as root: run them as the packages' postgres user.
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case $cmd in
start)
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres "$dir"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  if ! as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1; then
    cat "$dir/initdb.log" >&2
    exit 1
  fi
  # fsync off: a test cluster, thrown away after the run.
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=500" >/dev/null
  echo "postgres://postgres@127.0.0.1:$port/postgres"
  ;;
stop)
  as_owner "$bin/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 || true
  ;;
esac
