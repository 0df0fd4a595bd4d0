#!/usr/bin/env bash
# Runs a real Ollama server on the loopback interface with loupe's tiny test
# model (internal/llm/gguftiny) for the provider integration tests.
#
#   scripts/ollama.sh start [PORT]   build if missing, start, create the model
#                                    loupe-tiny, print the base URL on stdout
#   scripts/ollama.sh stop           stop it and remove its state dir
#   scripts/ollama.sh build          only build the server binary
#
# Typical use:
#   export LOUPE_OLLAMA_URL=$(scripts/ollama.sh start) LOUPE_OLLAMA_MODEL=loupe-tiny
#   go test ./internal/llm/...
#   scripts/ollama.sh stop
#
# The server is built with cgo from the Go module proxy (a few minutes on 2
# cores) into $LOUPE_OLLAMA_CACHE (default ~/.cache/loupe/ollama-VERSION),
# and rebuilt only when that binary is missing. Module zips leave out
# llama.cpp's vendor/ directory: its JSON and image headers come from
# Debian's nlohmann-json3-dev and libstb-dev (installed when missing), and
# the audio decoder it includes is replaced by scripts/ollama/miniaudio/, a
# stand-in that rejects audio (the tests send text only).
# State (pid, models, log) lives in $LOUPE_OLLAMA_STATE, by default
# .tools/ollama.run/. Port 0 or no port picks a free one.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=v0.17.4
PKG=github.com/ollama/ollama
MODEL=loupe-tiny
CACHE=${LOUPE_OLLAMA_CACHE:-${HOME:-/root}/.cache/loupe/ollama-$VERSION}
BIN=$CACHE/ollama
STATE=${LOUPE_OLLAMA_STATE:-$PWD/.tools/ollama.run}

log() { echo "ollama.sh: $*" >&2; }

# deps installs the C++ compiler and the headers the module zip lacks.
deps() {
  local missing=()
  command -v g++ >/dev/null || missing+=(g++)
  [ -f /usr/include/nlohmann/json.hpp ] || missing+=(nlohmann-json3-dev)
  [ -f /usr/include/stb/stb_image.h ] || missing+=(libstb-dev)
  [ ${#missing[@]} = 0 ] && return
  log "installing ${missing[*]} (Debian packages)"
  local sudo=
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq >&2 && $sudo apt-get install -y -qq "${missing[@]}" >&2
}

build() {
  if [ -x "$BIN" ]; then
    return
  fi
  deps
  mkdir -p "$CACHE"
  log "building $PKG@$VERSION into $CACHE (cgo, a few minutes)"
  local start=$SECONDS work
  work=$(mktemp -d)
  # The stand-in header goes to the cache dir: a fixed -I path keeps Go's
  # build cache valid whichever clone of loupe builds.
  mkdir -p "$CACHE/include"
  cp -r scripts/ollama/miniaudio "$CACHE/include/"
  # Outside the repository, so loupe's go.mod is not involved.
  if ! (cd "$work" && CGO_ENABLED=1 GOBIN="$work/bin" \
      CGO_CPPFLAGS="-I$CACHE/include ${CGO_CPPFLAGS:-}" \
      go install -ldflags "-X $PKG/version.Version=${VERSION#v}" "$PKG@$VERSION" >&2); then
    rm -rf "$work"
    log "building $PKG@$VERSION failed"
    return 1
  fi
  mv "$work/bin/ollama" "$BIN"
  rm -rf "$work"
  log "built in $((SECONDS - start))s"
}

. scripts/lib.sh # free_port, stop_server (the working directory is the repository root)

# ask runs the ollama client against the started server.
ask() { OLLAMA_HOST=$(cat "$STATE/url") HOME=$STATE "$BIN" "$@"; }

start() {
  local port=${1:-0}
  build
  if [ -f "$STATE/pid" ] && kill -0 "$(cat "$STATE/pid")" 2>/dev/null; then
    log "already running (pid $(cat "$STATE/pid"))"
    cat "$STATE/url"
    return
  fi
  rm -rf "$STATE"
  mkdir -p "$STATE/models"
  go run ./scripts/gguftiny -dir "$STATE/model" >&2
  [ "$port" = 0 ] && port=$(free_port)
  local url=http://127.0.0.1:$port
  echo "$url" >"$STATE/url"
  # HOME keeps the server's key pair out of the user's ~/.ollama.
  HOME=$STATE OLLAMA_HOST=127.0.0.1:$port OLLAMA_MODELS=$STATE/models \
    OLLAMA_NO_CLOUD=1 OLLAMA_KEEP_ALIVE=30m \
    "$BIN" serve >"$STATE/log" 2>&1 &
  echo $! >"$STATE/pid"
  local up=
  for _ in $(seq 1 100); do
    if curl -fsS "$url/api/version" >/dev/null 2>&1; then up=1; break; fi
    if ! kill -0 "$(cat "$STATE/pid")" 2>/dev/null; then
      log "server exited; its log:"; cat "$STATE/log" >&2
      return 1
    fi
    sleep 0.1
  done
  if [ -z "$up" ]; then
    log "no /api/version answer from $url after 10s; its log:"; tail -50 "$STATE/log" >&2
    stop
    return 1
  fi
  if ! (cd "$STATE/model" && ask create "$MODEL" -f Modelfile >"$STATE/create.log" 2>&1); then
    log "creating $MODEL failed:"; cat "$STATE/create.log" >&2; tail -50 "$STATE/log" >&2
    stop
    return 1
  fi
  echo "$url"
}

stop() {
  . scripts/lib.sh
  stop_server "$STATE" # the Ollama server stops its model runners itself
}

case "${1:-}" in
  start) start "${2:-0}" ;;
  stop) stop ;;
  build) build ;;
  *) echo "usage: $0 start [PORT] | stop | build" >&2; exit 2 ;;
esac
