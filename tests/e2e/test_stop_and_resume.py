"""`make stop` keeps everything and `make up` resumes it: a DAG run's S3 output, its history and its
task log, and the emulator's seeded objects (restored from its volume, not registered again)."""
from __future__ import annotations

import time

import pytest

from sandbox.host import stack

# Runs last (tests/conftest.py): it stops the whole sandbox and brings it back.
pytestmark = [pytest.mark.e2e, pytest.mark.replaces_sandbox]


def test_stop_then_up_keeps_runs_their_output_and_the_seeded_objects(sandbox, airflow_api, aws_session):
    message = "kept across make stop"
    run = airflow_api.run_dag("upload_file_to_s3", {"message": message}).assert_success()
    verified = run.xcom("verify")
    ecs, s3 = aws_session.client("ecs"), aws_session.client("s3")
    registered = ecs.describe_task_definition(taskDefinition="count-numbers")["taskDefinition"]

    stack.stop(sandbox.settings)
    running = [s["Service"] for s in stack.services() if s.get("State") == "running"]
    assert running == [], f"still running after make stop: {running}"
    started = time.monotonic()
    stack.up(sandbox.settings)
    print(f"make up after make stop: {time.monotonic() - started:.1f}s")

    body = s3.get_object(Bucket=verified["bucket"], Key=verified["key"])["Body"].read()
    assert body == f"{message} ({run.run_id})".encode()
    assert airflow_api.get(f"dags/upload_file_to_s3/dagRuns/{airflow_api.quote(run.run_id)}")["state"] == "success"
    assert "uploading" in run.log("upload")
    # Restored from the emulator's volume, not registered again by the seeding that `make up` ran.
    again = ecs.describe_task_definition(taskDefinition="count-numbers")["taskDefinition"]
    assert (again["taskDefinitionArn"], again.get("registeredAt")) == (registered["taskDefinitionArn"],
                                                                      registered.get("registeredAt"))
