#!/usr/bin/env bash
# Ensures a local PostgreSQL for development and tests is running, and prints its URL.
#
# Usage: scripts/ensure-postgres.sh [DIR] [PORT]
#   DIR   where the cluster lives (default: ./.pg): DIR/data, DIR/run (socket), DIR/postgres.log
#   PORT  the TCP port on 127.0.0.1 (default: the one DIR used before, else a free one)
#
# Prints only the URL on stdout (postgres://nexus@127.0.0.1:PORT/nexus), so
#   export NEXUS_TEST_POSTGRES_URL="$(scripts/ensure-postgres.sh)"
# works; progress goes to stderr. Idempotent: when the cluster already runs it just prints the URL.
#
# - Installs PostgreSQL from Debian packages (apt-get) if no server binaries are found.
# - Initializes the cluster with trust authentication, listening on loopback only: it is for
#   development and tests, never for anything reachable from elsewhere.
# - PostgreSQL refuses to run as root: as root, the cluster belongs to the `postgres` user (created
#   by the Debian package; created here if missing) and the server runs as that user.
# Stop it with scripts/stop-postgres.sh [DIR].
set -euo pipefail

DIR="${1:-./.pg}"
REQUESTED_PORT="${2:-}"
DB_USER=nexus
DB_NAME=nexus

log() { printf 'ensure-postgres: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"
DATA="$DIR/data"
RUN="$DIR/run"
LOG="$DIR/postgres.log"
PORT_FILE="$DIR/port"

# The directory of the server binaries (initdb, pg_ctl, postgres), installing them if needed.
find_bindir() {
    local candidate
    if candidate="$(command -v pg_ctl 2>/dev/null)" && [ -x "$(dirname "$candidate")/initdb" ]; then
        dirname "$(readlink -f "$candidate")"
        return 0
    fi
    # Debian keeps them out of PATH, per major version; take the newest.
    candidate="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    if [ -n "$candidate" ] && [ -x "$candidate/pg_ctl" ] && [ -x "$candidate/initdb" ]; then
        echo "$candidate"
        return 0
    fi
    return 1
}

if ! BIN="$(find_bindir)"; then
    [ "$(id -u)" -eq 0 ] || die "PostgreSQL is not installed; run as root to install it, or install the Debian package postgresql"
    command -v apt-get >/dev/null || die "PostgreSQL is not installed and apt-get is not available"
    log "installing PostgreSQL from Debian packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends postgresql postgresql-client >&2
    BIN="$(find_bindir)" || die "PostgreSQL was installed but its binaries were not found"
fi
PSQL="$BIN/psql"
[ -x "$PSQL" ] || PSQL="$(command -v psql)" || die "psql not found"

# Who runs the server: the current user, or a non-root one when we are root.
RUN_AS=()
if [ "$(id -u)" -eq 0 ]; then
    if ! id -u postgres >/dev/null 2>&1; then
        log "creating system user postgres"
        useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
    fi
    chown postgres: "$DIR"
    mkdir -p "$RUN" && chown postgres: "$RUN"
    RUN_AS=(runuser -u postgres --)
    "${RUN_AS[@]}" test -w "$DIR" ||
        die "user postgres cannot write to $DIR (a parent directory is not accessible to it); choose another DIR"
else
    mkdir -p "$RUN"
fi
as_owner() { "${RUN_AS[@]}" "$@"; }

url() { printf 'postgres://%s@127.0.0.1:%s/%s\n' "$DB_USER" "$1" "$DB_NAME"; }

# Creates the database if it does not exist yet.
ensure_database() {
    local port="$1"
    if [ "$("$PSQL" -h 127.0.0.1 -p "$port" -U "$DB_USER" -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" != 1 ]; then
        log "creating database $DB_NAME"
        "$PSQL" -h 127.0.0.1 -p "$port" -U "$DB_USER" -d postgres -qc "CREATE DATABASE $DB_NAME" >&2
    fi
}

# Already running: print the URL and stop here.
if [ -f "$DATA/postmaster.pid" ] && [ -f "$PORT_FILE" ] && as_owner "$BIN/pg_ctl" status -D "$DATA" >/dev/null 2>&1; then
    PORT="$(cat "$PORT_FILE")"
    if [ -n "$REQUESTED_PORT" ] && [ "$REQUESTED_PORT" != "$PORT" ]; then
        die "the cluster in $DIR already runs on port $PORT, not $REQUESTED_PORT; stop it first"
    fi
    if "$PSQL" -h 127.0.0.1 -p "$PORT" -U "$DB_USER" -d postgres -tAc 'SELECT 1' >/dev/null 2>&1; then
        ensure_database "$PORT"
        url "$PORT"
        exit 0
    fi
    die "the cluster in $DIR runs but does not answer on port $PORT; see $LOG"
fi

if [ ! -f "$DATA/PG_VERSION" ]; then
    log "initializing a cluster in $DATA"
    mkdir -p "$DATA"
    [ "${#RUN_AS[@]}" -eq 0 ] || chown postgres: "$DATA"
    chmod 700 "$DATA"
    as_owner "$BIN/initdb" -D "$DATA" -U "$DB_USER" --auth=trust --encoding=UTF8 --no-locale >/dev/null
fi

# A free port: the requested one, the one used before, or one the kernel hands out.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null && return 0
    local port
    for port in $(seq 54320 54420); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    return 1
}
if [ -n "$REQUESTED_PORT" ]; then
    PORT="$REQUESTED_PORT"
elif [ -f "$PORT_FILE" ] && ! (exec 3<>"/dev/tcp/127.0.0.1/$(cat "$PORT_FILE")") 2>/dev/null; then
    PORT="$(cat "$PORT_FILE")"
else
    PORT="$(free_port)" || die "no free port found"
fi

log "starting PostgreSQL on 127.0.0.1:$PORT (log: $LOG)"
touch "$LOG"
[ "${#RUN_AS[@]}" -eq 0 ] || chown postgres: "$LOG"
if ! as_owner "$BIN/pg_ctl" start -D "$DATA" -l "$LOG" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -k $RUN -c max_connections=200" >/dev/null; then
    tail -n 20 "$LOG" >&2 || true
    die "PostgreSQL did not start"
fi
echo "$PORT" >"$PORT_FILE"
ensure_database "$PORT"
url "$PORT"
