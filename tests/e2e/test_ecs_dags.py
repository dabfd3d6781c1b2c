"""The ECS DAGs, triggered through the REST API v2 and checked by their real outcomes:
task states, XCom values, container log lines in the Airflow task log, and objects in S3."""
from __future__ import annotations

import hashlib
import time

import pytest

pytestmark = pytest.mark.e2e


def test_dags_are_listed_without_import_errors(airflow):
    from sandbox.host.stack import EXPECTED_DAGS
    airflow.wait_for_dags(EXPECTED_DAGS)
    assert airflow.import_errors() == []
    assert set(EXPECTED_DAGS) <= set(airflow.dag_ids())


@pytest.mark.parametrize("count_to, expected", [(7, "0,1,2,3,4,5,6,7"), (0, "0")])
def test_poc_ecs_operator_returns_the_count(airflow, run_dag, count_to, expected):
    run_id, state, seconds = run_dag("poc_ecs_operator", {"count_to": count_to})
    states = airflow.task_states("poc_ecs_operator", run_id)
    assert state == "success", states
    assert states == {"count": "success", "count_deferrable": "success"}
    for task_id in ("count", "count_deferrable"):
        assert str(airflow.xcom("poc_ecs_operator", run_id, task_id)) == expected
    # The container's own output, fetched from CloudWatch Logs into the Airflow task log.
    log = airflow.task_log("poc_ecs_operator", run_id, "count")
    assert f"counting to {count_to}" in log
    assert expected in log
    print(f"poc_ecs_operator count_to={count_to}: {seconds:.1f}s")


def test_poc_ecs_operator_rejects_a_negative_count(airflow):
    from sandbox.core.airflow_api import AirflowApiError
    with pytest.raises(AirflowApiError, match="HTTP 400"):
        airflow.trigger_dag("poc_ecs_operator", {"count_to": -1})


def test_deferrable_task_ran_through_the_triggerer(airflow, run_dag):
    run_id, state, _ = run_dag("poc_ecs_operator", {"count_to": 3})
    assert state == "success"
    log = airflow.task_log("poc_ecs_operator", run_id, "count_deferrable")
    # A deferred task resumes in a second worker pass at execute_complete.
    assert "Pausing task as DEFERRED" in log or "deferr" in log.lower(), log[-2000:]
    assert str(airflow.xcom("poc_ecs_operator", run_id, "count_deferrable")) == "0,1,2,3"


def test_upload_file_to_s3_writes_the_object(airflow, run_dag, aws):
    message = "sandbox e2e upload"
    run_id, state, seconds = run_dag("upload_file_to_s3", {"message": message})
    assert state == "success", airflow.task_states("upload_file_to_s3", run_id)
    verified = airflow.xcom("upload_file_to_s3", run_id, "verify")
    expected = f"{message} ({run_id})".encode()
    body = aws["s3"].get_object(Bucket=verified["bucket"], Key=verified["key"])["Body"].read()
    assert verified["bucket"] == "sandbox-data" and verified["key"].startswith("uploads/")
    assert body == expected and verified["size"] == len(expected)
    summary = airflow.xcom("upload_file_to_s3", run_id, "upload")
    summary = summary if isinstance(summary, dict) else __import__("json").loads(summary)
    assert summary["sha256"] == hashlib.sha256(expected).hexdigest()
    assert f"uploading {len(expected)} bytes" in airflow.task_log("upload_file_to_s3", run_id, "upload")
    print(f"upload_file_to_s3: {seconds:.1f}s")


def test_failing_ecs_tasks_fail_with_the_reason(airflow, run_dag):
    run_id, state, _ = run_dag("ecs_failure_demo")
    assert state == "failed"
    assert airflow.task_states("ecs_failure_demo", run_id) == {"nonzero_exit": "failed", "missing_image": "failed"}
    log = airflow.task_log("ecs_failure_demo", run_id, "nonzero_exit")
    # The operator's error carries the container's last log lines.
    assert "This task is not in success state - last 10 logs from Cloudwatch" in log
    assert "error: input file is corrupt" in log
    missing = airflow.task_log("ecs_failure_demo", run_id, "missing_image")
    assert "CannotPullContainerError" in missing


def test_a_new_dag_file_is_picked_up(airflow, tmp_path):
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
        airflow.wait_for_dags([dag_id], timeout=120)
        print(f"new DAG listed after {time.monotonic() - started:.1f}s")
    finally:
        path.unlink()
