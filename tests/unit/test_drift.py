"""`make drift`'s comparisons: policy statements however written, a statement added by hand named
in one line, and the fields where a task definition's latest revision differs from sandbox.yaml's."""
from __future__ import annotations

import pytest

from sandbox.seeding.objects.iam_roles import describe_statement, statement_changes, statements
from sandbox.seeding.objects.task_definitions import differing_fields

pytestmark = pytest.mark.unit

DOC = {"Version": "2012-10-17", "Statement": [
    {"Sid": "Read", "Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"],
     "Resource": ["arn:aws:s3:::data", "arn:aws:s3:::data/*"]}]}


def test_one_statement_written_two_ways_is_the_same():
    rewritten = {"Statement": {"Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetObject"],
                               "Resource": ["arn:aws:s3:::data/*", "arn:aws:s3:::data"]}}
    assert statements(rewritten) == statements(DOC)
    assert statement_changes(DOC, rewritten) == []


def test_a_statement_added_by_hand_is_named():
    live = {**DOC, "Statement": [*DOC["Statement"], {"Effect": "Allow", "Action": "s3:DeleteObject",
                                                    "Resource": "arn:aws:s3:::data/*"}]}
    assert statement_changes(DOC, live) == ["statement added: Allow s3:DeleteObject on arn:aws:s3:::data/*"]
    assert statement_changes(live, DOC) == ["statement missing: Allow s3:DeleteObject on arn:aws:s3:::data/*"]


def test_a_statement_reads_in_one_line():
    statement = {"Effect": "Allow", "Action": "iam:PassRole", "Resource": ["arn:aws:iam::1:role/x"],
                 "Condition": {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}}
    assert describe_statement(statements({"Statement": [statement]})[0]) == (
        'Allow iam:PassRole on arn:aws:iam::1:role/x if {"StringEquals": {"iam:PassedToService": '
        '"ecs-tasks.amazonaws.com"}}')


def test_the_fields_a_revision_differs_in():
    desired = {"family": "f", "cpu": "256", "containerDefinitions": [{"name": "c", "command": ["a"]}]}
    latest = {"family": "f", "cpu": "512", "revision": 4, "containerDefinitions": [
        {"name": "c", "command": ["b"], "portMappings": []}]}
    assert differing_fields(latest, desired) == ["cpu", "containerDefinitions[0].command[0]"]
    assert differing_fields({**latest, "cpu": 256, "containerDefinitions": [{"name": "c", "command": ["a"]}]},
                            desired) == []
