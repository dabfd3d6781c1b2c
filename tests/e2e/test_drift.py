"""`make drift` against the running sandbox: a policy statement added by hand (as while chasing an
AccessDenied) and a task definition revision registered outside sandbox.yaml are named, and are gone
from the report once taken back."""
from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest

from sandbox.host.settings import ROOT

pytestmark = pytest.mark.e2e


def make_drift() -> tuple[int, str]:
    res = subprocess.run([sys.executable, "-m", "sandbox", "drift"], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    return res.returncode, res.stdout + res.stderr


def test_a_statement_added_by_hand_is_named_until_it_is_taken_back(sandbox, aws_session):
    iam = aws_session.client("iam")
    seeded = iam.get_role_policy(RoleName="airflow-runner", PolicyName="data")["PolicyDocument"]
    widened = copy.deepcopy(seeded)
    widened["Statement"].append({"Effect": "Allow", "Action": "s3:DeleteObject", "Resource": "arn:aws:s3:::sandbox-data/*"})
    iam.put_role_policy(RoleName="airflow-runner", PolicyName="data", PolicyDocument=json.dumps(widened))
    try:
        code, out = make_drift()
        assert code == 1, out
        assert "iam role airflow-runner: inline policy data: statement added: Allow s3:DeleteObject on " \
               "arn:aws:s3:::sandbox-data/*" in out, out
    finally:
        iam.put_role_policy(RoleName="airflow-runner", PolicyName="data", PolicyDocument=json.dumps(seeded))
    code, out = make_drift()
    assert "iam role airflow-runner" not in out, out


def test_a_revision_registered_outside_sandbox_yaml_is_named(sandbox, aws_session):
    ecs = aws_session.client("ecs")
    seeded = ecs.describe_task_definition(taskDefinition="count-numbers")["taskDefinition"]
    request = {k: seeded[k] for k in ("family", "containerDefinitions", "requiresCompatibilities", "networkMode",
                                      "cpu", "memory", "executionRoleArn", "taskRoleArn")}
    request["containerDefinitions"][0]["command"] = ["seq -s, 0 9"]
    registered = ecs.register_task_definition(**request)["taskDefinition"]
    try:
        code, out = make_drift()
        assert code == 1, out
        assert f"task definition count-numbers: revision {registered['revision']} (the latest) differs from " \
               "sandbox.yaml in containerDefinitions[0].command[0]" in out, out
    finally:
        ecs.deregister_task_definition(taskDefinition=registered["taskDefinitionArn"])
    code, out = make_drift()
    assert "task definition count-numbers" not in out, out
