#!/usr/bin/env bash
# Contract evolution: each contract under contracts/ keeps its last released definitions in
# released/; every one is compared with the current definition by `nexus definition diff`, and a
# breaking change fails unless the service's versioned name changed (fraud.v1 -> fraud.v2: the
# diff reports a new version, which callers adopt on purpose).
#
# The current definition of released/NAME.nexusrpc.json is NAME.nexusrpc.json beside released/,
# or, when that file is gone (the service moved to a new versioned name), every current
# definition of the contract merged.
#
# To release: copy the current definition into released/ and commit it.
# Usage: bash scripts/check-contracts.sh [path/to/nexus]
set -euo pipefail
cd "$(dirname "$0")/.."
NEXUS=${1:-target/debug/nexus}
status=0
found=0
for released in contracts/*/released/*.nexusrpc.json; do
  [ -e "$released" ] || continue
  found=$((found + 1))
  contract=$(dirname "$(dirname "$released")")
  name=$(basename "$released")
  current=$contract/$name
  if [ ! -e "$current" ]; then
    current=$(mktemp "${TMPDIR:-/tmp}/nexus-contract.XXXXXX.json")
    python3 - "$contract" > "$current" <<'PY'
import glob, json, sys
merged = {"nexusrpc": "1.0.0", "services": {}, "types": {}}
for path in sorted(glob.glob(sys.argv[1] + "/*.nexusrpc.json")):
    doc = json.load(open(path))
    merged["services"].update(doc.get("services", {}))
    merged["types"].update(doc.get("types", {}))
print(json.dumps(merged))
PY
  fi
  echo "--- $released -> $current"
  if ! "$NEXUS" definition diff "$released" "$current"; then
    echo "FAIL: $current breaks the callers of $released; keep it compatible, or release it under a new versioned name (such as .v2)"
    status=1
  fi
  if [ "$current" != "$contract/$name" ]; then rm -f "$current"; fi
done
if [ "$found" = 0 ]; then
  echo "no released definitions under contracts/*/released/"
fi
exit "$status"
