#!/usr/bin/env bash
# The HTTP server measured with an external load generator (wrk, installed from Debian if
# missing): `getQuickScore` on the bare axum endpoint, on nexus-rs's HandlerServer
# (`nexus-bench serve`, 2 worker threads each), and on the example `fraud-handler` with its
# default settings (its SQLite store in a scratch directory, its default log level), alternating,
# in the same run. Prints a Markdown table and each server's ratio to the bare endpoint's
# median throughput.
# With BASELINE=DIR (a directory holding another build's `nexus-bench` and `fraud-handler`),
# each round also measures that build's HandlerServer and example, so that two builds are
# compared in the same run.
# Usage: [BASELINE=DIR] bash benches/scripts/http-wrk.sh [ROUNDS=3] [SECONDS=10] [CONNECTIONS=64]
set -euo pipefail
cd "$(dirname "$0")/../.."

rounds=${1:-3}
secs=${2:-10}
conns=${3:-64}

source benches/scripts/debian.sh
need wrk
# Built with the benchmarks, as benches/scripts/all.sh builds them (the same features).
cargo build --release -q -p nexus-examples --bin fraud-handler -p nexus-benches --bin nexus-bench

baseline=${BASELINE:-}
if [ -n "$baseline" ] && { ! [ -x "$baseline/nexus-bench" ] || ! [ -x "$baseline/fraud-handler" ]; }; then
  echo "BASELINE=$baseline does not hold the executables nexus-bench and fraud-handler" >&2
  exit 1
fi

work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT


port=$((20000 + RANDOM % 20000))
wait_up() {
  for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$port/" && return 0 || sleep 0.1
  done
  echo "the server did not come up on port $port" >&2
  return 1
}
measure() { # label
  local line
  line=$(wrk -t2 -c"$conns" -d"${secs}s" -s benches/scripts/quick-score.lua "http://127.0.0.1:$port" | grep '^RESULT')
  read -r _ requests micros p50 errors <<<"$line"
  local rate
  rate=$(awk -v r="$requests" -v u="$micros" 'BEGIN { printf "%.0f", r / (u / 1e6) }')
  echo "$1 $rate" >>"$work/rates"
  printf '| %s | %s | %s | %s |\n' "$1" "$rate" "$p50" "$errors"
}
bench_server() { # kind label [dir of the build]
  # `nexus-bench serve` runs until its stdin closes: a FIFO held open on descriptor 3.
  rm -f "$work/stdin"; mkfifo "$work/stdin"
  "${3:-./target/release}/nexus-bench" serve --kind "$1" --listen "127.0.0.1:$port" \
    <"$work/stdin" >"$work/serve.log" 2>&1 &
  local pid=$!
  exec 3>"$work/stdin"
  wait_up
  measure "$2"
  exec 3>&-
  wait "$pid" 2>/dev/null || true
}
example() { # label [dir of the build]
  rm -f "$work"/h.sqlite3*
  "${2:-./target/release}/fraud-handler" --listen "127.0.0.1:$port" --store "$work/h.sqlite3" \
    >"$work/handler.log" 2>&1 &
  local pid=$!
  wait_up
  measure "$1"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

echo "wrk -t2 -c$conns -d${secs}s, POST /fraud.v1/getQuickScore, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| server | requests/s | p50 µs | errors |"
echo "|---|---:|---:|---:|"
for _ in $(seq "$rounds"); do
  bench_server bare "bare axum endpoint"
  bench_server nexus "nexus-rs HandlerServer"
  if [ -n "$baseline" ]; then bench_server nexus "HandlerServer, baseline build" "$baseline"; fi
  example "fraud-handler (defaults)"
  if [ -n "$baseline" ]; then example "fraud-handler, baseline build" "$baseline"; fi
done
echo
awk '
  { label = $0; sub(/ [0-9]+$/, "", label); rate[label, ++n[label]] = $NF }
  END {
    k = split("bare axum endpoint|nexus-rs HandlerServer|HandlerServer, baseline build|fraud-handler (defaults)|fraud-handler, baseline build", order, "|")
    for (i = 1; i <= k; i++) {
      l = order[i]; m = n[l]
      if (!m) continue
      for (a = 1; a <= m; a++) v[a] = rate[l, a]
      for (a = 1; a <= m; a++) for (b = a + 1; b <= m; b++) if (v[b] < v[a]) { t = v[a]; v[a] = v[b]; v[b] = t }
      median[l] = (m % 2) ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2
    }
    bare = median[order[1]]
    for (i = 2; i <= k; i++)
      if (n[order[i]])
        printf "%s: median %.0f requests/s, %.2f of the bare endpoint\n", order[i], median[order[i]], median[order[i]] / bare
  }' "$work/rates"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
