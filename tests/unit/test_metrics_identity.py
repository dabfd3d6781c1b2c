"""identity.py: which Airflow task try an ECS task (its tags) or a pod (its labels) belongs to, run ids
in KubernetesPodOperator's label-safe form, and the sizes each asked for."""
from __future__ import annotations

import pytest

from sandbox.metrics.identity import (ecs_requested, from_ecs_tags, from_pod_labels, k8s_cpu, k8s_memory_mib,
                                      pod_resources, safe_label, same_run)

pytestmark = pytest.mark.unit


# Outputs of cncf.kubernetes' make_safe_label_value for the same inputs.
@pytest.mark.parametrize("value, label", [
    ("manual__2024-01-01T00:00:00+00:00", "manual__2024-01-01T0000000000-701821d7a"),
    ("scheduled__2025-06-01T00:00:00+00:00", "scheduled__2025-06-01T0000000000-62a051894"),
    ("my_dag", "my_dag"),
])
def test_safe_label_matches_kubernetes_pod_operator(value, label):
    assert safe_label(value) == label


def test_safe_label_shortens_long_values_to_63():
    label = safe_label("a" * 80)
    assert len(label) == 63
    assert label.startswith("a" * 53 + "-")


def test_same_run_raw_and_label_safe():
    run_id = "manual__2024-01-01T00:00:00+00:00"
    assert same_run(run_id, run_id)
    assert same_run("manual__2024-01-01T0000000000-701821d7a", run_id)
    assert not same_run("scheduled__2025-06-01T0000000000-62a051894", run_id)
    assert not same_run(None, run_id)


def tags(**values) -> list[dict]:
    return [{"key": f"airflow:{k}", "value": v} for k, v in values.items()]


def test_from_ecs_tags_ignores_user_tags():
    found = from_ecs_tags([{"key": "team", "value": "data"}, {"key": "dag_id", "value": "not-airflows"}]
                          + tags(dag_id="etl", run_id="manual__x", task_id="load", map_index="2", try_number="3"))
    assert found == {"dag_id": "etl", "run_id": "manual__x", "task_id": "load", "map_index": 2, "try_number": 3}


def test_from_ecs_tags_map_index_defaults_to_minus_one_and_try_to_none():
    found = from_ecs_tags(tags(dag_id="etl", run_id="r", task_id="load"))
    assert found == {"dag_id": "etl", "run_id": "r", "task_id": "load", "map_index": -1, "try_number": None}


def test_from_ecs_tags_bad_numbers_take_the_defaults():
    found = from_ecs_tags(tags(dag_id="etl", run_id="r", task_id="t", map_index="x", try_number=""))
    assert (found["map_index"], found["try_number"]) == (-1, None)


@pytest.mark.parametrize("missing", ["dag_id", "run_id", "task_id"])
def test_from_ecs_tags_missing_field_is_none(missing):
    values = {"dag_id": "etl", "run_id": "r", "task_id": "t", "try_number": "1"}
    del values[missing]
    assert from_ecs_tags(tags(**values)) is None


def test_from_ecs_tags_no_tags():
    assert from_ecs_tags(None) is None
    assert from_ecs_tags([]) is None


def test_from_pod_labels_of_a_kpo_pod():
    labels = {"kubernetes_pod_operator": "True", "dag_id": "etl", "task_id": "transform",
              "run_id": "manual__2024-01-01T0000000000-701821d7a", "try_number": "2", "airflow_version": "2.9.3"}
    assert from_pod_labels(labels) == {"dag_id": "etl", "run_id": "manual__2024-01-01T0000000000-701821d7a",
                                       "task_id": "transform", "map_index": -1, "try_number": 2}


def test_from_pod_labels_mapped_task():
    labels = {"kubernetes_pod_operator": "True", "dag_id": "d", "task_id": "t", "run_id": "r",
              "map_index": "4", "try_number": "1"}
    assert from_pod_labels(labels)["map_index"] == 4


def test_from_pod_labels_not_a_kpo_pod():
    assert from_pod_labels({"app": "web", "dag_id": "etl", "task_id": "t", "run_id": "r"}) is None
    assert from_pod_labels(None) is None


@pytest.mark.parametrize("value, cores", [
    ("250m", 0.25), ("1", 1.0), (1, 1.0), ("0.5", 0.5), (0.5, 0.5), ("1500m", 1.5),
    (None, None), ("", None), ("two", None), ("1k", None),
])
def test_k8s_cpu(value, cores):
    assert k8s_cpu(value) == cores


@pytest.mark.parametrize("value, mib", [
    ("128Mi", 128.0), ("2Gi", 2048.0), ("512Ki", 0.5), ("1G", 1e9 / 2**20), ("512M", 512e6 / 2**20),
    ("134217728", 128.0), (134217728, 128.0), ("1.5Gi", 1536.0),
])
def test_k8s_memory_mib(value, mib):
    assert k8s_memory_mib(value) == pytest.approx(mib)


@pytest.mark.parametrize("value", [None, "", "12Q", "lots", "-1Mi"])
def test_k8s_memory_mib_not_a_quantity(value):
    assert k8s_memory_mib(value) is None


def pod(*containers) -> dict:
    return {"spec": {"containers": list(containers)}}


def test_pod_resources_sums_task_containers_not_the_xcom_sidecar():
    p = pod({"name": "base", "resources": {"requests": {"cpu": "250m", "memory": "128Mi"},
                                           "limits": {"cpu": "1", "memory": "1Gi"}}},
            {"name": "helper", "resources": {"requests": {"cpu": "0.5"}}},
            {"name": "airflow-xcom-sidecar", "resources": {"requests": {"cpu": "1m", "memory": "10Mi"},
                                                          "limits": {"cpu": "8", "memory": "8Gi"}}})
    assert pod_resources(p, "requests") == {"cpu_vcpu": 0.75, "memory_mib": 128.0}
    assert pod_resources(p, "limits") == {"cpu_vcpu": 1.0, "memory_mib": 1024.0}


def test_pod_resources_none_when_no_container_sets_any():
    p = pod({"name": "base", "resources": {}}, {"name": "other"},
            {"name": "airflow-xcom-sidecar", "resources": {"requests": {"cpu": "1m", "memory": "10Mi"}}})
    assert pod_resources(p, "requests") is None
    assert pod_resources(p, "limits") is None
    assert pod_resources({}, "requests") is None


def test_pod_resources_memory_only():
    p = pod({"name": "base", "resources": {"limits": {"memory": "256Mi"}}})
    assert pod_resources(p, "limits") == {"cpu_vcpu": None, "memory_mib": 256.0}


@pytest.mark.parametrize("cpu, memory", [("1024", "2048"), (1024, 2048), ("1 vCPU", "2 GB"), ("1 vcpu", "2 gb")])
def test_ecs_requested(cpu, memory):
    assert ecs_requested({"cpu": cpu, "memory": memory}) == {"cpu_vcpu": 1.0, "memory_mib": 2048.0}


def test_ecs_requested_quarter_vcpu_and_missing():
    assert ecs_requested({"cpu": "256", "memory": "0.5 GB"}) == {"cpu_vcpu": 0.25, "memory_mib": 512.0}
    assert ecs_requested({}) == {"cpu_vcpu": None, "memory_mib": None}
