"""The account root is the host's alone: from an ECS task, a pod and Airflow's containers the root key
(handed to them on purpose) and LocalStack's `test` key are refused as AWS refuses an unknown key,
naming the key; a write the caller's role forbids is denied; nothing is written. From the host, the
same root key acts as the root."""
from __future__ import annotations

import uuid

import pytest

from sandbox.core.poll import wait_until
from sandbox.host.stack import compose

pytestmark = pytest.mark.e2e

ACCOUNT = "000000000000"
# Each attempt prints one line: <who>=<outcome>; the caller's identity with the same keys after it.
PROBE = """
import os, sys, boto3, botocore
bucket, endpoint = sys.argv[1], os.environ["AWS_ENDPOINT_URL"]
keys = {"root": {"aws_access_key_id": os.environ["PROBE_ROOT_KEY"], "aws_secret_access_key": os.environ["PROBE_ROOT_SECRET"]},
        "test": {"aws_access_key_id": "test", "aws_secret_access_key": "test"},
        "own": {}}
for who, given in keys.items():
    for call in ("put", "whoami"):
        try:
            if call == "put":
                boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **given).put_object(
                    Bucket=bucket, Key=f"probe/{who}", Body=b"x")
                outcome = "written"
            else:
                outcome = boto3.client("sts", endpoint_url=endpoint, region_name="us-east-1",
                                       **given).get_caller_identity()["Arn"]
        except botocore.exceptions.ClientError as exc:
            outcome = exc.response["Error"]["Code"] + ": " + exc.response["Error"]["Message"]
        except botocore.exceptions.NoCredentialsError:
            outcome = "NoCredentials"
        print(f"{who}.{call}={outcome}", flush=True)
"""


@pytest.fixture(scope="module")
def forbidden_bucket(aws_session):
    """A bucket no role of the project may write: only the root could."""
    s3 = aws_session.client("s3")
    name = f"root-probe-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    yield name
    assert s3.list_objects_v2(Bucket=name).get("KeyCount", 0) == 0, "a probe wrote where only the root may"
    s3.delete_bucket(Bucket=name)


def outcomes(lines: list[str]) -> dict[str, str]:
    return dict(line.split("=", 1) for line in lines if "=" in line)


def assert_root_refused(found: dict[str, str], role: str) -> None:
    for call in ("put", "whoami"):
        # The root key: refused as an unknown key, saying it is the root and acts from the host only.
        assert found[f"root.{call}"].startswith(("InvalidAccessKeyId: ", "InvalidClientTokenId: ")), found
        assert "is the sandbox's account root, which acts only from the host" in found[f"root.{call}"], found
        # LocalStack's convention is not a key here: refused, naming it.
        assert found[f"test.{call}"].startswith(("InvalidAccessKeyId: ", "InvalidClientTokenId: ")), found
        assert "Access key test is not a key of this sandbox" in found[f"test.{call}"], found
    # Its own role: itself, and the write its role does not allow is denied.
    assert found["own.whoami"].startswith(f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/"), found
    assert found["own.put"].startswith("AccessDenied: "), found
    assert f"assumed-role/{role}/" in found["own.put"] and "s3:PutObject" in found["own.put"], found


def test_the_root_key_acts_as_the_root_from_the_host(aws_session):
    assert aws_session.client("sts").get_caller_identity()["Arn"] == f"arn:aws:iam::{ACCOUNT}:root"


def test_an_ecs_task_cannot_act_as_the_root(aws_session, sandbox, forbidden_bucket):
    ecs, logs = aws_session.client("ecs"), aws_session.client("logs")
    image = ecs.describe_task_definition(taskDefinition="count-numbers")["taskDefinition"][
        "containerDefinitions"][0]["image"]
    keys = sandbox.settings.root_keys
    family = f"root-probe-{uuid.uuid4().hex[:8]}"
    td = ecs.register_task_definition(
        family=family, requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
        taskRoleArn=f"arn:aws:iam::{ACCOUNT}:role/ecs-task-data",
        executionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/ecs-task-execution",
        containerDefinitions=[{
            "name": "probe", "image": image, "essential": True,
            "entryPoint": ["python3", "-c"], "command": [PROBE, forbidden_bucket],
            "environment": [{"name": "PROBE_ROOT_KEY", "value": keys["aws_access_key_id"]},
                            {"name": "PROBE_ROOT_SECRET", "value": keys["aws_secret_access_key"]}],
            "logConfiguration": {"logDriver": "awslogs", "options": {
                "awslogs-group": "/ecs/sandbox", "awslogs-region": "us-east-1", "awslogs-stream-prefix": family}}}],
    )["taskDefinition"]["taskDefinitionArn"]
    try:
        task = ecs.run_task(cluster="sandbox", taskDefinition=td, launchType="FARGATE", networkConfiguration={
            "awsvpcConfiguration": {"subnets": ["subnet-00000001"]}})["tasks"][0]
        stopped = wait_until(lambda: (lambda t: t if t["lastStatus"] == "STOPPED" else None)(
            ecs.describe_tasks(cluster="sandbox", tasks=[task["taskArn"]])["tasks"][0]),
            timeout=120, interval=1, what="the probe task to stop")
        stream = f"{family}/probe/{task['taskArn'].rsplit('/', 1)[-1]}"
        lines = [e["message"] for e in logs.get_log_events(
            logGroupName="/ecs/sandbox", logStreamName=stream, startFromHead=True)["events"]]
        assert stopped["containers"][0].get("exitCode") == 0, lines
        assert_root_refused(outcomes(lines), "ecs-task-data")
    finally:
        ecs.deregister_task_definition(taskDefinition=td)


def test_a_pod_cannot_act_as_the_root(kube_client, sandbox, forbidden_bucket):
    from kubernetes import client as k8s
    keys = sandbox.settings.root_keys
    name = f"root-probe-{uuid.uuid4().hex[:8]}"
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
           "spec": {"restartPolicy": "Never", "containers": [{
               "name": "probe", "image": "sandbox/task:1.0", "imagePullPolicy": "Never",
               "command": ["python3", "-c", PROBE, forbidden_bucket],
               # The pods' own settings (AWS_ENDPOINT_URL, and the role through the service account).
               "envFrom": [{"secretRef": {"name": "aws-task-env"}}],
               "env": [{"name": "PROBE_ROOT_KEY", "value": keys["aws_access_key_id"]},
                       {"name": "PROBE_ROOT_SECRET", "value": keys["aws_secret_access_key"]}]}]}}
    core = kube_client.core_v1
    core.create_namespaced_pod(kube_client.namespace, pod)
    try:
        phase = wait_until(lambda: (lambda p: p if p in ("Succeeded", "Failed") else None)(
            core.read_namespaced_pod(name, kube_client.namespace).status.phase),
            timeout=120, interval=1, what="the probe pod to finish")
        log = core.read_namespaced_pod_log(name, kube_client.namespace, _preload_content=False).data.decode()
        assert phase == "Succeeded", log
        assert_root_refused(outcomes(log.splitlines()), "pod-task-data")
    finally:
        core.delete_namespaced_pod(name, kube_client.namespace, body=k8s.V1DeleteOptions(grace_period_seconds=0))


def test_airflow_cannot_act_as_the_root_and_acts_as_its_role(sandbox, forbidden_bucket):
    keys = sandbox.settings.root_keys
    res = compose("exec", "-T", "-e", f"PROBE_ROOT_KEY={keys['aws_access_key_id']}",
                  "-e", f"PROBE_ROOT_SECRET={keys['aws_secret_access_key']}",
                  "airflow-scheduler", "python", "-c", PROBE, forbidden_bucket, capture=True)
    assert res.returncode == 0, res.stderr
    # Airflow holds no key: its own identity is aws.airflow_role, from the credentials endpoint.
    env = compose("exec", "-T", "airflow-scheduler", "env", capture=True).stdout
    assert "AWS_ACCESS_KEY_ID" not in env and "AWS_SECRET_ACCESS_KEY" not in env
    assert_root_refused(outcomes(res.stdout.splitlines()), "airflow-runner")


def test_the_credentials_endpoint_gives_airflow_nothing_without_its_token(sandbox):
    res = compose("exec", "-T", "airflow-scheduler", "python", "-c",
                  "import json, urllib.request, urllib.error\n"
                  "try:\n"
                  "    urllib.request.urlopen(urllib.request.Request("
                  "'http://169.254.170.2:4566/v2/credentials/airflow', headers={'Authorization': 'guess'}))\n"
                  "except urllib.error.HTTPError as exc:\n"
                  "    print(exc.code, json.load(exc)['code'])\n", capture=True)
    assert res.stdout.strip() == "400 InvalidAuthorizationToken", (res.stdout, res.stderr)
