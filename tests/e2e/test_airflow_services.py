"""The Airflow services as compose runs them: the cheap healthcheck of the dag-processor and the
triggerer, the scheduler's preloading of the DAGs' provider modules (both keep a 2-core machine free
for the tasks), and the triggerer's Execution API built before the first trigger
(see airflow/healthcheck.py and airflow/config/airflow_local_settings.py)."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from sandbox.host.stack import compose

pytestmark = pytest.mark.e2e

DAGS = Path(__file__).resolve().parents[2] / "dags"


def exec_in(service: str, *command: str, env: dict[str, str] | None = None):
    env_args = [arg for name, value in (env or {}).items() for arg in ("-e", f"{name}={value}")]
    return compose("exec", "-T", *env_args, service, *command, check=False, capture=True, timeout=120)


def dag_airflow_imports() -> set[str]:
    modules = set()
    for path in DAGS.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("airflow."):
                modules.add(node.module)
            elif isinstance(node, ast.Import):
                modules.update(a.name for a in node.names if a.name.startswith("airflow."))
    return modules


LOADED_AFTER_AIRFLOW_STARTS = ("import json, sys, airflow; "
                               "print(json.dumps(sorted(m for m in sys.modules if m.startswith('airflow.'))))")


@pytest.mark.parametrize("service, job_type", [("airflow-dag-processor", "DagProcessorJob"),
                                               ("airflow-triggerer", "TriggererJob")])
def test_healthcheck_finds_the_services_own_job(sandbox, service, job_type):
    res = exec_in(service, "python3", "/opt/sandbox/healthcheck.py", job_type)
    assert res.returncode == 0, res.stderr


def test_healthcheck_fails_for_a_job_the_host_does_not_run(sandbox):
    res = exec_in("airflow-dag-processor", "python3", "/opt/sandbox/healthcheck.py", "TriggererJob")
    assert res.returncode == 1
    assert "no running TriggererJob on" in res.stderr


def test_scheduler_processes_start_with_the_dag_imports_loaded(sandbox):
    wanted = dag_airflow_imports()
    assert "airflow.providers.amazon.aws.operators.ecs" in wanted
    assert "airflow.providers.cncf.kubernetes.operators.pod" in wanted
    # The scheduler's environment turns preloading on, so its workers (and their task forks) have them.
    res = exec_in("airflow-scheduler", "python3", "-c", LOADED_AFTER_AIRFLOW_STARTS)
    assert res.returncode == 0, res.stderr
    assert wanted - set(json.loads(res.stdout.splitlines()[-1])) == set()
    # Without it (every other service) Airflow does not import them at start.
    res = exec_in("airflow-scheduler", "python3", "-c", LOADED_AFTER_AIRFLOW_STARTS,
                  env={"SANDBOX_PRELOAD_DAG_IMPORTS": "false"})
    assert res.returncode == 0, res.stderr
    assert "airflow.providers.amazon.aws.operators.ecs" not in json.loads(res.stdout.splitlines()[-1])


def test_the_triggerer_builds_its_execution_api_before_a_trigger_asks(sandbox):
    # Built in the background once the trigger runner has started, so the first deferred task after
    # make up does not wait for it (airflow/config/airflow_local_settings.py).
    res = compose("logs", "--no-log-prefix", "airflow-triggerer", capture=True, timeout=60)
    lines = res.stdout.splitlines()
    built = [i for i, line in enumerate(lines) if "the triggerer's in-process Execution API is built" in line]
    assert built, "\n".join(lines[-30:])
    assert not any("Not warming the in-process Execution API" in line for line in lines)
    started = [i for i, line in enumerate(lines) if "Starting the triggerer" in line]
    assert started and started[-1] < built[-1]


def test_plain_sdk_calls_in_airflow_act_as_the_airflow_role(sandbox):
    # No hook, no connection, no keys: the SDK's own chain finds the emulator's credentials endpoint.
    script = ("import boto3; print(boto3.client('sts').get_caller_identity()['Arn']); "
              "print(boto3.client('s3').get_object(Bucket='sandbox-data', Key='seed/README.txt')['Body'].read())")
    res = exec_in("airflow-scheduler", "python", "-c", script)
    assert res.returncode == 0, res.stderr
    arn, body = res.stdout.strip().splitlines()[-2:]
    assert arn.startswith("arn:aws:sts::000000000000:assumed-role/airflow-runner/airflow"), arn
    assert "Seeded by the sandbox bootstrap." in body
    # ... and only as that role: it may read the data bucket, not list every bucket.
    res = exec_in("airflow-scheduler", "python", "-c", "import boto3; boto3.client('s3').list_buckets()")
    assert res.returncode == 1
    assert ("assumed-role/airflow-runner/airflow is not authorized to perform: s3:ListAllMyBuckets"
            in res.stderr), res.stderr
