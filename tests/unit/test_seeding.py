"""The comparisons that make seeding idempotent."""
from __future__ import annotations

import pytest

from sandbox.core.airflow_api import _same_field
from sandbox.seeding.seed_airflow import connection_body
from sandbox.seeding.seed_aws import _contains, trust_policy

pytestmark = pytest.mark.unit


def test_registered_task_definition_with_ecs_defaults_still_matches():
    desired = {"family": "f", "cpu": "256", "containerDefinitions": [{"name": "c", "command": ["a"]}]}
    returned = {"family": "f", "cpu": "256", "revision": 3, "status": "ACTIVE",
                "containerDefinitions": [{"name": "c", "command": ["a"], "portMappings": [], "cpu": 0}]}
    assert _contains(returned, desired)


@pytest.mark.parametrize("change", [
    lambda td: td["containerDefinitions"][0].update(command=["b"]),
    lambda td: td.update(cpu="512"),
    lambda td: td["containerDefinitions"].append({"name": "d"}),
])
def test_any_configured_difference_means_a_new_revision(change):
    desired = {"family": "f", "cpu": "256", "containerDefinitions": [{"name": "c", "command": ["a"]}]}
    returned = {"family": "f", "cpu": "256", "containerDefinitions": [{"name": "c", "command": ["a"]}]}
    change(desired)
    assert not _contains(returned, desired)


def test_numbers_compare_with_their_string_form():
    assert _contains({"memory": 512}, {"memory": "512"})


def test_trust_policy_lists_services_and_accounts():
    policy = trust_policy({"trusted_services": ["ecs-tasks.amazonaws.com"], "trusted_accounts": ["{account_id}"]},
                          "000000000000")
    principals = [s["Principal"] for s in policy["Statement"]]
    assert {"Service": ["ecs-tasks.amazonaws.com"]} in principals
    assert {"AWS": ["arn:aws:iam::000000000000:root"]} in principals


def test_connection_extra_is_sent_as_json_and_compared_parsed():
    body = connection_body({"conn_id": "aws_default", "conn_type": "aws", "extra": {"b": 1, "a": "x"}})
    assert body == {"connection_id": "aws_default", "conn_type": "aws", "extra": '{"a": "x", "b": 1}'}
    assert _same_field('{"b": 1, "a": "x"}', body["extra"])
    assert not _same_field('{"a": "x"}', body["extra"])
