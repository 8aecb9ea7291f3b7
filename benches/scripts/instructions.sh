#!/usr/bin/env bash
# Instructions per in-process call, counted by callgrind: deterministic, whatever the machine load,
# so it compares two builds exactly. Counts N and 2N calls and divides the difference by N, which
# cancels set-up and tear-down.
# Installs valgrind from Debian when missing, and builds nexus-bench when BINARY is absent.
# Usage: benches/scripts/instructions.sh [BINARY] [VARIANT: awaited|handle|direct] [N]
set -euo pipefail
bin=${1:-target/release/nexus-bench}
variant=${2:-awaited}
n=${3:-2000}

source "$(dirname "$0")/debian.sh"
need valgrind
if [ ! -x "$bin" ]; then
  cargo build --release -q -p nexus-benches --bin nexus-bench
fi
count() {
    local out
    out=$(mktemp)
    valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" spin --variant "$variant" --calls "$1" >/dev/null 2>&1
    callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }'
    rm -f "$out"
}
one=$(count "$n")
two=$(count $((2 * n)))
echo "$variant: $(( (two - one) / n )) instructions per call"
