"""Switching the Airflow version a project names over a running sandbox: 3.3.2 (the sandbox's own),
MWAA 2.10.3, and back. Each step is a `make up` as a user runs it after editing sandbox.yaml; after
each, the project's DAG runs green on both backends under the version named, the version's own
database still holds the runs made on it before (nothing migrated under another version's feet),
and `make status` names the version that runs.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from sandbox.core.airflow_api import AirflowClient
from sandbox.host.settings import ROOT, load_settings
from sandbox.testing.commands import sandbox_command
from sandbox.testing.dag_runs import AirflowApi

pytestmark = [pytest.mark.e2e, pytest.mark.lifecycle, pytest.mark.replaces_sandbox]

# (sandbox.yaml's airflow section, the version Airflow's API reports, what `make status` says)
STEPS = [
    ("", "3.3.2", "Apache Airflow 3.3.2"),
    ('airflow: {version: "2.10.3", flavour: mwaa}\n', "2.10.3", "MWAA Airflow 2.10.3"),
    ("", "3.3.2", "Apache Airflow 3.3.2"),
]
EXPECTED_GC = 0.5303  # examples/genomics' three samples


def test_switching_versions_over_a_running_sandbox_keeps_each_versions_database(sandbox, team_project,
                                                                               version_figure):
    config = team_project / "sandbox.yaml"
    declared = config.read_text()
    env = {"SANDBOX_PROJECT": str(team_project), "AIRFLOW_VERSION": ""}
    settings = load_settings()
    runs_by_version: dict[str, list[str]] = {}
    try:
        for airflow_section, version, shown in STEPS:
            config.write_text(declared + airflow_section)
            started = time.monotonic()
            sandbox_command("up", env)
            took = time.monotonic() - started
            client = AirflowClient(settings.airflow_url, *settings.admin)
            assert client.get("version")["version"] == version

            run = AirflowApi(client).run_dag("genomics_qc", timeout=600).assert_success()
            assert run.xcom("report")["gc_fraction"] == EXPECTED_GC
            assert run.states_of("qc_on_ecs") == ["success"] * 3 and run.states_of("qc_on_k8s") == ["success"] * 3
            earlier = runs_by_version.setdefault(version, [])
            listed = {r["dag_run_id"] for r in client.get("dags/genomics_qc/dagRuns", limit=100)["dag_runs"]}
            assert set(earlier) <= listed, f"runs made on {version} before the switch are gone: {set(earlier) - listed}"
            assert run.run_id in listed and len(listed) == len(earlier) + 1, listed
            earlier.append(run.run_id)

            status = subprocess.run([sys.executable, "-m", "sandbox", "status"], cwd=ROOT, capture_output=True,
                                    text=True, timeout=120, env={**os.environ, **env})
            assert f"Airflow               : {shown}" in status.stdout, status.stdout
            version_figure(f"make up to {shown}, then genomics_qc ({len(earlier)} run(s) on it)",
                           f"up {took:.0f} s, run {run.seconds:.0f} s")
    finally:
        config.write_text(declared)
        # Back to the session's own sandbox.
        sandbox_command("up", {"SANDBOX_PROJECT": os.environ.get("SANDBOX_PROJECT", ""),
                               "AIRFLOW_VERSION": os.environ.get("AIRFLOW_VERSION", "")})
