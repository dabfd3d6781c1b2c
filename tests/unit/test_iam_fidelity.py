"""Unit tests of the IAM patch's rules (no MiniStack needed)."""

import importlib.util
import pathlib

import pytest

pytestmark = pytest.mark.unit

_PATH = pathlib.Path(__file__).resolve().parents[2] / "localstack" / "iam_fidelity.py"
_spec = importlib.util.spec_from_file_location("iam_fidelity", _PATH)
iam = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(iam)

ROLE = "arn:aws:iam::000000000000:role/"


def test_run_task_overrides_win_over_the_definitions_roles():
    td = {"taskRoleArn": ROLE + "data", "executionRoleArn": ROLE + "exec"}
    assert iam.task_roles(td) == {"task": ROLE + "data", "execution": ROLE + "exec"}
    assert iam.task_roles(td, {"taskRoleArn": ROLE + "other"})["task"] == ROLE + "other"
    assert iam.task_roles({}) == {}


@pytest.mark.parametrize("statement, trusted", [
    ({"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}, True),
    ({"Effect": "Allow", "Principal": {"Service": ["lambda.amazonaws.com", "ecs-tasks.amazonaws.com"]},
      "Action": ["sts:AssumeRole"]}, True),
    ({"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}, False),
    ({"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::000000000000:root"}, "Action": "sts:AssumeRole"}, False),
    ({"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"},
      "Action": "sts:AssumeRoleWithWebIdentity"}, False),
])
def test_a_role_trusts_ecs_tasks_only_through_a_service_principal(statement, trusted):
    assert iam.trusts_service({"Statement": [statement]}, "ecs-tasks.amazonaws.com") is trusted


def test_an_explicit_deny_in_the_trust_policy_wins():
    allow = {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}
    deny = {**allow, "Effect": "Deny"}
    assert not iam.trusts_service('{"Statement": %s}' % __import__("json").dumps([allow, deny]),
                                  "ecs-tasks.amazonaws.com")
    assert not iam.trusts_service("not json", "ecs-tasks.amazonaws.com")


def test_messages_use_the_wording_of_aws():
    assert iam.denial_message("iam:PassRole", "arn:aws:sts::0:assumed-role/a/b", ROLE + "x", False) == (
        "User: arn:aws:sts::0:assumed-role/a/b is not authorized to perform: iam:PassRole on resource: "
        f"{ROLE}x because no identity-based policy allows the iam:PassRole action")
    assert "with an explicit deny" in iam.denial_message("s3:GetObject", "u", "r", True)
    assert iam.unable_to_assume(ROLE + "x").startswith(f"ECS was unable to assume the role '{ROLE}x'")


def test_a_task_session_is_named_after_the_task_id():
    assert iam.session_name("arn:aws:ecs:us-east-1:0:task/sandbox/abc123") == "abc123"
    assert iam.credentials_id("http://169.254.170.2:4566/v2/credentials/1234-5678") == "1234-5678"


def test_task_credentials_need_a_known_id_and_the_tasks_token(monkeypatch):
    monkeypatch.setitem(iam._credentials, "cred-1", {"role": ROLE + "data", "token": "secret-token",
                                                     "task": "arn:aws:ecs:us-east-1:0:task/c/t1"})
    status, doc = iam.task_credentials("cred-2", "secret-token")
    assert (status, doc["code"]) == (400, "InvalidIdInRequest")
    status, doc = iam.task_credentials("cred-1", "another-token")
    assert (status, doc["code"]) == (400, "InvalidAuthorizationToken")


def test_task_credentials_are_issued_without_holding_the_table_lock(monkeypatch):
    # Issuing registers an STS session, which writes the saved state; the state saver reads the
    # credentials table under its own lock. Holding the table's lock here deadlocked the emulator.
    issued = []

    def new_session(role_arn, task_arn):
        assert not iam._credentials_lock.locked()
        issued.append((role_arn, task_arn))
        return {"AccessKeyId": f"ASIA{len(issued)}", "SecretAccessKey": "s", "Token": "t",
                "expires": __import__("time").time() + iam.CREDENTIALS_SECONDS}

    monkeypatch.setattr(iam, "_new_session", new_session)
    monkeypatch.setattr(iam, "auth_enabled", lambda: False)
    monkeypatch.setitem(iam._credentials, "cred-1", {"role": ROLE + "data", "token": "secret-token",
                                                     "task": "arn:aws:ecs:us-east-1:0:task/c/t1"})
    first = iam.task_credentials("cred-1", "secret-token")
    again = iam.task_credentials("cred-1", "secret-token")
    assert first == again and first[0] == 200 and first[1]["AccessKeyId"] == "ASIA1"
    assert issued == [(ROLE + "data", "arn:aws:ecs:us-east-1:0:task/c/t1")]  # renewed only near expiry


def test_airflow_gets_the_projects_airflow_role_with_its_token_only(monkeypatch):
    monkeypatch.setattr(iam, "_new_session", lambda role_arn, task_arn: {
        "AccessKeyId": f"ASIA-{role_arn.rsplit('/', 1)[-1]}", "SecretAccessKey": "s", "Token": "t",
        "expires": __import__("time").time() + iam.CREDENTIALS_SECONDS, "role": role_arn})
    monkeypatch.setattr(iam, "auth_enabled", lambda: False)
    monkeypatch.setattr(iam, "_credentials", {})
    monkeypatch.delenv("SANDBOX_AIRFLOW_CREDENTIALS_TOKEN", raising=False)
    assert iam.task_credentials("airflow", "")[1]["code"] == "InvalidIdInRequest"  # no token set: no endpoint
    monkeypatch.setenv("SANDBOX_AIRFLOW_CREDENTIALS_TOKEN", "airflow-token")
    monkeypatch.setenv("SANDBOX_AIRFLOW_ROLE_ARN", ROLE + "airflow-runner")
    assert iam.task_credentials("airflow", "guess")[1]["code"] == "InvalidAuthorizationToken"
    status, doc = iam.task_credentials("airflow", "airflow-token")
    assert (status, doc["RoleArn"], doc["AccessKeyId"]) == (200, ROLE + "airflow-runner", "ASIA-airflow-runner")
    # Another project's role (the emulator restarted with its environment): a new session for it.
    monkeypatch.setenv("SANDBOX_AIRFLOW_ROLE_ARN", ROLE + "genomics-airflow")
    assert iam.task_credentials("airflow", "airflow-token")[1]["AccessKeyId"] == "ASIA-genomics-airflow"
    monkeypatch.setenv("SANDBOX_AIRFLOW_ROLE_ARN", "")
    status, doc = iam.task_credentials("airflow", "airflow-token")
    assert status == 500 and "sets no aws.airflow_role" in doc["message"]
