#!/bin/sh
# Initialises the cluster on first start (empty volume), then runs postgres in the foreground;
# arguments (the compose `command`) go to postgres, e.g. -c max_connections=200.
set -eu
: "${POSTGRES_USER:=airflow}" "${POSTGRES_PASSWORD:=airflow}" "${POSTGRES_DB:=airflow}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
  # UTF-8 explicitly: minbase has no locale, and SQL_ASCII rejects non-ASCII DAG docs and logs.
  initdb --username="$POSTGRES_USER" --pwfile="$pwfile" --auth-host=scram-sha-256 --auth-local=trust \
    --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
  if [ "$POSTGRES_DB" != "postgres" ]; then
    createdb --username="$POSTGRES_USER" "$POSTGRES_DB"
  fi
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  echo "postgres: initialised database $POSTGRES_DB"
fi
exec postgres -c listen_addresses='*' "$@"
