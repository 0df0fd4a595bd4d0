#!/usr/bin/env bash
# Runs a real VictoriaLogs server on the loopback interface for the
# internal/logstore integration tests.
#
#   scripts/victorialogs.sh start [PORT]   build if missing, start, wait for
#                                          /health, print the URL on stdout
#   scripts/victorialogs.sh stop           stop it and remove its data dir
#   scripts/victorialogs.sh build          only build .tools/victoria-logs
#
# Typical use:
#   export LOUPE_VLOGS_URL=$(scripts/victorialogs.sh start)
#   go test ./internal/logstore/...
#   scripts/victorialogs.sh stop
#
# The binary is built from the Go module proxy into .tools/ (gitignored).
# State (pid, data dir, log) lives in $LOUPE_VLOGS_STATE, by default
# .tools/victorialogs.run/. Port 0 or no port picks a free one.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=v1.52.1
PKG=github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs
TOOLS=$PWD/.tools
BIN=$TOOLS/victoria-logs
STATE=${LOUPE_VLOGS_STATE:-$TOOLS/victorialogs.run}

log() { echo "victorialogs.sh: $*" >&2; }

build() {
  if [ -x "$BIN" ] && [ "$(cat "$TOOLS/victoria-logs.version" 2>/dev/null)" = "$VERSION" ]; then
    return
  fi
  mkdir -p "$TOOLS"
  log "building $PKG@$VERSION into $TOOLS"
  GOBIN=$TOOLS GOFLAGS=-mod=mod go install "$PKG@$VERSION" >&2
  echo "$VERSION" >"$TOOLS/victoria-logs.version"
}

. scripts/lib.sh # free_port, stop_server (the working directory is the repository root)

start() {
  local port=${1:-0}
  build
  if [ -f "$STATE/pid" ] && kill -0 "$(cat "$STATE/pid")" 2>/dev/null; then
    log "already running (pid $(cat "$STATE/pid"))"
    cat "$STATE/url"
    return
  fi
  rm -rf "$STATE"
  mkdir -p "$STATE"
  [ "$port" = 0 ] && port=$(free_port)
  local url=http://127.0.0.1:$port
  # The test corpus is from 2024: keep everything (retention 100y) so the
  # server accepts old timestamps.
  "$BIN" -httpListenAddr="127.0.0.1:$port" \
    -storageDataPath="$STATE/data" \
    -retentionPeriod=100y \
    -loggerLevel=WARN \
    >"$STATE/log" 2>&1 &
  echo $! >"$STATE/pid"
  echo "$url" >"$STATE/url"
  for _ in $(seq 1 100); do
    if curl -fsS "$url/health" >/dev/null 2>&1; then
      echo "$url"
      return
    fi
    if ! kill -0 "$(cat "$STATE/pid")" 2>/dev/null; then
      log "server exited; its log:"; cat "$STATE/log" >&2
      return 1
    fi
    sleep 0.1
  done
  log "no /health answer from $url after 10s; its log:"; cat "$STATE/log" >&2
  stop
  return 1
}

stop() {
  . scripts/lib.sh
  stop_server "$STATE"
}

case "${1:-}" in
  start) start "${2:-0}" ;;
  stop) stop ;;
  build) build ;;
  *) echo "usage: $0 start [PORT] | stop | build" >&2; exit 2 ;;
esac
