"""Bootstrap against the real emulator and Airflow: idempotent, round-trips connection extras,
and a broken config changes nothing."""
from __future__ import annotations

import json
import re
import subprocess

import pytest
import yaml

from sandbox.host.settings import ROOT
from sandbox.host.stack import compose

pytestmark = pytest.mark.e2e


def run_bootstrap(*extra: str) -> subprocess.CompletedProcess:
    return compose("run", "--rm", "--no-deps", *extra, "bootstrap", check=False, capture=True, timeout=300)


def aws_state(aws_session) -> dict:
    ecs, s3, iam, logs, ecr = (aws_session.client(name) for name in ("ecs", "s3", "iam", "logs", "ecr"))
    return {
        "revisions": sorted(ecs.list_task_definitions()["taskDefinitionArns"]),
        "buckets": sorted(b["Name"] for b in s3.list_buckets()["Buckets"]),
        "roles": sorted(r["RoleName"] for r in iam.list_roles()["Roles"]),
        "log_groups": sorted(g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]),
        "clusters": sorted(ecs.list_clusters()["clusterArns"]),
        "repositories": sorted(r["repositoryName"] for r in ecr.describe_repositories()["repositories"]),
    }


def test_bootstrap_twice_more_changes_nothing(sandbox, aws_session):
    before = aws_state(aws_session)
    for _ in range(2):
        result = run_bootstrap()
        assert result.returncode == 0, result.stdout + result.stderr
        summary = re.search(r"Bootstrap done in [\d.]+s: (.*)", result.stdout).group(1)
        assert re.fullmatch(r"\d+ unchanged", summary), result.stdout
    # Same task-definition revisions (no new one), buckets, roles, log groups, clusters, repositories.
    assert aws_state(aws_session) == before


def test_seeded_objects_exist(aws_session):
    assert "sandbox-data" in aws_state(aws_session)["buckets"]
    body = aws_session.client("s3").get_object(Bucket="sandbox-data", Key="seed/README.txt")["Body"].read()
    assert body == b"Seeded by the sandbox bootstrap.\n"
    td = aws_session.client("ecs").describe_task_definition(taskDefinition="count-numbers")["taskDefinition"]
    assert td["containerDefinitions"][0]["entryPoint"] == ["/bin/sh", "-c"]
    assert td["taskRoleArn"].endswith(":role/ecs-task-data")
    images = aws_session.client("ecr").list_images(repositoryName="sandbox-task")["imageIds"]
    assert any(i.get("imageTag") == "1.0" for i in images)


def test_aws_default_connection_round_trips_its_extras(airflow_api):
    conn = airflow_api.get_connection("aws_default")
    assert conn["conn_type"] == "aws"
    # No keys and no role_arn: the connection acts as Airflow's containers do, as aws.airflow_role.
    # config_kwargs added too: botocore retries refused connections (an emulator restarting).
    assert json.loads(conn["extra"]) == {"region_name": "us-east-1", "endpoint_url": "http://localstack:4566",
                                         "config_kwargs": {"retries": {"mode": "standard", "max_attempts": 10},
                                                           "connect_timeout": 5}}
    assert airflow_api.get_variable("ecs_cluster") == "sandbox"


def test_a_broken_config_fails_before_changing_anything(sandbox, aws_session, tmp_path):
    raw = yaml.safe_load((ROOT / "sandbox.yaml").read_text())
    raw["aws"]["s3_buckets"].append({"name": "bucket-that-must-not-appear"})
    count = next(td for td in raw["aws"]["task_definitions"] if td["family"] == "count-numbers")
    count["memory"] = "3000"
    broken = tmp_path / "sandbox.yaml"
    broken.write_text(yaml.safe_dump(raw))
    broken.chmod(0o644)
    before = aws_state(aws_session)
    result = run_bootstrap("--volume", f"{broken}:/project/sandbox.yaml:ro")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "aws.task_definitions[0].memory" in result.stderr
    assert "not a valid Fargate combination" in result.stderr
    assert aws_state(aws_session) == before
