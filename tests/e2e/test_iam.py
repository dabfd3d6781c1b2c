"""IAM is enforced as on AWS: every actor acts as its declared role, and a missing permission fails
the Airflow task with AWS's AccessDenied naming the action, the resource and the role (iam_demo)."""
from __future__ import annotations

import re

import boto3
import pytest
from botocore.exceptions import ClientError

pytestmark = pytest.mark.e2e

ACCOUNT = "000000000000"
TASK_ID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


@pytest.fixture(scope="module")
def run(airflow_api):
    run = airflow_api.run_dag("iam_demo")
    assert run.state == "failed"  # the denied_* tasks fail by design
    return run


def test_each_actor_acts_as_its_declared_role(run):
    assert run.states_of("whoami_airflow") == ["success"], run.failure_report()
    assert run.xcom("whoami_airflow").startswith(f"arn:aws:sts::{ACCOUNT}:assumed-role/airflow-runner/")
    assert run.states_of("whoami_ecs") == ["success"], run.failure_report()
    # An ECS task's session is its task role, named after the task id.
    assert re.search(rf"caller: arn:aws:sts::{ACCOUNT}:assumed-role/ecs-task-data/{TASK_ID}\b",
                     run.log("whoami_ecs")), run.log("whoami_ecs")[-2000:]
    # A pod exchanges its service-account token for kubernetes.aws_role (EKS's IRSA).
    assert run.states_of("whoami_pod") == ["success"], run.failure_report()
    assert f"caller: arn:aws:sts::{ACCOUNT}:assumed-role/pod-task-data/" in run.log("whoami_pod")


@pytest.mark.parametrize("task_id, role, action, resource", [
    ("denied_ecs_write", "ecs-task-read-only", "s3:PutObject", '"arn:aws:s3:::sandbox-data/uploads/'),
    ("denied_pass_role", "airflow-runner", "iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/pod-task-data"),
    ("denied_airflow_write", "airflow-runner", "s3:PutObject", '"arn:aws:s3:::sandbox-data/iam-demo/airflow.txt"'),
    ("denied_pod_delete", "pod-task-data", "s3:DeleteObject", '"arn:aws:s3:::sandbox-data/seed/README.txt"'),
])
def test_a_missing_permission_fails_the_task_with_aws_access_denied(run, task_id, role, action, resource):
    assert run.states_of(task_id) == ["failed"]
    log = run.log(task_id)
    assert re.search(rf"AccessDenied(Exception)?\b.*assumed-role/{role}/\S+ is not authorized to perform: "
                     rf"{re.escape(action)} on resource: {re.escape(resource)}", log), log[-3000:]


def test_run_task_refuses_a_role_that_does_not_trust_ecs_tasks(aws_session):
    # pod-task-data trusts a service account, not ecs-tasks.amazonaws.com (the root caller may pass it).
    ecs = aws_session.client("ecs")
    with pytest.raises(ClientError) as exc:
        ecs.run_task(cluster="sandbox", taskDefinition="count-numbers", launchType="FARGATE",
                     overrides={"taskRoleArn": f"arn:aws:iam::{ACCOUNT}:role/pod-task-data"},
                     networkConfiguration={"awsvpcConfiguration": {"subnets": ["subnet-00000001"]}})
    error = exc.value.response["Error"]
    assert error["Code"] == "InvalidParameterException"
    assert f"ECS was unable to assume the role 'arn:aws:iam::{ACCOUNT}:role/pod-task-data'" in error["Message"]


def test_an_unknown_key_is_refused(aws_session):
    s3 = boto3.client("s3", endpoint_url=aws_session.client("s3").meta.endpoint_url, region_name="us-east-1",
                      aws_access_key_id="AKIAUNKNOWN000000000", aws_secret_access_key="x")
    with pytest.raises(ClientError) as exc:
        s3.list_objects_v2(Bucket="sandbox-data")
    assert exc.value.response["Error"]["Code"] == "InvalidAccessKeyId"
