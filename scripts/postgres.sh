#!/usr/bin/env bash
# A local PostgreSQL for the score store's tests (Debian/Ubuntu, run as root).
#
# Installs PostgreSQL when it is missing, starts the newest installed cluster, creates role
# `retain` (password `retain`) and database `retain_test` when they are missing, checks that the
# role can log in over TCP, and prints the URL on stdout (everything else goes to stderr):
#
#   export RETAIN_TEST_POSTGRES_URL="$(scripts/postgres.sh)"
#
# Idempotent: already installed, already running, role or database already there are all fine.
# Exits non-zero, saying why on stderr, when it cannot (not root, no apt-get, the server does
# not start).
set -euo pipefail

ROLE=retain
PASSWORD=retain
DATABASE=retain_test
HOST=127.0.0.1

say() { echo "postgres.sh: $*" >&2; }
die() { say "$*"; exit 1; }

url_for() { echo "postgresql+psycopg://${ROLE}:${PASSWORD}@${HOST}:$1/${DATABASE}"; }

can_login() {  # port -> 0 when retain can already log in to retain_test over TCP
    command -v psql >/dev/null 2>&1 || return 1
    PGPASSWORD="$PASSWORD" PGCONNECT_TIMEOUT=3 psql -h "$HOST" -p "$1" -U "$ROLE" -d "$DATABASE" \
        -tAc 'SELECT 1' >/dev/null 2>&1
}

if [ "$(id -u)" -ne 0 ]; then
    # Nothing to do if someone already set it up; otherwise we need root.
    if can_login "${PGPORT:-5432}"; then url_for "${PGPORT:-5432}"; exit 0; fi
    die "must run as root to install and start PostgreSQL (uid $(id -u)); or set RETAIN_TEST_POSTGRES_URL to a server you have"
fi

newest_version() {
    [ -d /usr/lib/postgresql ] || return 0
    for dir in /usr/lib/postgresql/*/bin/postgres; do
        [ -x "$dir" ] && basename "$(dirname "$(dirname "$dir")")"
    done | sort -V | tail -n 1
}

VERSION="$(newest_version)"
if [ -z "$VERSION" ] || ! command -v pg_ctlcluster >/dev/null 2>&1; then
    command -v apt-get >/dev/null 2>&1 || die "PostgreSQL is not installed and there is no apt-get to install it"
    say "installing PostgreSQL (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2 || die "apt-get update failed"
    apt-get install -y -q postgresql >&2 || die "apt-get install postgresql failed"
    VERSION="$(newest_version)"
    [ -n "$VERSION" ] || die "PostgreSQL was installed but no server binary was found under /usr/lib/postgresql"
fi

# The cluster of that version (Debian creates `main`; some images skip it).
CLUSTER="$(pg_lsclusters --no-header 2>/dev/null | awk -v v="$VERSION" '$1 == v {print $2; exit}')"
if [ -z "$CLUSTER" ]; then
    say "creating cluster $VERSION/main"
    pg_createcluster "$VERSION" main >&2 || die "pg_createcluster $VERSION main failed"
    CLUSTER=main
fi
PORT="$(pg_lsclusters --no-header | awk -v v="$VERSION" -v c="$CLUSTER" '$1 == v && $2 == c {print $3}')"
STATUS="$(pg_lsclusters --no-header | awk -v v="$VERSION" -v c="$CLUSTER" '$1 == v && $2 == c {print $4}')"

if [ "$STATUS" != "online" ]; then
    say "starting cluster $VERSION/$CLUSTER on port $PORT"
    pg_ctlcluster "$VERSION" "$CLUSTER" start >&2 \
        || die "pg_ctlcluster $VERSION $CLUSTER start failed; see /var/log/postgresql/postgresql-$VERSION-$CLUSTER.log"
fi

for _ in $(seq 1 30); do
    pg_isready -q -h "$HOST" -p "$PORT" && break
    sleep 1
done
pg_isready -q -h "$HOST" -p "$PORT" || die "PostgreSQL $VERSION/$CLUSTER does not accept connections on $HOST:$PORT"

as_postgres() { runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$PORT" "$@"; }

if [ "$(as_postgres -tAc "SELECT 1 FROM pg_roles WHERE rolname = '$ROLE'")" != "1" ]; then
    say "creating role $ROLE"
    as_postgres -c "CREATE ROLE $ROLE LOGIN PASSWORD '$PASSWORD'" >&2
else
    # Make sure the documented password and login still hold.
    as_postgres -c "ALTER ROLE $ROLE LOGIN PASSWORD '$PASSWORD'" >&2
fi
if [ "$(as_postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DATABASE'")" != "1" ]; then
    say "creating database $DATABASE"
    as_postgres -c "CREATE DATABASE $DATABASE OWNER $ROLE" >&2
fi

can_login "$PORT" || die "role $ROLE cannot log in to $DATABASE on $HOST:$PORT with its password (check pg_hba.conf)"
url_for "$PORT"
