"""A DAG run's report (the schema in sandbox/metrics/__init__.py): Airflow's task instances joined
with the sampler's records of the ECS tasks and pods they ran, then priced (pricing.py)."""
from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any

from sandbox.metrics import identity, pricing
from sandbox.metrics.store import Record
from sandbox.metrics.times import epoch, utc_clock

# Which backend a task instance used, by its operator (a subclass keeps its base's name in `operator`
# only if it sets custom_operator_name, so the sampler's own record decides whenever there is one).
OPERATOR_BACKENDS = {"EcsRunTaskOperator": "ecs", "KubernetesPodOperator": "k8s"}
BACKEND_TRIES = {"ecs": ("ECS task try", "ECS task tries"), "k8s": ("pod try", "pod tries")}


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


def failure_sentence(period: dict, during: str = "this run") -> str:
    """A period a watch did not work (health.py's `during`) as a report says it."""
    span = f"from {utc_clock(period['since'])} " + (f"to {utc_clock(period['until'])}" if period.get("until")
                                                      else "on, and still now")
    if period["state"] == "off":
        text = f"there was no {period['what']} during {during} ({span}): "
    else:
        text = f"the {period['what']} was failing during {during} ({span}): "
    text += "; then ".join(period["reasons"])
    if period.get("detail"):
        text += f" ({period['detail']})"
    if period.get("ended_by"):
        text += f"; it ended when {period['ended_by']}"
    return text


def unmeasured_note(rows: list[dict], failures: list[dict]) -> str | None:
    """Why the run's unmeasured tries were not measured, from the periods during the run that
    something they depend on was not working; None when no such period concerns their backends."""
    unmeasured: dict[str, int] = {}
    for row in rows:
        if row["backend"] and not row["measured"]:
            unmeasured[row["backend"]] = unmeasured.get(row["backend"], 0) + 1
    relevant = [p for p in sorted(failures, key=lambda p: p["since"]) if set(p["backends"]) & set(unmeasured)]
    if not relevant:
        return None
    explained = {b: n for b, n in unmeasured.items() if any(b in p["backends"] for p in relevant)}
    sentences = "; ".join(failure_sentence(p) for p in relevant)
    note = f"{_tries(explained)} of this run {_was(explained)} not measured: {sentences}"
    unexplained = {b: n for b, n in unmeasured.items() if b not in explained}
    if unexplained:
        note += (f"; {_tries(unexplained)} {_was(unexplained)} not measured for a reason the metrics "
                 "service did not record")
    return note


def try_reason(row: dict, failures: list[dict]) -> str | None:
    """Why one unmeasured try was not measured: the periods of its backend's watches that overlap
    the try's own times (Airflow's, when the sampler has no record of it), or the run's without them."""
    start, end = epoch(row["started_at"]) or -math.inf, epoch(row["ended_at"]) or math.inf

    def overlaps(period: dict) -> bool:
        return period["since"] <= end and (period["until"] is None or period["until"] >= start)
    concerned = [p for p in sorted(failures, key=lambda p: p["since"]) if row["backend"] in p["backends"]]
    return "; ".join(failure_sentence(p, "this try") for p in concerned if overlaps(p)) or None


def _tries(counts: dict[str, int]) -> str:
    """{"ecs": 1, "k8s": 32} -> "1 ECS task try and 32 pod tries"."""
    return " and ".join(f"{n} {BACKEND_TRIES[b][n != 1]}" for b, n in sorted(counts.items()))


def _was(counts: dict[str, int]) -> str:
    return "was" if sum(counts.values()) == 1 else "were"


def build(dag_run: dict, task_instances: list[dict], records: list[Record], prices: pricing.Prices,
          *, interval: float, sampler_up: bool, failures: list[dict] = ()) -> dict:
    """`dag_run` and `task_instances` as Airflow's REST API returns them; `records` the sampler's
    for this run (any try); `failures` the periods during the run that something the sampler
    depends on did not work (health.py's `WatchHealth.during`), which say why tries went unmeasured."""
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

    for row in rows:
        row["reason"] = try_reason(row, list(failures)) if row["backend"] and not row["measured"] else None
    measured = sum(1 for r in rows if r["measured"])
    runtime_rows = [r for r in rows if r["backend"]]
    explained = unmeasured_note(rows, list(failures))
    if not sampler_up:
        note = "the metrics service is not running: nothing of this run was measured (`make up` starts it)"
    elif explained:
        note = explained
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
