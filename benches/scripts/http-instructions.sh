#!/usr/bin/env bash
# Instructions per HTTP request on each server, counted by callgrind: the bare axum endpoint,
# nexus-rs's HandlerServer (`nexus-bench serve`) and the example `fraud-handler` with its default
# settings (SQLite store in a scratch directory), each under valgrind while wrk sends it
# `getQuickScore` for a few seconds. The counters are zeroed once the server answers and read when
# wrk is done, so start-up is not counted; every thread of the server is. Deterministic enough to
# compare two builds whatever the machine's load (the kernel's share of a request, about two
# thirds of its CPU on loopback, is not counted: the same for every server).
# Installs valgrind and wrk from Debian when missing.
# Usage: [BASELINE=DIR] [KEEP=DIR] bash benches/scripts/http-instructions.sh [SECONDS=5]
#   BASELINE: a directory holding another build's nexus-bench and fraud-handler, measured too.
#   KEEP: a directory to keep each server's callgrind output in (LABEL.callgrind), for
#   `callgrind_annotate` (per function, `--inclusive=yes` for what each call costs).
set -euo pipefail
cd "$(dirname "$0")/../.."

secs=${1:-5}
source benches/scripts/debian.sh
need valgrind
need wrk
cargo build --release -q -p nexus-examples --bin fraud-handler -p nexus-benches --bin nexus-bench

work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

count() { # label kind dir
  local port=$((20000 + RANDOM % 20000)) out="$work/callgrind.out" pid
  rm -f "$out"* "$work"/h.sqlite3*
  if [ "$2" = example ]; then
    valgrind --tool=callgrind --callgrind-out-file="$out" "$3/fraud-handler" \
      --listen "127.0.0.1:$port" --store "$work/h.sqlite3" >"$work/server.log" 2>&1 &
    pid=$!
  else
    # `nexus-bench serve` runs until its stdin closes: a FIFO held open on descriptor 3.
    rm -f "$work/stdin"; mkfifo "$work/stdin"
    valgrind --tool=callgrind --callgrind-out-file="$out" "$3/nexus-bench" serve --kind "$2" \
      --listen "127.0.0.1:$port" <"$work/stdin" >"$work/server.log" 2>&1 &
    pid=$!
    exec 3>"$work/stdin"
  fi
  for _ in $(seq 300); do
    curl -s -o /dev/null "http://127.0.0.1:$port/" && break || sleep 0.2
  done
  callgrind_control -z "$pid" >/dev/null 2>&1
  local requests
  requests=$(wrk -t1 -c4 -d"${secs}s" -s benches/scripts/quick-score.lua "http://127.0.0.1:$port" |
    awk '/requests in/ { print $1 }')
  callgrind_control -d "$pid" >/dev/null 2>&1
  if [ "$2" = example ]; then kill -INT "$pid"; else exec 3>&-; fi
  wait "$pid" 2>/dev/null || true
  local total
  total=$(awk '/^(summary|totals):/ { print $2; exit }' "$out.1")
  if [ -n "${KEEP:-}" ]; then
    mkdir -p "$KEEP" && cp "$out.1" "$KEEP/${1//[^A-Za-z0-9]/-}.callgrind"
  fi
  printf '| %s | %s | %s |\n' "$1" "$requests" "$((total / requests))"
}

echo "| server | requests | instructions per request |"
echo "|---|---:|---:|"
count "bare axum endpoint" bare ./target/release
count "nexus-rs HandlerServer" nexus ./target/release
count "fraud-handler (defaults)" example ./target/release
if [ -n "${BASELINE:-}" ]; then
  count "HandlerServer, baseline" nexus "$BASELINE"
  count "fraud-handler, baseline" example "$BASELINE"
fi
