"""Healthcheck of the dag-processor and triggerer containers: has this host's job heartbeated lately?

The same test as `airflow jobs check --job-type T --hostname H`, made with one query instead of a
full Airflow start: that command costs ~3 CPU-seconds, which every 15 s kept a fifth of a core busy
per service on a 2-core machine.

The `job` table, its columns and the job types (DagProcessorJob, TriggererJob) are the same in
Airflow 2.10.3, 2.11.2, 3.0.6 and 3.3.2; in Airflow 2 a DagProcessorJob exists only with a standalone
dag processor (`airflow dag-processor`, [scheduler] standalone_dag_processor = True).

Usage: healthcheck.py JOB_TYPE [THRESHOLD_SECONDS]   (Airflow's default threshold is 30 s)
"""
import os
import socket
import sys

import psycopg2


def airflow_hostname() -> str:
    """The hostname Airflow's jobs record: its default [core] hostname_callable, airflow.utils.net.getfqdn
    (the same in 2.10.3, 2.11.2, 3.0.6 and 3.3.2). Not socket.getfqdn, which can answer "localhost"
    where Airflow records the host's name (python/cpython#49254)."""
    name = socket.gethostname()
    try:
        addrs = socket.getaddrinfo(name, None, 0, socket.SOCK_DGRAM, 0, socket.AI_CANONNAME)
    except OSError:
        return name
    return next((addr[3] for addr in addrs if addr[3]), name)


def main() -> int:
    job_type = sys.argv[1]
    threshold = float(sys.argv[2]) if len(sys.argv) > 2 else 30.0
    hostname = airflow_hostname()
    dsn = os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].replace("postgresql+psycopg2://", "postgresql://", 1)
    with psycopg2.connect(dsn, connect_timeout=5) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM job WHERE job_type = %s AND hostname = %s AND state = 'running'"
                    " AND latest_heartbeat > now() - make_interval(secs => %s)", (job_type, hostname, threshold))
        alive = cur.fetchone()[0]
    if not alive:
        print(f"no running {job_type} on {hostname} heartbeated in the last {threshold:g} s", file=sys.stderr)
    return 0 if alive else 1


if __name__ == "__main__":
    sys.exit(main())
