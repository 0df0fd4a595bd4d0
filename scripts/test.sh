#!/usr/bin/env bash
# The whole test suite: vet, all tests, the race detector on the server and
# CLI, and a short run of every fuzz target. Run from the repository root.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== go vet"
go vet ./...

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
    go test -run='^$' -fuzz="^${target}\$" -fuzztime="$LOUPE_FUZZTIME" "$pkg" >/dev/null
  done
done
echo "== all tests passed"
