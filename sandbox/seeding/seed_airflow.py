"""Applies the `airflow:` section of the seed config through Airflow's REST API.

Connections are read back after writing and compared field by field (extras as parsed JSON), so a
connection whose extras did not survive the round trip fails the bootstrap instead of going unnoticed.
"""
from __future__ import annotations

import json

from sandbox.core.airflow_api import AirflowClient
from sandbox.seeding.config import SeedConfig
from sandbox.seeding.seed_aws import Report


class SeedError(RuntimeError):
    pass


def connection_body(conn: dict) -> dict:
    body = {"connection_id": conn["conn_id"], "conn_type": conn["conn_type"]}
    for key in ("description", "host", "port", "login", "password", "schema"):
        if key in conn:
            body[key] = conn[key]
    if "extra" in conn:
        body["extra"] = json.dumps(conn["extra"], sort_keys=True)
    return body


def with_airflow_role(conn: dict, config: SeedConfig) -> dict:
    """An `aws` connection without a role of its own assumes aws.airflow_role (amazon provider's
    `role_arn` extra), so what Airflow does on AWS is what that role allows."""
    if conn["conn_type"] != "aws" or not config.airflow_role or "role_arn" in (conn.get("extra") or {}):
        return conn
    return {**conn, "extra": {**(conn.get("extra") or {}), "role_arn": config.role_arn(config.airflow_role)}}


def seed_connections(client: AirflowClient, config: SeedConfig, report: Report,
                     generated: list[dict] = ()) -> None:
    """The config's connections plus `generated` ones (same shape), each read back and compared."""
    for conn in [with_airflow_role(c, config) for c in [*config.connections, *generated]]:
        body = connection_body(conn)
        outcome = client.put_connection(body)
        stored = client.get_connection(conn["conn_id"]) or {}
        stored_extra = json.loads(stored.get("extra") or "{}")
        if stored_extra != conn.get("extra", {}) or stored.get("conn_type") != conn["conn_type"]:
            raise SeedError(f"connection {conn['conn_id']!r} did not round-trip: stored type "
                            f"{stored.get('conn_type')!r}, extra {stored_extra!r}; expected {conn['conn_type']!r}, "
                            f"{conn.get('extra', {})!r}")
        report("airflow connection", conn["conn_id"], outcome)


def seed_variables(client: AirflowClient, config: SeedConfig, report: Report) -> None:
    for key, value in config.variables.items():
        report("airflow variable", key, client.put_variable(key, value))
