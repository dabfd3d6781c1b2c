"""The sandbox's pytest plugin: fixtures for testing DAGs against the running sandbox.

Installed with the package (`pip install -e .`, the `pytest11` entry point `sandbox`), so any
project's tests in that venv can request them; `-p no:sandbox` turns it off.

    sandbox       the running sandbox (reused, or brought up and taken down again): settings, URLs
    airflow_api   Airflow's REST API; run_dag(dag_id, conf) -> DagRun (states, XComs, logs)
    aws_session   a boto3.Session whose clients reach the AWS emulator
    kube_client   the cluster's kubernetes ApiClient, CoreV1Api and task namespace

All are session-scoped: the sandbox starts once per test session, and each run_dag is its own run.
SANDBOX_KEEP=1 leaves a sandbox the session brought up running afterwards.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sandbox.host.settings import ROOT, Settings, load_settings

PLUGIN_NAME = "sandbox"  # the entry point's name: `-p no:sandbox` blocks it
DEFAULT_REGION = "us-east-1"
# (dag_id, conf, state, seconds) of every run_dag of the session, for the terminal summary.
DAG_RUN_TIMINGS = pytest.StashKey[list]()
# The sandbox the session's fixtures use, once one is up: probed when a test fails.
ACTIVE_SANDBOX = pytest.StashKey["Sandbox"]()
# How long a service that stopped answering gets before the session stops (it would only hang on).
PROBE_TIMEOUT_SECONDS = 10


def ensure_registered(config: pytest.Config) -> None:
    """Registers this plugin unless pytest already has it (through the entry point, once the package
    is installed) or it was blocked with `-p no:sandbox`. For a conftest.py in a checkout whose
    venv does not have the package installed:

        def pytest_configure(config):
            ensure_registered(config)
    """
    module = sys.modules[__name__]
    manager = config.pluginmanager
    if not manager.is_registered(module) and not manager.is_blocked(PLUGIN_NAME):
        manager.register(module, PLUGIN_NAME)


def configured_region(config_file: Path) -> str:
    """sandbox.yaml's aws.region (what bootstrap seeds in), or us-east-1."""
    import yaml
    try:
        raw = yaml.safe_load(config_file.read_text()) or {}
    except OSError:
        return DEFAULT_REGION
    return ((raw.get("aws") or {}) if isinstance(raw, dict) else {}).get("region") or DEFAULT_REGION


@dataclass(frozen=True)
class Sandbox:
    """What the `sandbox` fixture yields: the settings (.env) and where the services answer."""

    settings: Settings
    airflow_url: str
    aws_endpoint: str
    admin: tuple[str, str]
    region: str

    @classmethod
    def from_settings(cls, settings: Settings, config_file: Path = ROOT / "sandbox.yaml") -> Sandbox:
        return cls(settings, settings.airflow_url, settings.aws_endpoint, settings.admin,
                   configured_region(config_file))


# --- fixtures --------------------------------------------------------------------------------
@pytest.fixture(scope="session", name="sandbox")
def sandbox_fixture(pytestconfig):
    """The sandbox for the test session: reuses the running one if it is this checkout's and
    unchanged, otherwise brings it up (`make up`'s code path) and takes it down at the end (not with
    SANDBOX_KEEP=1). Yields settings, airflow_url, aws_endpoint, admin (user, password), region.

        def test_airflow_answers(sandbox):
            health = requests.get(f"{sandbox.airflow_url}/api/v2/monitor/health", timeout=10)
            assert health.json()["metadatabase"]["status"] == "healthy"
    """
    from sandbox.host import stack
    settings = load_settings()
    with stack.running(settings):
        pytestconfig.stash[ACTIVE_SANDBOX] = Sandbox.from_settings(settings)
        try:
            yield pytestconfig.stash[ACTIVE_SANDBOX]
        finally:
            del pytestconfig.stash[ACTIVE_SANDBOX]


@pytest.fixture(scope="session")
def airflow_api(sandbox, pytestconfig):
    """Airflow's REST API v2 as admin, once it is healthy. run_dag() triggers a DAG, waits for the run
    to finish and returns a DagRun: .state, .task_states, .xcom(task_id), .log(task_id),
    .assert_success() (fails with each failed task's log tail). Also every AirflowClient method.

        def test_count(airflow_api):
            run = airflow_api.run_dag("poc_ecs_operator", {"count_to": 3}).assert_success()
            assert str(run.xcom("count")) == "0,1,2,3" and "counting to 3" in run.log("count")
    """
    from sandbox.core.airflow_api import AirflowClient
    from sandbox.testing.dag_runs import AirflowApi
    client = AirflowClient(sandbox.airflow_url, *sandbox.admin)
    client.wait_until_healthy()
    return AirflowApi(client, timings=pytestconfig.stash.setdefault(DAG_RUN_TIMINGS, []))


@pytest.fixture(scope="session")
def aws_session(sandbox):
    """A boto3.Session (the account root, which the emulator accepts from this machine only; the
    sandbox's region) whose .client() and .resource() reach the AWS emulator unless given another
    endpoint_url; pass it to code that takes a Session. What DAGs do is checked as their roles.

        def test_seeded_bucket(aws_session):
            s3 = aws_session.client("s3")
            assert "sandbox-data" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    """
    from sandbox.testing.aws import EmulatorSession
    return EmulatorSession(sandbox.aws_endpoint, region_name=sandbox.region, **sandbox.settings.root_keys)


@pytest.fixture(scope="session")
def kube_client(sandbox):
    """The sandbox's Kubernetes cluster from the host kubeconfig `make up` writes: .api_client (a
    kubernetes.client.ApiClient), .core_v1 (CoreV1Api), .namespace (where pods run). Skips the test
    when the sandbox has no cluster (K8S_PROVIDER=none).

        def test_task_namespace(kube_client):
            pods = kube_client.core_v1.list_namespaced_pod(kube_client.namespace)
            assert all(p.metadata.namespace == kube_client.namespace for p in pods.items)
    """
    from sandbox.host import stack
    from sandbox.testing.kube import NoCluster, open_recorded_cluster
    try:
        kube = open_recorded_cluster(stack.recorded_cluster(), stack.HOST_KUBECONFIG,
                                     sandbox.settings.get("K8S_PROVIDER", "auto"))
    except NoCluster as exc:
        pytest.skip(str(exc))
    with kube:
        yield kube


@pytest.fixture(scope="session")
def cost_report(sandbox):
    """A DAG run's cost report from the metrics service (`make report`'s JSON): per task try the
    measured CPU-seconds, peak memory and wall time, what it requested, and its cost per backend.

        def test_case_fits_its_size(airflow_api, cost_report):
            run = airflow_api.run_dag("import_vcf", {"backend": "ecs"}).assert_success()
            for task in cost_report(run.dag_id, run.run_id)["tasks"]:
                if task["measured"]:
                    assert task["peak_memory_mib"] < task["requested"]["memory_mib"]
    """
    from sandbox.host.report import MetricsService
    return MetricsService(sandbox.settings.metrics_url).report


# --- hooks -----------------------------------------------------------------------------------
def pytest_report_header(config: pytest.Config) -> str:
    # Which checkout's sandbox the fixtures use: with an editable install, the installed checkout's.
    keep = " (SANDBOX_KEEP=1: a sandbox brought up here stays up)" if os.environ.get("SANDBOX_KEEP") == "1" else ""
    return f"sandbox: fixtures for the checkout {ROOT}{keep}"


def pytest_configure(config: pytest.Config) -> None:
    config.stash.setdefault(DAG_RUN_TIMINGS, [])


def not_answering(sandbox: Sandbox) -> list[str]:
    """The sandbox's services (the AWS emulator, Airflow's API) that do not answer their health URL."""
    import urllib.error
    import urllib.request
    silent, timeout = [], PROBE_TIMEOUT_SECONDS
    for name, url in (("the AWS emulator", f"{sandbox.aws_endpoint}/_localstack/health"),
                      ("Airflow's API server", f"{sandbox.airflow_url}/")):
        try:
            urllib.request.urlopen(url, timeout=timeout).close()
        except urllib.error.HTTPError:  # it answered (Airflow 2 and 3 each redirect / to a login page)
            pass
        except OSError as exc:  # refused, unreachable, timed out
            silent.append(f"{name} ({url}: {exc})")
    return silent


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    """After a failed test, a service of the sandbox that stopped answering stops the session: every
    later test would wait out its own timeouts against it (a hung emulator once cost CI its budget).
    Tests that take the sandbox down and bring it back run last and are not probed."""
    report = yield
    sandbox = item.config.stash.get(ACTIVE_SANDBOX, None)
    if (report.failed and report.when in ("setup", "call") and sandbox is not None
            and item.get_closest_marker("replaces_sandbox") is None):
        silent = not_answering(sandbox)
        if silent:
            reason = (f"the sandbox stopped answering after {item.nodeid}: {'; '.join(silent)}. "
                      "Later tests would only wait out their timeouts; see `make status` and "
                      "`docker compose logs`.")
            report.sections.append(("sandbox", reason))
            item.session.shouldstop = reason
    return report


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    runs = config.stash.get(DAG_RUN_TIMINGS, [])
    if runs:
        terminalreporter.section("DAG runs (trigger to finish)")
        for dag_id, conf, state, seconds in runs:
            terminalreporter.write_line(f"{dag_id:<22} {conf:<28} {state:<8} {seconds:6.1f}s")
