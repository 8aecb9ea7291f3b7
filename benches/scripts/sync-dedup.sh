#!/usr/bin/env bash
# Sync starts with deduplication, measured with an external load generator (wrk, installed from
# Debian if missing): `getQuickScore` with a unique Nexus-Request-Id per request, 64 connections,
# against the release `fraud-handler` on its default SQLite store (answers flushed to disk), and
# against the same handler with `--store none`, alternating, in the same run. Prints a Markdown table and the ratio.
# With BASELINE=PATH (another build's fraud-handler binary), each round also measures that build
# on its SQLite store, so that two builds are compared in the same run.
# Usage: [BASELINE=PATH] bash benches/scripts/sync-dedup.sh [ROUNDS=3] [SECONDS=10] [CONNECTIONS=64]
set -euo pipefail
cd "$(dirname "$0")/../.."

rounds=${1:-3}
secs=${2:-10}
conns=${3:-64}

source benches/scripts/debian.sh
need wrk
# Built with the benchmarks, as benches/scripts/all.sh builds them (the same features).
cargo build --release -q -p nexus-examples --bin fraud-handler --bin payments -p nexus-benches --bin nexus-bench

work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

# A unique request id per request: the thread's number and a counter.
cat > "$work/dedup.lua" <<'LUA'
local counter = 0
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function request()
  counter = counter + 1
  return wrk.format("POST", "/fraud.v1/getQuickScore", {
    ["Content-Type"] = "application/json",
    ["Nexus-Request-Id"] = string.format("bench-%d-%d-%d", tid, counter, os.time()),
  }, '{"userId":"user-ada"}')
end
function done(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %d\n", summary.requests, summary.duration,
    latency:percentile(50), summary.errors.status + summary.errors.connect
      + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA

port=$((20000 + RANDOM % 20000))
baseline=${BASELINE:-}
if [ -n "$baseline" ] && [ ! -x "$baseline" ]; then
  echo "BASELINE=$baseline is not an executable" >&2
  exit 1
fi
run() { # store label [binary]
  local store=$1 label=$2 binary=${3:-./target/release/fraud-handler}
  rm -f "$work"/h.sqlite3*
  RUST_LOG=warn "$binary" --listen "127.0.0.1:$port" --store "$store" \
    >"$work/handler.log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$port/" && break || sleep 0.1
  done
  local line
  line=$(wrk -t2 -c"$conns" -d"${secs}s" -s "$work/dedup.lua" "http://127.0.0.1:$port" | grep '^RESULT')
  kill "$pid"; wait "$pid" 2>/dev/null || true
  read -r _ requests micros p50 errors <<<"$line"
  awk -v l="$label" -v r="$requests" -v u="$micros" -v p="$p50" -v e="$errors" \
    'BEGIN { printf "| %s | %.0f | %d | %d |\n", l, r / (u / 1e6), p, e }'
}

echo "wrk -t2 -c$conns -d${secs}s, unique Nexus-Request-Id per request, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| fraud-handler store | requests/s | p50 µs | errors |"
echo "|---|---:|---:|---:|"
for _ in $(seq "$rounds"); do
  run "$work/h.sqlite3" "SQLite (default durability)"
  if [ -n "$baseline" ]; then
    run "$work/h.sqlite3" "SQLite, baseline build" "$baseline"
  fi
  run none "none"
done
