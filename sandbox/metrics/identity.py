"""Which Airflow task try an ECS task or a pod belongs to, and what it asked for.

ECS tasks carry `airflow:*` tags (airflow/config/airflow_local_settings.py adds them to every
EcsRunTaskOperator); KubernetesPodOperator labels its pods with dag_id, task_id, run_id, map_index
and try_number, values made label-safe (a run id such as `manual__2026-…+00:00` is shortened and
hashed), so run ids are compared in that form too.
"""
from __future__ import annotations

import hashlib
import re

from sandbox.core.ecs_tags import ECS_TAG_PREFIX, TASK_TRY_FIELDS
from sandbox.core.ecs_rules import parse_cpu, parse_memory

FIELDS = TASK_TRY_FIELDS
XCOM_SIDECAR = "airflow-xcom-sidecar"
_MAX_LABEL_LEN = 63


def safe_label(value: str) -> str:
    """KubernetesPodOperator's make_safe_label_value (cncf.kubernetes pod_generator)."""
    safe = re.sub(r"^[^a-z0-9A-Z]*|[^a-zA-Z0-9_\-\.]|[^a-z0-9A-Z]*$", "", value)
    if len(safe) > _MAX_LABEL_LEN or value != safe:
        digest = hashlib.md5(value.encode()).hexdigest()[:9]
        safe = safe[: _MAX_LABEL_LEN - len(digest) - 1] + "-" + digest
    return safe


def same_run(recorded: str | None, run_id: str) -> bool:
    return recorded is not None and recorded in (run_id, safe_label(run_id))


def _typed(found: dict) -> dict | None:
    if not all(found.get(k) for k in ("dag_id", "run_id", "task_id")):
        return None
    ident = {k: found.get(k) for k in FIELDS}
    for key, default in (("map_index", -1), ("try_number", None)):
        try:
            ident[key] = int(ident[key]) if ident[key] not in (None, "") else default
        except ValueError:
            ident[key] = default
    return ident


def from_ecs_tags(tags: list[dict] | None) -> dict | None:
    """`[{key, value}]` as DescribeTasks returns them -> the Airflow task try, or None."""
    values = {t.get("key", "")[len(ECS_TAG_PREFIX):]: t.get("value")
              for t in tags or [] if t.get("key", "").startswith(ECS_TAG_PREFIX)}
    return _typed(values)


def from_pod_labels(labels: dict | None) -> dict | None:
    return _typed(dict(labels or {})) if (labels or {}).get("kubernetes_pod_operator") else None


def ecs_requested(task: dict) -> dict:
    """The task size ECS bills on Fargate (DescribeTasks' task-level cpu and memory)."""
    cpu = parse_cpu(task.get("cpu"))
    memory = parse_memory(task.get("memory"))
    return {"cpu_vcpu": cpu / 1024 if cpu else None, "memory_mib": float(memory) if memory else None}


_CPU = re.compile(r"^(\d+(?:\.\d+)?)(m?)$")
_MEMORY_UNITS = {"": 1 / 2**20, "k": 1e3 / 2**20, "M": 1e6 / 2**20, "G": 1e9 / 2**20,
                 "Ki": 1 / 1024, "Mi": 1, "Gi": 1024, "Ti": 1024 ** 2}


def k8s_cpu(value) -> float | None:
    match = _CPU.match(str(value)) if value is not None else None
    return None if not match else float(match.group(1)) / (1000 if match.group(2) else 1)


def k8s_memory_mib(value) -> float | None:
    match = re.match(r"^(\d+(?:\.\d+)?)([A-Za-z]*)$", str(value)) if value is not None else None
    if not match or match.group(2) not in _MEMORY_UNITS:
        return None
    return float(match.group(1)) * _MEMORY_UNITS[match.group(2)]


def pod_resources(pod: dict, kind: str) -> dict | None:
    """Sum of the task's containers' requests or limits (the XCom sidecar is Airflow's, not the
    task's); None when no container sets any."""
    cpu = memory = 0.0
    seen = False
    for container in pod.get("spec", {}).get("containers", []):
        if container.get("name") == XCOM_SIDECAR:
            continue
        values = (container.get("resources") or {}).get(kind) or {}
        c, m = k8s_cpu(values.get("cpu")), k8s_memory_mib(values.get("memory"))
        seen = seen or c is not None or m is not None
        cpu += c or 0
        memory += m or 0
    return {"cpu_vcpu": cpu or None, "memory_mib": memory or None} if seen else None
