#!/usr/bin/env bash
# ctest fixture: a throwaway PostgreSQL 15 cluster for the PgLedger tests and the bench.
#   pg_fixture.sh start DIR PORT   -> cluster in DIR/data, listening on 127.0.0.1:PORT only,
#                                     trust auth, fsync on, database "skillcard", user "postgres"
#   pg_fixture.sh stop DIR         -> stops it (fast shutdown) and removes DIR/data
# initdb refuses to run as root, so as root the cluster belongs to the "postgres" user (runuser);
# as anyone else it belongs to that user. The tests connect with
#   host=127.0.0.1 port=PORT dbname=skillcard user=postgres
set -euo pipefail
action=${1:-}
dir=${2:-}
bin=/usr/lib/postgresql/15/bin
if [ -z "$dir" ]; then
  echo "usage: $0 start DIR PORT | stop DIR" >&2
  exit 2
fi
# The server runs with its data directory as its working directory, so a relative DIR would
# point its socket and lock files nowhere (scripts/test.sh passes build/ci/bench-pg).
case $dir in
  /*) ;;
  *) dir=$PWD/$dir ;;
esac
data=$dir/data

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

case $action in
  start)
    port=${3:?usage: $0 start DIR PORT}
    [ -x "$bin/initdb" ] || { echo "pg_fixture: $bin/initdb missing (apt-get install postgresql-15)" >&2; exit 1; }
    "$0" stop "$dir" >/dev/null 2>&1 || true
    if ss -ltn "( sport = :$port )" 2>/dev/null | grep -q LISTEN; then
      echo "pg_fixture: port $port is taken (another test cluster, or something else); stop it or pick another port" >&2
      exit 1
    fi
    mkdir -p "$dir"
    rm -rf "$data"
    mkdir -p "$data"
    if [ "$(id -u)" -eq 0 ]; then chown postgres: "$dir" "$data"; fi
    chmod 700 "$data"
    as_owner "$bin/initdb" -D "$data" -A trust -U postgres -E UTF8 --no-locale > "$dir/initdb.log" 2>&1 || {
      echo "pg_fixture: initdb failed:" >&2
      cat "$dir/initdb.log" >&2
      exit 1
    }
    # Only 127.0.0.1 on our port; no Unix socket outside DIR; fsync stays on (the ledger's
    # durability is what is tested).
    as_owner "$bin/pg_ctl" -D "$data" -l "$dir/postgres.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories='$data' -c fsync=on \
          -c synchronous_commit=on -c max_connections=200" start > /dev/null || {
      echo "pg_fixture: the server did not start; its log:" >&2
      cat "$dir/postgres.log" >&2
      exit 1
    }
    as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres skillcard
    echo "pg_fixture: PostgreSQL 15 up on 127.0.0.1:$port, data in $data, database skillcard"
    ;;
  stop)
    if [ -f "$data/postmaster.pid" ]; then
      as_owner "$bin/pg_ctl" -D "$data" -m fast -w -t 60 stop > /dev/null || true
      echo "pg_fixture: stopped the cluster in $data"
    fi
    rm -rf "$data"
    ;;
  *)
    echo "usage: $0 start DIR PORT | stop DIR" >&2
    exit 2
    ;;
esac
