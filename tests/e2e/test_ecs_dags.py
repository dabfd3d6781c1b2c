"""The ECS DAGs, triggered through the REST API v2 and checked by their real outcomes:
task states, XCom values, container log lines in the Airflow task log, and objects in S3."""
from __future__ import annotations

import hashlib
import time

import pytest

pytestmark = pytest.mark.e2e


def test_dags_are_listed_without_import_errors(airflow_api):
    from sandbox.host.stack import EXPECTED_DAGS
    airflow_api.wait_for_dags(EXPECTED_DAGS)
    assert airflow_api.import_errors() == []
    assert set(EXPECTED_DAGS) <= set(airflow_api.dag_ids())


@pytest.mark.parametrize("count_to, expected", [(7, "0,1,2,3,4,5,6,7"), (0, "0")])
def test_poc_ecs_operator_returns_the_count(airflow_api, count_to, expected):
    run = airflow_api.run_dag("poc_ecs_operator", {"count_to": count_to})
    run.assert_success()
    assert run.task_states == {"count": "success", "count_deferrable": "success"}
    for task_id in ("count", "count_deferrable"):
        assert str(run.xcom(task_id)) == expected
    # The container's own output, fetched from CloudWatch Logs into the Airflow task log.
    log = run.log("count")
    assert f"counting to {count_to}" in log
    assert expected in log
    print(f"poc_ecs_operator count_to={count_to}: {run.seconds:.1f}s")


def test_poc_ecs_operator_rejects_a_negative_count(airflow_api):
    from sandbox.core.airflow_api import AirflowApiError
    with pytest.raises(AirflowApiError, match="HTTP 400"):
        airflow_api.trigger_dag("poc_ecs_operator", {"count_to": -1})


def test_deferrable_task_ran_through_the_triggerer(airflow_api):
    run = airflow_api.run_dag("poc_ecs_operator", {"count_to": 3})
    run.assert_success()
    log = run.log("count_deferrable")
    # A deferred task resumes in a second worker pass at execute_complete.
    assert "Pausing task as DEFERRED" in log or "deferr" in log.lower(), log[-2000:]
    assert str(run.xcom("count_deferrable")) == "0,1,2,3"


def test_deferrable_tasks_whose_trigger_fires_at_once_succeed(sandbox, airflow_api, fault_figure):
    """An ECS task that has stopped by the time its operator defers fires the trigger at once; the
    task resumes before the scheduler reads the deferring process's exit, which Airflow 3.3.2 took for
    a task killed behind its back (airflow/config/sandbox_executor.py). Several at once, every one green."""
    from datetime import datetime, timezone

    from sandbox.host import stack
    since = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    run_ids = [airflow_api.trigger_dag("poc_ecs_operator", {"count_to": 0}) for _ in range(6)]
    for run_id in run_ids:
        run = airflow_api.wait_for_dag_run("poc_ecs_operator", run_id, timeout=300)
        states = airflow_api.task_states("poc_ecs_operator", run_id)
        assert (run["state"], states) == ("success", {"count": "success", "count_deferrable": "success"}), \
            airflow_api.task_log("poc_ecs_operator", run_id, "count_deferrable")[-3000:]
    scheduler = stack.compose("logs", "--no-log-prefix", "--since", since, "airflow-scheduler", capture=True).stdout
    assert "state mismatch" not in scheduler and "finished with state success, but" not in scheduler
    fault_figure("deferrable ECS tasks resumed at once: stale exits ignored / runs",
                 f"{scheduler.count('it is the exit of the process that deferred')} / {len(run_ids)}")


def test_upload_file_to_s3_writes_the_object(airflow_api, aws_session):
    message = "sandbox e2e upload"
    run = airflow_api.run_dag("upload_file_to_s3", {"message": message})
    run.assert_success()
    verified = run.xcom("verify")
    expected = f"{message} ({run.run_id})".encode()
    body = aws_session.client("s3").get_object(Bucket=verified["bucket"], Key=verified["key"])["Body"].read()
    assert verified["bucket"] == "sandbox-data" and verified["key"].startswith("uploads/")
    assert body == expected and verified["size"] == len(expected)
    summary = run.xcom("upload")
    summary = summary if isinstance(summary, dict) else __import__("json").loads(summary)
    assert summary["sha256"] == hashlib.sha256(expected).hexdigest()
    assert f"uploading {len(expected)} bytes" in run.log("upload")
    print(f"upload_file_to_s3: {run.seconds:.1f}s")


def test_failing_ecs_tasks_fail_with_the_reason(airflow_api):
    run = airflow_api.run_dag("ecs_failure_demo")
    assert run.state == "failed"
    assert run.task_states == {"nonzero_exit": "failed", "missing_image": "failed"}
    log = run.log("nonzero_exit")
    # The operator's error carries the container's last log lines.
    assert "This task is not in success state - last 10 logs from Cloudwatch" in log
    assert "error: input file is corrupt" in log
    missing = run.log("missing_image")
    assert "CannotPullContainerError" in missing


def test_a_new_dag_file_is_picked_up(airflow_api, tmp_path):
    """dags/ is mounted into Airflow: a file dropped there is listed without a restart."""
    from sandbox.host.settings import ROOT
    dag_id = f"e2e_new_dag_{int(time.time())}"
    path = ROOT / "dags" / f"{dag_id}.py"
    path.write_text(
        "import pendulum\nfrom airflow.sdk import dag, task\n\n"
        f"@dag(dag_id={dag_id!r}, schedule=None, start_date=pendulum.datetime(2026, 1, 1), tags=['e2e'])\n"
        "def d():\n    @task\n    def hello():\n        return 'hi'\n    hello()\n\nd()\n")
    try:
        started = time.monotonic()
        airflow_api.wait_for_dags([dag_id], timeout=120)
        print(f"new DAG listed after {time.monotonic() - started:.1f}s")
    finally:
        path.unlink()
