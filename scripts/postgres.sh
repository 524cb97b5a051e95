#!/usr/bin/env bash
# Run a command next to a throwaway PostgreSQL server, for the store and run-database tests.
#
#   scripts/postgres.sh COMMAND [ARGS...]
#
# The command sees PERSONAHUB_TEST_POSTGRES_URL (postgresql+psycopg://user:pw@127.0.0.1:port/db).
# - Already set: the command runs against that server; nothing is started.
# - Otherwise: the Debian `postgresql` package is installed when missing (root with apt-get only),
#   a cluster is initialised in a temporary folder (as the postgres user when we are root, since
#   initdb refuses root), started on 127.0.0.1 at a free port with a random password, and stopped
#   and deleted when the command ends.
# - No PostgreSQL and no way to install it: the command runs without the variable, so the
#   PostgreSQL tests skip (and fail under CI=true, as the browser tests do).
# The command's exit status is this script's.
set -euo pipefail

if [ $# -eq 0 ]; then
  echo "usage: $0 COMMAND [ARGS...]" >&2
  exit 2
fi
if [ -n "${PERSONAHUB_TEST_POSTGRES_URL:-}" ]; then
  exec "$@"
fi

find_bindir() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$dir" ] && [ -x "$dir/initdb" ]; then
    echo "$dir"
  elif command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(command -v initdb)"
  fi
}

bindir=$(find_bindir)
if [ -z "$bindir" ] && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing postgresql (store and run-database tests on PostgreSQL)" >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  bindir=$(find_bindir)
fi
if [ -z "$bindir" ]; then
  echo "note: PostgreSQL is not installed; the PostgreSQL tests will be skipped" >&2
  exec "$@"
fi

# As root, the server runs as the postgres user the Debian package creates.
as_owner=()
if [ "$(id -u)" = "0" ]; then
  if ! id postgres >/dev/null 2>&1; then
    echo "note: no postgres user to run PostgreSQL as; the PostgreSQL tests will be skipped" >&2
    exec "$@"
  fi
  as_owner=(runuser -u postgres --)
fi

# As root the folder must be reachable by the postgres user: /tmp, not a private TMPDIR.
if [ "$(id -u)" = "0" ]; then tmp=/tmp; else tmp=${TMPDIR:-/tmp}; fi
root=$(mktemp -d "$tmp/persona-sandbox-pg.XXXXXX")
started=0
cleanup() {
  if [ "$started" = "1" ]; then
    (cd / && "${as_owner[@]}" "$bindir/pg_ctl" -D "$root/data" -m immediate -w stop >/dev/null 2>&1) \
      || true
  fi
  rm -rf "$root"
}
trap cleanup EXIT
if [ "$(id -u)" = "0" ]; then
  chown postgres: "$root"
fi

# A free loopback port now; a race with another process binding it is possible but rare, and
# would show as a failed start below.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' \
  2>/dev/null || echo 54329)
password=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')

(cd / && "${as_owner[@]}" "$bindir/initdb" -D "$root/data" -U postgres -E UTF8 --no-locale \
  --auth-local=trust --auth-host=scram-sha-256 >"$root/initdb.log" 2>&1) || {
  cat "$root/initdb.log" >&2
  exit 1
}
# Durability is not wanted for a test server: without fsync it is much faster.
options="-c listen_addresses=127.0.0.1 -p $port -k $root -c fsync=off"
options+=" -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
(cd / && "${as_owner[@]}" "$bindir/pg_ctl" -D "$root/data" -l "$root/server.log" -o "$options" \
  -w -t 60 start >/dev/null) || {
  cat "$root/server.log" >&2
  exit 1
}
started=1
"$bindir/psql" -q -h "$root" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
  -c "CREATE ROLE personahub LOGIN CREATEDB PASSWORD '$password'" \
  -c "CREATE DATABASE personahub_test OWNER personahub" >/dev/null

export PERSONAHUB_TEST_POSTGRES_URL="postgresql+psycopg://personahub:$password@127.0.0.1:$port/personahub_test"
echo "PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port" >&2
set +e
"$@"
status=$?
set -e
exit $status
