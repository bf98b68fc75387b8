#!/bin/sh
# The entrypoint of the e2e postgres image: the part of the official
# image's contract Compose files rely on. On an empty data directory it runs
# initdb for POSTGRES_USER (default postgres) with POSTGRES_PASSWORD,
# creates POSTGRES_DB, and runs /docker-entrypoint-initdb.d/*.sql and *.sh;
# then it runs postgres as the postgres user, listening on every address.
set -eu
bin=$(ls -d /usr/lib/postgresql/*/bin | tail -n 1)
export PATH="$bin:$PATH"
PGDATA=${PGDATA:-/var/lib/postgresql/data}
export PGDATA

if [ "$#" -eq 0 ] || [ "$1" = postgres ]; then
  [ "$#" -gt 0 ] && shift
  if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" /run/postgresql
    chown -R postgres:postgres "$PGDATA" /run/postgresql
    chmod 700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" postgres "$@"
  fi
  user=${POSTGRES_USER:-postgres}
  db=${POSTGRES_DB:-$user}
  if [ ! -s "$PGDATA/PG_VERSION" ]; then
    pw=$(mktemp)
    printf '%s\n' "${POSTGRES_PASSWORD:-}" >"$pw"
    initdb -D "$PGDATA" --username="$user" --pwfile="$pw" --encoding=UTF8 --locale=C.UTF-8 --auth-local=trust >/dev/null
    rm -f "$pw"
    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
    if [ "$db" != postgres ]; then
      psql -v ON_ERROR_STOP=1 -q --username "$user" --dbname postgres -c "CREATE DATABASE \"$db\""
    fi
    for f in /docker-entrypoint-initdb.d/*; do
      case "$f" in
        *.sql) echo "running $f"; psql -v ON_ERROR_STOP=1 -q --username "$user" --dbname "$db" -f "$f" ;;
        *.sh) echo "running $f"; . "$f" ;;
      esac
    done
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    if [ -n "${POSTGRES_PASSWORD:-}" ]; then
      echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    else
      echo "host all all all trust" >>"$PGDATA/pg_hba.conf"
    fi
    echo "database initialised"
  fi
  exec postgres -D "$PGDATA" -c listen_addresses='*' "$@"
fi
exec "$@"
