#!/usr/bin/env bash
# Runs the store test suite against PostgreSQL: starts (or reuses) the local cluster of
# scripts/ensure-postgres.sh and runs the PostgreSQL store tests against it.
#
# Usage: scripts/test-store-postgres.sh [DIR]    (DIR as for ensure-postgres.sh, default ./.pg)
# With NEXUS_TEST_POSTGRES_URL already set, that database is used instead.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${NEXUS_TEST_POSTGRES_URL:-}" ]; then
    NEXUS_TEST_POSTGRES_URL="$(bash scripts/ensure-postgres.sh "${1:-./.pg}")"
    export NEXUS_TEST_POSTGRES_URL
fi
echo "store tests against $NEXUS_TEST_POSTGRES_URL" >&2
cargo test -p nexus-rpc-runtime --features postgres --test store -- postgres
