"""Shared fixtures. The end-to-end tests need the sandbox: the `sandbox` fixture reuses a running
one, or brings it up (`make up`'s code path) and takes it down again at the end of the session,
including any ECS task containers, so no containers are left behind.

SANDBOX_KEEP=1 leaves a sandbox the tests started running, for debugging.
"""
from __future__ import annotations

import pytest

from sandbox.host.settings import load_settings


@pytest.fixture(scope="session")
def settings():
    return load_settings()


@pytest.fixture(scope="session")
def sandbox(settings):
    from sandbox.host import stack
    with stack.running(settings):
        yield settings


@pytest.fixture(scope="session")
def airflow(sandbox):
    from sandbox.core.airflow_api import AirflowClient
    client = AirflowClient(sandbox.airflow_url, *sandbox.admin)
    client.wait_until_healthy()
    return client


@pytest.fixture(scope="session")
def aws(sandbox):
    """boto3 clients against the emulator, as the host sees it."""
    import boto3
    session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")
    return {name: session.client(name, endpoint_url=sandbox.aws_endpoint)
            for name in ("s3", "ecs", "logs", "iam", "ecr")}


def pytest_collection_modifyitems(items):
    # Tests that take the sandbox down and bring it back run last, after the others have used it.
    items.sort(key=lambda item: item.get_closest_marker("replaces_sandbox") is not None)


DAG_TIMINGS: list[tuple[str, str, str, float]] = []


@pytest.fixture(scope="session")
def run_dag(airflow):
    """Triggers a DAG with conf, waits for it to finish, and returns (run_id, state, seconds)."""
    def _run(dag_id: str, conf: dict | None = None, timeout: float = 300):
        run_id, state, seconds = airflow.run_dag(dag_id, conf, timeout)
        DAG_TIMINGS.append((dag_id, str(conf or {}), state, seconds))
        return run_id, state, seconds
    return _run


def pytest_terminal_summary(terminalreporter):
    if DAG_TIMINGS:
        terminalreporter.section("DAG runs (trigger to finish)")
        for dag_id, conf, state, seconds in DAG_TIMINGS:
            terminalreporter.write_line(f"{dag_id:<22} {conf:<28} {state:<8} {seconds:6.1f}s")
