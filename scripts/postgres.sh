#!/usr/bin/env bash
# Runs a throwaway PostgreSQL 15 server on the loopback interface for the
# internal/store integration tests.
#
#   scripts/postgres.sh start [PORT]   initdb, start, create database loupe_test,
#                                      print the DSN on stdout
#   scripts/postgres.sh stop           stop it and remove its data dir
#
# Typical use:
#   export LOUPE_PG_DSN=$(scripts/postgres.sh start)
#   go test ./internal/store/...
#   scripts/postgres.sh stop
#
# Needs Debian's PostgreSQL 15 (apt-get install -y postgresql); the binaries
# are looked up in $LOUPE_PG_BIN, else /usr/lib/postgresql/15/bin, else PATH.
# The server trusts connections from 127.0.0.1 only and keeps its state in
# $LOUPE_PG_STATE (default .tools/postgres.run/). Run as root, the server runs
# as the unprivileged user postgres (or $LOUPE_PG_USER) and the state goes
# under a temp dir that user owns. Port 0 or no port picks a free one.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${LOUPE_PG_BIN:-/usr/lib/postgresql/15/bin}
[ -x "$BIN/pg_ctl" ] || BIN=$(dirname "$(command -v pg_ctl 2>/dev/null || echo /nonexistent/pg_ctl)")
RUNAS=${LOUPE_PG_USER:-postgres}
DB=loupe_test
POINTER=$PWD/.tools/postgres.state   # where the state dir is recorded

log() { echo "postgres.sh: $*" >&2; }

# as runs a command as the server's user (itself when not root).
as() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u "$RUNAS" -- "$@"
  else
    "$@"
  fi
}

. scripts/lib.sh # free_port (the working directory is the repository root)

state_dir() {
  if [ -n "${LOUPE_PG_STATE:-}" ]; then echo "$LOUPE_PG_STATE"; return; fi
  if [ -f "$POINTER" ]; then cat "$POINTER"; return; fi
  echo ""
}

running() {
  local st=$1
  [ -n "$st" ] && [ -f "$st/data/postmaster.pid" ] && as "$BIN/pg_ctl" -D "$st/data" status >/dev/null 2>&1
}

start() {
  local port=${1:-0}
  if [ ! -x "$BIN/pg_ctl" ]; then
    log "PostgreSQL binaries not found (want $BIN/pg_ctl); install with: apt-get install -y postgresql"
    return 1
  fi
  local st
  st=$(state_dir)
  if running "$st"; then
    log "already running ($st)"
    cat "$st/dsn"
    return
  fi
  [ -n "$st" ] && rm -rf "$st"
  mkdir -p "$(dirname "$POINTER")"
  if [ -n "${LOUPE_PG_STATE:-}" ]; then
    st=$LOUPE_PG_STATE; mkdir -p "$st"
  else
    st=$(mktemp -d "${TMPDIR:-/tmp}/loupe-pg.XXXXXX")
  fi
  echo "$st" >"$POINTER"
  if [ "$(id -u)" = 0 ]; then
    id "$RUNAS" >/dev/null 2>&1 || { log "user $RUNAS missing (apt-get install -y postgresql creates it)"; return 1; }
    chown "$RUNAS" "$st"
  fi
  chmod 700 "$st"
  [ "$port" = 0 ] && port=$(free_port)

  as "$BIN/initdb" -D "$st/data" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$st/initdb.log" 2>&1 \
    || { log "initdb failed:"; cat "$st/initdb.log" >&2; return 1; }
  # Trust only loopback TCP; no Unix socket in a shared directory.
  cat >"$st/hba.conf" <<HBA
host all all 127.0.0.1/32 trust
HBA
  [ "$(id -u)" = 0 ] && chown "$RUNAS" "$st/hba.conf"
  if ! as "$BIN/pg_ctl" -D "$st/data" -l "$st/server.log" -w -t 30 \
      -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories='' -c hba_file=$st/hba.conf -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100" \
      start >/dev/null 2>&1; then
    log "server did not start; its log:"; cat "$st/server.log" >&2
    return 1
  fi
  local ok=
  for _ in $(seq 1 100); do
    if "$BIN/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -qAtc 'select 1' >/dev/null 2>&1; then ok=1; break; fi
    sleep 0.1
  done
  [ -n "$ok" ] || { log "no answer on 127.0.0.1:$port; its log:"; cat "$st/server.log" >&2; stop; return 1; }
  "$BIN/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -qAtc "create database $DB" >/dev/null
  local dsn="postgres://postgres@127.0.0.1:$port/$DB?sslmode=disable"
  echo "$dsn" >"$st/dsn"
  echo "$dsn"
}

stop() {
  local st
  st=$(state_dir)
  if [ -n "$st" ] && [ -d "$st/data" ]; then
    as "$BIN/pg_ctl" -D "$st/data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
  fi
  [ -n "$st" ] && rm -rf "$st"
  rm -f "$POINTER"
}

case "${1:-}" in
  start) start "${2:-0}" ;;
  stop) stop ;;
  *) echo "usage: $0 start [PORT] | stop" >&2; exit 2 ;;
esac
