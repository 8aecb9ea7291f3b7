#!/usr/bin/env bash
# Stops the PostgreSQL that scripts/ensure-postgres.sh started.
#
# Usage: scripts/stop-postgres.sh [DIR]     (default DIR: ./.pg)
#        scripts/stop-postgres.sh --purge [DIR]   also deletes the cluster's files
set -euo pipefail

PURGE=false
if [ "${1:-}" = --purge ]; then
    PURGE=true
    shift
fi
DIR="${1:-./.pg}"
log() { printf 'stop-postgres: %s\n' "$*" >&2; }

if [ ! -d "$DIR" ]; then
    log "no cluster in $DIR"
    exit 0
fi
DIR="$(cd "$DIR" && pwd)"
DATA="$DIR/data"

BIN=""
if candidate="$(command -v pg_ctl 2>/dev/null)"; then
    BIN="$(dirname "$(readlink -f "$candidate")")"
else
    BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
fi

RUN_AS=()
if [ "$(id -u)" -eq 0 ] && [ -d "$DATA" ]; then
    RUN_AS=(runuser -u "$(stat -c %U "$DATA")" --)
fi

if [ -f "$DATA/postmaster.pid" ] && [ -n "$BIN" ] && "${RUN_AS[@]}" "$BIN/pg_ctl" status -D "$DATA" >/dev/null 2>&1; then
    "${RUN_AS[@]}" "$BIN/pg_ctl" stop -D "$DATA" -m fast -w >/dev/null
    log "stopped the cluster in $DIR"
else
    log "the cluster in $DIR is not running"
fi
if $PURGE; then
    rm -rf "$DIR"
    log "deleted $DIR"
fi
