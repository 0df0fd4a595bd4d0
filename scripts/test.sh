#!/usr/bin/env bash
# The whole test suite: vet, all tests (against a real VictoriaLogs it
# builds and starts on loopback), the race detector on the server and CLI,
# and a short run of every fuzz target. Needs Go and curl.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== go vet"
go vet ./...

echo "== VictoriaLogs (real server for the internal/logstore integration tests)"
LOUPE_VLOGS_URL=$(scripts/victorialogs.sh start)
export LOUPE_VLOGS_URL
trap 'scripts/victorialogs.sh stop' EXIT

echo "== go test"
go test -count=1 ./...

echo "== go test -race (server, pipeline, CLI)"
go test -count=1 -race ./internal/server/... ./internal/pipeline/... ./cmd/...

echo "== fuzz (${LOUPE_FUZZTIME:=10s} each)"
# Every Fuzz target in the tree, one at a time (go test allows one -fuzz per run).
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    echo "-- $pkg $target"
    if ! out=$(go test -run='^$' -fuzz="^${target}\$" -fuzztime="$LOUPE_FUZZTIME" "$pkg" 2>&1); then
      echo "$out" | grep -v '^fuzz: elapsed' | tail -40
      exit 1
    fi
  done
done
echo "== all tests passed"
