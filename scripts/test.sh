#!/usr/bin/env bash
# The whole test suite: vet, all tests (against a real PostgreSQL, a real
# VictoriaLogs and a real Ollama with a tiny generated model it starts on
# loopback), the race detector on the server, CLI
# and store, and a short run of every fuzz target. Needs Go; installs
# Debian's curl and postgresql packages when they are missing (and
# scripts/ollama.sh the headers it builds Ollama with).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== go vet"
go vet ./...

# A fresh machine has only Go and gcc: install what the test servers need.
if ! command -v curl >/dev/null || [ ! -x /usr/lib/postgresql/15/bin/pg_ctl ]; then
  echo "== installing curl and postgresql (Debian packages)"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq curl postgresql >/dev/null
  else
    sudo apt-get update -qq && sudo apt-get install -y -qq curl postgresql >/dev/null
  fi
fi

echo "== PostgreSQL, VictoriaLogs and Ollama (real servers for the store, log-store and LLM tests)"
trap 'scripts/ollama.sh stop; scripts/victorialogs.sh stop; scripts/postgres.sh stop' EXIT
LOUPE_PG_DSN=$(scripts/postgres.sh start)
export LOUPE_PG_DSN
LOUPE_VLOGS_URL=$(scripts/victorialogs.sh start)
export LOUPE_VLOGS_URL
# Ollama is built from source once per machine (cached in ~/.cache/loupe);
# if that build fails the LLM integration tests skip, said loudly here.
if scripts/ollama.sh build; then
  LOUPE_OLLAMA_URL=$(scripts/ollama.sh start)
  export LOUPE_OLLAMA_URL LOUPE_OLLAMA_MODEL=loupe-tiny
else
  echo "!! WARNING: Ollama could not be built (see above): the real-Ollama tests will skip"
fi

echo "== go test"
go test -count=1 ./...

echo "== go test -race (server, pipeline, store, jobs, LLM stage, CLI)"
go test -count=1 -race ./internal/server/... ./internal/pipeline/... ./internal/store/... ./internal/jobs/... ./internal/reason/deep/... ./internal/llm/... ./cmd/...

echo "== fuzz (${LOUPE_FUZZTIME:=10s} each)"
# Every Fuzz target in the tree, one at a time (go test allows one -fuzz per run).
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    echo "-- $pkg $target"
    # Minimisation of a new interesting input is bounded by executions: an
    # unbounded one (60 s by default) on a large input can outlast the fuzz
    # time, and go test then fails with "context deadline exceeded" though
    # nothing failed. If that still happens (no failing input written), the
    # target is run once more.
    fuzz() { go test -run='^$' -fuzz="^${target}\$" -fuzztime="$LOUPE_FUZZTIME" -fuzzminimizetime=200x "$pkg" 2>&1; }
    if ! out=$(fuzz) && { ! grep -q 'context deadline exceeded' <<<"$out" || grep -q 'Failing input written' <<<"$out" || ! out=$(fuzz); }; then
      echo "$out" | grep -v '^fuzz: elapsed' | tail -40
      exit 1
    fi
  done
done
echo "== all tests passed"
