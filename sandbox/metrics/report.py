"""A DAG run's report (the schema in sandbox/metrics/__init__.py): Airflow's task instances joined
with the sampler's records of the ECS tasks and pods they ran, then priced (pricing.py)."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sandbox.metrics import identity, pricing
from sandbox.metrics.store import Record
from sandbox.metrics.times import epoch

# Which backend a task instance used, by its operator (a subclass keeps its base's name in `operator`
# only if it sets custom_operator_name, so the sampler's own record decides whenever there is one).
OPERATOR_BACKENDS = {"EcsRunTaskOperator": "ecs", "KubernetesPodOperator": "k8s"}


def _iso(seconds: float | None) -> str | None:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat() if seconds is not None else None


def series(record: Record) -> dict:
    """Per-sample CPU (cores, over the interval since the previous sample) and working set (MiB)."""
    t, cpu, memory = [], [], []
    start = record.started_at or (record.samples[0][0] if record.samples else 0)
    for (t0, cpu0, _), (t1, cpu1, mem1) in zip(record.samples, record.samples[1:]):
        if t1 > t0:
            t.append(round(t1 - start, 3))
            cpu.append(round(max(0.0, (cpu1 - cpu0) / 1e9 / (t1 - t0)), 4))
            memory.append(round(mem1 / 2**20, 2))
    return {"t": t, "cpu_cores": cpu, "memory_mib": memory}


def task_row(ti: dict | None, record: Record | None) -> dict:
    ident = (record.identity if record else None) or {}
    operator = (ti or {}).get("operator") or (ti or {}).get("operator_name")
    measured = bool(record and len(record.samples) >= 2 and record.cpu_seconds is not None)
    row: dict[str, Any] = {
        "task_id": (ti or ident).get("task_id"),
        "map_index": (ti or ident).get("map_index", -1),
        "try_number": ident.get("try_number") if record else (ti or {}).get("try_number"),
        "state": (ti or {}).get("state") if ti and (not record or ident.get("try_number") == ti.get("try_number"))
        else ("ended" if record and record.ended else "running"),
        "operator": operator,
        "backend": record.backend if record else OPERATOR_BACKENDS.get(operator or ""),
        "resource": record.resource if record else None,
        "measured": measured,
        "final": bool(record and record.ended),  # False while the sampler still follows the task
        "started_at": _iso(record.started_at) if record else (ti or {}).get("start_date"),
        "ended_at": _iso(record.ended_at) if record else (ti or {}).get("end_date"),
        "requested": record.requested if record else None,
        "limits": record.limits if record else None,
        "wall_seconds": None, "cpu_seconds": None, "peak_memory_mib": None, "mean_cpu_cores": None,
        "samples": series(record) if measured else {"t": [], "cpu_cores": [], "memory_mib": []},
    }
    start, end = epoch(row["started_at"]), epoch(row["ended_at"])
    if start is not None and end is not None and end >= start:
        row["wall_seconds"] = round(end - start, 3)
    if measured:
        row["cpu_seconds"] = round(record.cpu_seconds, 3)
        row["peak_memory_mib"] = round(record.peak_memory_mib, 2)
        if row["wall_seconds"]:
            row["mean_cpu_cores"] = round(row["cpu_seconds"] / row["wall_seconds"], 4)
    return row


def build(dag_run: dict, task_instances: list[dict], records: list[Record], prices: pricing.Prices,
          *, interval: float, sampler_up: bool) -> dict:
    """`dag_run` and `task_instances` as Airflow's REST API returns them; `records` the sampler's
    for this run (any try)."""
    by_try = {(r.identity["task_id"], r.identity["map_index"], r.identity["try_number"]): r
              for r in records if r.identity}
    rows = []
    for ti in sorted(task_instances, key=lambda t: (t["task_id"], t.get("map_index", -1))):
        tries = sorted(k for k in by_try if k[:2] == (ti["task_id"], ti.get("map_index", -1)))
        for key in tries:
            rows.append(task_row(ti, by_try.pop(key)))
        if not any(k[2] == ti.get("try_number") for k in tries) and ti.get("state") not in (None, "skipped",
                                                                                          "upstream_failed", "removed"):
            rows.append(task_row(ti, None))
    rows += [task_row(None, r) for r in by_try.values()]  # a try Airflow no longer lists

    measured = sum(1 for r in rows if r["measured"])
    runtime_rows = [r for r in rows if r["backend"]]
    if not sampler_up:
        note = "the metrics service is not running: nothing of this run was measured (`make up` starts it)"
    elif runtime_rows and not measured:
        note = ("no ECS task or pod of this run was measured: the metrics service was down or started after "
                "the run, or the tasks ran on a cluster it cannot see")
    else:
        note = (f"each ECS task's and pod's cgroup sampled every {interval:g} s; CPU and memory include "
                "every container of the task (for a pod: Airflow's XCom sidecar too)")
    start, end = epoch(dag_run.get("start_date")), epoch(dag_run.get("end_date"))
    report = {
        "dag_id": dag_run["dag_id"], "run_id": dag_run["dag_run_id"], "state": dag_run.get("state"),
        "start": dag_run.get("start_date"), "end": dag_run.get("end_date"),
        "wall_seconds": round(end - start, 3) if start and end else None,
        "sampler": {"interval_seconds": interval, "measured_tasks": measured,
                    "unmeasured_tasks": sum(1 for r in runtime_rows if not r["measured"]), "note": note},
        "tasks": rows,
    }
    return pricing.run_costs(report, prices)


def for_run(records: list[Record], dag_id: str, run_id: str) -> list[Record]:
    return [r for r in records if r.identity and r.identity.get("dag_id") == dag_id
            and identity.same_run(r.identity.get("run_id"), run_id)]
