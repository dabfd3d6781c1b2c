"""Creates the project's Airflow database (AIRFLOW__DATABASE__SQL_ALCHEMY_CONN) if it does not exist.

Each project has a database of its own on the one Postgres server, so the first `make up` of a
project makes it; `airflow db migrate` then fills it. Postgres has no CREATE DATABASE IF NOT EXISTS.
"""
import os
import time

import psycopg2
from psycopg2 import sql
from sqlalchemy.engine import make_url

url = make_url(os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
deadline = time.monotonic() + 120  # Postgres was started, not necessarily ready (compose.yaml says why)
while True:
    try:
        conn = psycopg2.connect(host=url.host, port=url.port or 5432, user=url.username, password=url.password,
                                dbname="postgres", connect_timeout=5)
        break
    except psycopg2.OperationalError as exc:
        if time.monotonic() > deadline:
            raise SystemExit(f"airflow-init: Postgres at {url.host}:{url.port or 5432} did not answer within "
                             f"120 s: {str(exc).strip()}")
        time.sleep(0.5)
conn.autocommit = True  # CREATE DATABASE cannot run inside a transaction
with conn.cursor() as cur:
    cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (url.database,))
    if cur.fetchone() is None:
        cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(url.database)))
        print(f"airflow-init: created database {url.database}", flush=True)
conn.close()
