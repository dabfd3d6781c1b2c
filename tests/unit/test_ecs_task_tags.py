"""The sandbox's Airflow local settings: every EcsRunTaskOperator tags its ECS task with its task try,
as strings whatever the DAG renders (the metrics service reads them back)."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest

from sandbox.metrics.identity import from_ecs_tags

pytestmark = pytest.mark.unit
SETTINGS = Path(__file__).resolve().parents[2] / "airflow" / "config" / "airflow_local_settings.py"


@pytest.fixture
def local_settings():
    spec = importlib.util.spec_from_file_location("airflow_local_settings_under_test", SETTINGS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def operator_classes():
    class BaseOperator:
        def execute(self, context):  # what RunTask would be sent
            return self.tags

    class EcsRunTaskOperator(BaseOperator):  # the provider's name is what the policy looks for
        def __init__(self, tags=None):
            self.tags = tags

    class MyEcsOperator(EcsRunTaskOperator):
        pass

    return BaseOperator, EcsRunTaskOperator, MyEcsOperator


TI = SimpleNamespace(dag_id="import_vcf", run_id="manual__2026-11-25T10:00:00+00:00", task_id="ecs_case",
                     map_index=7, try_number=2)


def test_ecs_tasks_carry_their_task_try_as_strings(local_settings):
    _, ecs_operator, _ = operator_classes()
    task = ecs_operator(tags={"team": "genomics"})
    local_settings.task_policy(task)
    sent = dict(task.execute({"ti": TI}))
    assert sent["team"] == "genomics"
    assert all(isinstance(v, str) for v in sent.values())
    assert from_ecs_tags([{"key": k, "value": v} for k, v in sent.items()]) == {
        "dag_id": "import_vcf", "run_id": TI.run_id, "task_id": "ecs_case", "map_index": 7, "try_number": 2}


def test_mapped_and_subclassed_operators_are_tagged_once(local_settings):
    base, ecs_operator, subclass = operator_classes()
    mapped = SimpleNamespace(operator_class=subclass, partial_kwargs={})
    local_settings.task_policy(mapped)
    local_settings.task_policy(ecs_operator())  # again: the class is wrapped only once
    sent = dict(subclass().execute({"ti": TI}))
    assert sent["airflow:map_index"] == "7" and sent["airflow:try_number"] == "2"
    assert base.execute is not ecs_operator.execute and not hasattr(base.execute, "sandbox_tags")


def test_other_operators_and_templated_tags_are_left_alone(local_settings):
    base, ecs_operator, _ = operator_classes()
    other = base()
    other.tags = None
    local_settings.task_policy(other)
    assert other.execute({"ti": TI}) is None
    templated = ecs_operator(tags="{{ var.json.tags }}")  # not a dict (yet): left as the DAG wrote it
    local_settings.task_policy(templated)
    assert templated.execute({"ti": TI}) == "{{ var.json.tags }}"
