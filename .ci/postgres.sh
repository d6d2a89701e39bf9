#!/usr/bin/env bash
# Start a private PostgreSQL server for the tests, listening on 127.0.0.1 only, and print its URL
# (everything else goes to stderr). Idempotent: installs Debian's postgresql package when no server
# binaries are present, and reuses the server a previous run started. Touches no other cluster.
set -euo pipefail
exec 3>&1 1>&2

PGROOT=${RECURSA_PG_DIR:-/var/tmp/recursa-postgres}
ROLE=recursa
PASSWORD=recursa  # a throwaway server for tests, reachable from this machine only
DATABASE=recursa_test

if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq postgresql
fi
BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)

# PostgreSQL refuses to run as root: as root, run it as the postgres user.
if [ "$(id -u)" = 0 ]; then
    install -d -o postgres -g postgres -m 700 "$PGROOT"
    as_owner() { runuser -u postgres -- "$@"; }
else
    install -d -m 700 "$PGROOT"
    as_owner() { "$@"; }
fi
cd "$PGROOT"
DATA=$PGROOT/data

if [ ! -f "$DATA/PG_VERSION" ]; then
    as_owner "$BIN/initdb" -D "$DATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 >/dev/null
fi

port_in_use() { (exec 9<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null; then
    PORT=$(cat "$PGROOT/port")
else
    PORT=${RECURSA_PG_PORT:-55432}
    while port_in_use "$PORT"; do PORT=$((PORT + 1)); done
    # The server must not inherit fd 3 (the caller's stdout): `$(.ci/postgres.sh)` would wait for it forever.
    as_owner "$BIN/pg_ctl" -D "$DATA" -l "$PGROOT/server.log" -w start \
        -o "-c listen_addresses=127.0.0.1 -p $PORT -c unix_socket_directories=$PGROOT" 3>&-
    echo "$PORT" >"$PGROOT/port"
fi

admin() { as_owner "$BIN/psql" -h "$PGROOT" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qtAc "$1"; }
if [ -z "$(admin "SELECT 1 FROM pg_roles WHERE rolname = '$ROLE'")" ]; then
    admin "CREATE ROLE $ROLE LOGIN PASSWORD '$PASSWORD'"
fi
if [ -z "$(admin "SELECT 1 FROM pg_database WHERE datname = '$DATABASE'")" ]; then
    admin "CREATE DATABASE $DATABASE OWNER $ROLE"
fi

echo "postgresql://$ROLE:$PASSWORD@127.0.0.1:$PORT/$DATABASE" >&3
