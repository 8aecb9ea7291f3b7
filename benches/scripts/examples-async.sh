#!/usr/bin/env bash
# Async round trips as a user runs the examples: the release `fraud-handler --check-delay-ms 0`
# and `payments --count COUNT --concurrency 256` (a load run: start -> 201 -> completion by
# callback), both on their default SQLite stores (each commit flushed to disk), then both with
# `--store none`, alternating, in the same run. The rate is COUNT over the wall time of the
# payments process (its start-up included). Prints a Markdown table and the ratio of each pair.
# With BASELINE=DIR (a directory holding another build's fraud-handler and payments binaries),
# each round also runs that build on its SQLite stores, so that two builds are compared in the
# same run.
# Usage: [BASELINE=DIR] bash benches/scripts/examples-async.sh [ROUNDS=3] [COUNT=40000]
set -euo pipefail
cd "$(dirname "$0")/../.."

rounds=${1:-3}
count=${2:-40000}

cargo build --release -q -p nexus-examples --bin fraud-handler --bin payments

work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

baseline=${BASELINE:-}
if [ -n "$baseline" ] && { [ ! -x "$baseline/fraud-handler" ] || [ ! -x "$baseline/payments" ]; }; then
  echo "BASELINE=$baseline holds no fraud-handler and payments binaries" >&2
  exit 1
fi

run() { # label store-kind bin-dir round
  local label=$1 kind=$2 bin=$3 round=$4
  local port=$((20000 + RANDOM % 20000)) callback=$((40000 + RANDOM % 20000))
  local handler_store=none payments_store=none
  if [ "$kind" = sqlite ]; then
    rm -rf "$work/data"
    handler_store="$work/data/fraud-handler.sqlite3"
    payments_store="$work/data/payments.sqlite3"
  fi
  RUST_LOG=warn "$bin/fraud-handler" --listen "127.0.0.1:$port" --check-delay-ms 0 \
    --store "$handler_store" >"$work/handler.log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$port/" && break || sleep 0.1
  done
  local start end summary
  start=$(date +%s.%N)
  summary=$(RUST_LOG=warn "$bin/payments" --endpoint "http://127.0.0.1:$port" \
    --callback-listen "127.0.0.1:$callback" --store "$payments_store" \
    --count "$count" --concurrency 256 --run-id "bench-$round-$label-$kind" 2>"$work/payments.log" \
    | tail -1)
  end=$(date +%s.%N)
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  local succeeded
  succeeded=$(echo "$summary" | sed -n 's/.*"succeeded":\([0-9]*\).*/\1/p')
  if [ "$succeeded" != "$count" ]; then
    echo "$label ($kind): not every operation succeeded: $summary" >&2
    tail -5 "$work/payments.log" >&2
    exit 1
  fi
  python3 -c "print(round($count / ($end - $start)))"
}

echo "Async round trips with the examples: fraud-handler --check-delay-ms 0 + payments --count $count --concurrency 256"
echo
echo "| round | build | stores | ops/s |"
echo "|---:|---|---|---:|"
ratios=()
for round in $(seq "$rounds"); do
  sqlite=$(run this sqlite target/release "$round")
  echo "| $round | this | SQLite | $sqlite |"
  none=$(run this none target/release "$round")
  echo "| $round | this | none | $none |"
  ratios+=("$(python3 -c "print(f'{$sqlite / $none:.2f}')")")
  if [ -n "$baseline" ]; then
    echo "| $round | baseline | SQLite | $(run baseline sqlite "$baseline" "$round") |"
  fi
done
echo
echo "SQLite / none, round by round: ${ratios[*]}"
