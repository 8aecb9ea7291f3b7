#!/usr/bin/env bash
# Runs every benchmark of BENCHMARKS.md and prints its tables in Markdown, with the machine and
# the load it ran under. Takes about 15 minutes (Temporal's first run installs it).
#
# Usage: bash benches/scripts/all.sh [--no-temporal] > results.md
# Environment: SQLITE_DIR, the data directory of the async round trip's SQLite stores
# (default target/bench-sqlite; its two files are made afresh for each measurement).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
temporal=1
[ "${1:-}" = --no-temporal ] && temporal=0

cargo build --release -p nexus-benches --bin nexus-bench >&2
bench=target/release/nexus-bench

echo "## Machine"
echo
echo "- CPUs: $(nproc) ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'))"
echo "- memory: $(free -h | awk '/^Mem:/ { print $2 }')"
echo "- $(rustc --version)"
echo "- load when started: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

echo "## In-process sync call"
echo
"$bench" inprocess --rounds 31 --calls 20000
echo

echo "## HTTP sync operation"
echo
"$bench" http --rounds 5 --warmup 1 --duration 4 2>/dev/null
echo

echo "## HTTP sync operation under wrk (bare endpoint, HandlerServer, fraud-handler)"
echo
bash benches/scripts/http-wrk.sh 3 5 64
echo

echo "## Sync starts with deduplication (SQLite store vs none, wrk)"
echo
bash benches/scripts/sync-dedup.sh 3 10 64
echo

echo "## Async round trip and memory per pending operation"
echo
# With SQLite stores on both sides (the target's setting), then without a store.
"$bench" async --rounds 5 --warmup 1 --duration 4 --pending 100000 \
    --store "sqlite:${SQLITE_DIR:-target/bench-sqlite}" 2>/dev/null
echo
"$bench" async --rounds 5 --warmup 1 --duration 4 --pending 100000 --store memory 2>/dev/null
echo

echo "## Lease renewal with 100,000 running operations (SQLite)"
echo
"$bench" lease-renewal --operations 100000 --renewals 5
echo

echo "## Async round trips with the examples (fraud-handler + payments)"
echo
bash benches/scripts/examples-async.sh 3 40000
echo

if [ "$temporal" = 1 ]; then
    echo "## Against Temporal"
    echo
    bash benches/scripts/temporal.sh --rounds 3 --warmup 1 --duration 4 2>/dev/null
    echo
fi

echo "## Macro cost"
echo
RUNS=${RUNS:-7} bash benches/scripts/macro-cost.sh 2>/dev/null
echo

echo "## Quick mode"
echo
echo '```'
"$bench" quick
echo '```'
echo
echo "- load when finished: $(cut -d' ' -f1-3 /proc/loadavg)"
