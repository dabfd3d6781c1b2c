"""The comparisons that make seeding idempotent."""
from __future__ import annotations

import pytest

from sandbox.core.airflow_api import _same_field
from sandbox.host.settings import ROOT
from sandbox.seeding.config import load_config
from sandbox.seeding.seed_airflow import (EMULATOR_CLIENT_CONFIG, connection_body, generated_connections,
                                          with_emulator_retries)
from sandbox.seeding.objects.iam_roles import trust_policy
from sandbox.seeding.objects.task_definitions import contains
from sandbox.seeding.seed_k8s import secret_values

pytestmark = pytest.mark.unit


def test_registered_task_definition_with_ecs_defaults_still_matches():
    desired = {"family": "f", "cpu": "256", "containerDefinitions": [{"name": "c", "command": ["a"]}]}
    returned = {"family": "f", "cpu": "256", "revision": 3, "status": "ACTIVE",
                "containerDefinitions": [{"name": "c", "command": ["a"], "portMappings": [], "cpu": 0}]}
    assert contains(returned, desired)


@pytest.mark.parametrize("change", [
    lambda td: td["containerDefinitions"][0].update(command=["b"]),
    lambda td: td.update(cpu="512"),
    lambda td: td["containerDefinitions"].append({"name": "d"}),
])
def test_any_configured_difference_means_a_new_revision(change):
    desired = {"family": "f", "cpu": "256", "containerDefinitions": [{"name": "c", "command": ["a"]}]}
    returned = {"family": "f", "cpu": "256", "containerDefinitions": [{"name": "c", "command": ["a"]}]}
    change(desired)
    assert not contains(returned, desired)


def test_numbers_compare_with_their_string_form():
    assert contains({"memory": 512}, {"memory": "512"})


def test_trust_policy_lists_services_and_accounts():
    policy = trust_policy({"trusted_services": ["ecs-tasks.amazonaws.com"], "trusted_accounts": ["{account_id}"]},
                          "000000000000")
    principals = [s["Principal"] for s in policy["Statement"]]
    assert {"Service": ["ecs-tasks.amazonaws.com"]} in principals
    assert {"AWS": ["arn:aws:iam::000000000000:root"]} in principals


def test_service_accounts_are_trusted_through_the_clusters_oidc_issuer():
    role = {"trusted_service_accounts": ["airflow-tasks/default", "team/runner"]}
    policy = trust_policy(role, "000000000000", "https://kubernetes.default.svc.cluster.local")
    [statement] = policy["Statement"]
    host = "kubernetes.default.svc.cluster.local"
    assert statement["Principal"] == {"Federated": f"arn:aws:iam::000000000000:oidc-provider/{host}"}
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Condition"] == {"StringEquals": {f"{host}:sub": [
        "system:serviceaccount:airflow-tasks:default", "system:serviceaccount:team:runner"]}}
    no_cluster = trust_policy(role, "000000000000", None)["Statement"]
    assert no_cluster == [{"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]


def test_the_pods_secret_gets_the_role_and_token_file():
    config = load_config(ROOT / "sandbox.yaml")
    values = secret_values(config, "aws-task-env")
    assert values["AWS_ROLE_ARN"] == "arn:aws:iam::000000000000:role/pod-task-data"
    assert values["AWS_WEB_IDENTITY_TOKEN_FILE"] == "/var/run/secrets/kubernetes.io/serviceaccount/token"
    assert "AWS_ACCESS_KEY_ID" not in values


def test_connection_extra_is_sent_as_json_and_compared_parsed():
    body = connection_body({"conn_id": "aws_default", "conn_type": "aws", "extra": {"b": 1, "a": "x"}})
    assert body == {"connection_id": "aws_default", "conn_type": "aws", "extra": '{"a": "x", "b": 1}'}
    assert _same_field('{"b": 1, "a": "x"}', body["extra"])
    assert not _same_field('{"a": "x"}', body["extra"])


def test_aws_default_is_generated_for_a_project_that_does_not_declare_it():
    config = load_config(ROOT / "sandbox.yaml")
    assert generated_connections(config) == []  # the checkout's project declares its own
    config.connections = [c for c in config.connections if c["conn_id"] != "aws_default"]
    config.region = "eu-west-1"
    (conn,) = generated_connections(config)
    assert conn["conn_id"] == "aws_default" and conn["conn_type"] == "aws"
    # No keys and no role_arn: it acts as Airflow's containers do, as aws.airflow_role.
    assert "login" not in conn and "password" not in conn
    assert conn["extra"] == {"region_name": "eu-west-1", "endpoint_url": "http://localstack:4566"}


def test_aws_connections_retry_connection_errors_unless_they_configure_their_clients():
    conn = with_emulator_retries({"conn_id": "a", "conn_type": "aws", "extra": {"region_name": "x"}})
    assert conn["extra"] == {"region_name": "x", "config_kwargs": EMULATOR_CLIENT_CONFIG}
    assert EMULATOR_CLIENT_CONFIG["retries"]["mode"] == "standard"  # legacy mode gives up within seconds
    own = {"conn_id": "a", "conn_type": "aws", "extra": {"config_kwargs": {"read_timeout": 5}}}
    assert with_emulator_retries(own) == own
    assert with_emulator_retries({"conn_id": "pg", "conn_type": "postgres"}) == {"conn_id": "pg", "conn_type": "postgres"}
