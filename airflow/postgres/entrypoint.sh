#!/bin/sh
# Initialises the cluster on first start (empty volume), then runs postgres in the foreground;
# arguments (the compose `command`) go to postgres, e.g. -c max_connections=200.
# `--initialise-only` (the image's build) initialises and exits.
set -eu
: "${POSTGRES_USER:=airflow}" "${POSTGRES_PASSWORD:=airflow}" "${POSTGRES_DB:=airflow}"
# What a cluster was initialised for; the password only as a hash.
wanted="$POSTGRES_USER $POSTGRES_DB $(printf '%s' "$POSTGRES_PASSWORD" | sha256sum | cut -d' ' -f1)"
marker="$PGDATA/sandbox-initialised-for"
if [ -s "$PGDATA/PG_VERSION" ] && [ -f "$marker" ] && [ "$(cat "$marker")" != "$wanted" ] \
   && [ ! -e "$PGDATA/sandbox-used" ]; then
  # The image's own cluster, never started here, for other credentials: initialise anew.
  find "$PGDATA" -mindepth 1 -delete
fi
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
  echo "$wanted" > "$marker"
  echo "postgres: initialised database $POSTGRES_DB"
fi
if [ "${1:-}" = "--initialise-only" ]; then
  exit 0
fi
touch "$PGDATA/sandbox-used"
exec postgres -c listen_addresses='*' "$@"
