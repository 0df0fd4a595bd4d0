#!/usr/bin/env bash
# Regenerates the web view's screenshots, docs/investigations.png (the list),
# docs/investigation.png (one investigation) and
# docs/investigation-findings.png (the page filtered on Credential Access,
# 1400×2200, down to its questions, conclusions and evidence), from real
# runs:
#
#   scripts/screenshots.sh
#
# It builds loupe, starts `loupe serve` on a free loopback port with a
# throwaway data directory, starts one background investigation per sample
# through POST /api/investigations, waits for them to finish, and has
# headless Chromium photograph the pages (1400×1000, like docs/sib-*.png).
# The main investigation is EVTX-ATTACK-SAMPLES when the shared data set is
# beside the repository ($LOUPE_SHARED/data/evtx-attack-samples.jsonl.gz,
# default ../shared), else the synthetic Windows intrusion in
# testdata/attack/evtx.jsonl.
#
# Needs Go, curl and Chromium (apt-get install -y chromium). OUT=dir writes
# the images elsewhere than docs/.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh # free_port

out=${OUT:-docs}
shared=${LOUPE_SHARED:-../shared}
chromium=$(command -v chromium || command -v chromium-browser || true)
[ -n "$chromium" ] || { echo "screenshots.sh: chromium not found (apt-get install -y chromium)" >&2; exit 1; }
command -v curl >/dev/null || { echo "screenshots.sh: curl not found" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/loupe-shots.XXXXXX")
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/loupe" ./cmd/loupe
port=$(free_port)
base=http://127.0.0.1:$port
roots=$PWD/testdata
main_name="FS01 intrusion (Windows event logs)"
main_file=$PWD/testdata/attack/evtx.jsonl
if [ -f "$shared/data/evtx-attack-samples.jsonl.gz" ]; then
  main_file=$(cd "$shared/data" && pwd)/evtx-attack-samples.jsonl.gz
  main_name="EVTX-ATTACK-SAMPLES (Windows event logs)"
  roots=$roots,$(dirname "$main_file")
fi

env -u LOUPE_TOKEN -u LOUPE_TOKEN_FILE -u LOUPE_STORE_DSN LOUPE_DATA_DIR="$work/data" \
  "$work/loupe" serve --listen "127.0.0.1:$port" --file-roots "$roots" >"$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  curl -sf "$base/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -sf "$base/healthz" >/dev/null || { echo "screenshots.sh: loupe serve did not start:" >&2; cat "$work/serve.log" >&2; exit 1; }

# start NAME FILE: one investigation over a file; prints its id.
start() {
  local body
  body=$(printf '{"name": "%s", "source": {"kind": "file", "params": {"path": "%s"}}}' "$1" "$2")
  curl -sf -X POST -H 'Content-Type: application/json' --data "$body" "$base/api/investigations" |
    grep -o '"id": *"[0-9a-f]*"' | head -1 | grep -o '[0-9a-f]\{8,\}'
}

# wait_done ID: until the investigation's status is final.
wait_done() {
  for _ in $(seq 1 600); do
    if curl -sf "$base/api/investigations/$1" | grep -Eq '"status": *"(done|failed|cancelled)"'; then return; fi
    sleep 0.2
  done
  echo "screenshots.sh: investigation $1 did not finish" >&2
  exit 1
}

ids=()
ids+=("$(start "WKS-042 baseline (benign Windows)" "$PWD/testdata/benign/evtx.jsonl")")
ids+=("$(start "EKS nodes (Falco alerts)" "$PWD/testdata/attack/falco.jsonl")")
ids+=("$(start "web01 (auth.log)" "$PWD/testdata/attack/auth.log")")
ids+=("$(start "Timesketch sketch export (plaso)" "$PWD/testdata/attack/timesketch-nested.jsonl")")
main=$(start "$main_name" "$main_file")
ids+=("$main")
for id in "${ids[@]}"; do wait_done "$id"; done

# shot FILE URL [HEIGHT]
shot() {
  "$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$(mktemp -d "$work/chrome.XXXXXX")" --hide-scrollbars \
    --window-size=1400,"${3:-1000}" --screenshot="$1" "$2" >/dev/null 2>&1
  [ -s "$1" ] || { echo "screenshots.sh: no screenshot of $2" >&2; exit 1; }
}
mkdir -p "$out"
shot "$out/investigations.png" "$base/investigations"
shot "$out/investigation.png" "$base/investigations/$main"
shot "$out/investigation-findings.png" "$base/investigations/$main?tactic=TA0006" 2200
echo "wrote $out/investigations.png, $out/investigation.png and $out/investigation-findings.png ($main_name, investigation $main)"
