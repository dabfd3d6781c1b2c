"""What a DAG run's tasks would cost on AWS: on Fargate (ECS tasks), on EKS nodes (pods) and on MWAA.

The price table is sandbox.yaml's `prices:` (every key optional; DEFAULT_PRICES fills the rest). Each
cost is {"usd": float, "formula": str}, the formula showing the arithmetic with the numbers used, so
a reader can check it against AWS's pricing pages. Standard library only, and no import of the seed
config: config.py calls `validate_prices` with its own `fail` callback.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import yaml

from sandbox.core.ecs_rules import FARGATE_SIZES
from sandbox.metrics.times import moment

Fail = Callable[[str, str], None]  # (field path, what to do)

# EKS on Fargate adds this much memory to a pod's requests for the kubelet, kube-proxy and containerd
# before rounding to a Fargate size (https://docs.aws.amazon.com/eks/latest/userguide/fargate-pod-configuration.html).
EKS_FARGATE_OVERHEAD_MIB = 256
# Right-sizing keeps memory 20% above the measured peak: one run's peak is not the worst case, and a
# container over its memory is killed. CPU is sized to the mean: over it, a task is slowed, not killed.
MEMORY_HEADROOM = 1.2


def _price(default: Any, what: str, positive: bool = False, pattern: str = r".+") -> Any:
    """A price table field: `what` it is (said in error messages); `positive` where it is divided by."""
    return field(default=default, metadata={"what": what, "positive": positive, "pattern": pattern})


@dataclass(frozen=True)
class FargatePrices:
    """Linux/x86 Fargate: the requested task size, billed per second with a minimum."""
    vcpu_hour: float = _price(0.04048, "USD per vCPU-hour")
    gb_hour: float = _price(0.004445, "USD per GB-hour")
    minimum_seconds: int = _price(60, "the seconds a task is billed at least")


@dataclass(frozen=True)
class EksPrices:
    """An EKS cluster's fee and the on-demand EC2 node its pods share."""
    cluster_hour: float = _price(0.10, "USD per cluster-hour")
    node_type: str = _price("m5.large", "the EC2 instance type node_hour is the price of, e.g. m5.large")
    node_vcpu: int = _price(2, "vCPUs of one node", positive=True)
    node_memory_gib: float = _price(8.0, "GiB of memory of one node", positive=True)
    node_hour: float = _price(0.096, "USD per node-hour (EC2 on-demand)")


@dataclass(frozen=True)
class MwaaPrices:
    """An MWAA environment (scheduler, web server, `included_workers`) and its extra workers."""
    environment_class: str = _price("mw1.small", "the MWAA environment class, e.g. mw1.small")
    environment_hour: float = _price(0.49, "USD per environment-hour")
    worker_hour: float = _price(0.055, "USD per additional worker-hour")
    tasks_per_worker: int = _price(5, "the tasks one worker runs at once", positive=True)
    worker_vcpu: int = _price(1, "vCPUs of one worker")
    worker_memory_gib: float = _price(2.0, "GiB of memory of one worker")
    included_workers: int = _price(1, "the workers the environment's price includes")


@dataclass(frozen=True)
class Prices:
    region: str = _price("us-east-1", "an AWS region such as us-east-1", pattern=r"[a-z]{2}(-[a-z]+)+-\d")
    currency: str = _price("USD", "USD: the report's figures are US dollars, as AWS lists these prices",
                           pattern="USD")
    fargate: FargatePrices = field(default_factory=FargatePrices)
    eks: EksPrices = field(default_factory=EksPrices)
    mwaa: MwaaPrices = field(default_factory=MwaaPrices)


DEFAULT_PRICES = Prices()


# --- validation ---------------------------------------------------------------------------------
def validate_prices(value: Any, where: str, fail: Fail) -> Prices:
    """sandbox.yaml's `prices:`. Reports each problem through `fail(field path, message)` and returns the
    table with DEFAULT_PRICES for every key left out (or wrong, after reporting it)."""
    return _validated(Prices, value, where, fail)


def load_prices(path: Path) -> Prices:
    """The `prices:` of a sandbox.yaml, checked (ValueError naming each problem), without the rest."""
    raw = (yaml.safe_load(path.read_text()) or {}).get("prices")
    problems: list[str] = []
    prices = validate_prices(raw, "prices", lambda where, message: problems.append(f"{where}: {message}"))
    if problems:  # `make up` refuses these too; this names an edit made since
        raise ValueError(f"{path}: " + "; ".join(problems))
    return prices


def _validated(cls: type, value: Any, where: str, fail: Fail) -> Any:
    names = [f.name for f in dataclasses.fields(cls)]
    if value is None:
        return cls()
    if not isinstance(value, dict):
        fail(where, f"expected a mapping of {', '.join(names)}, found {_found(value)}")
        return cls()
    for key in value:
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            fail(f"{where}.{key}", f"unknown field; {f'did you mean {close[0]}? ' if close else ''}"
                                   f"expected one of: {', '.join(sorted(names))}")
    given = {}
    for f in dataclasses.fields(cls):
        if f.name not in value:
            continue
        if dataclasses.is_dataclass(f.default_factory):  # a section: fargate, eks, mwaa
            given[f.name] = _validated(f.default_factory, value[f.name], f"{where}.{f.name}", fail)
        elif (checked := _checked(value[f.name], f"{where}.{f.name}", f, fail)) is not None:
            given[f.name] = checked
    return cls(**given)


def _checked(value: Any, where: str, f: dataclasses.Field, fail: Fail) -> Any:
    what, positive = f.metadata["what"], f.metadata["positive"]
    if f.type == "str":
        if isinstance(value, str) and re.fullmatch(f.metadata["pattern"], value):
            return value
        fail(where, f"expected {what}, found {_found(value)}")
        return None
    number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    whole = f.type == "int"
    if number and (isinstance(value, int) or not whole) and (value > 0 if positive else value >= 0):
        return value if whole else float(value)
    expected = (f"a whole number {'of at least 1' if positive else 'of 0 or more'}" if whole
                else f"a {'positive' if positive else 'non-negative'} number")
    unquote = "; write it without quotes" if isinstance(value, str) and _is_number(value) else ""
    fail(where, f"expected {expected} ({what}), found {_found(value)}{unquote}")
    return None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _found(value: Any) -> str:
    """A wrong value as config.py shows it: its YAML kind and the value, cut to a readable length."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    kind = {int: "number", float: "number", str: "text", list: "a list", dict: "a mapping"}.get(
        type(value), type(value).__name__)
    text = repr(value)
    return f"{kind} {text if len(text) <= 60 else text[:59] + '…'}"


# --- one task -----------------------------------------------------------------------------------
def fargate_size(cpu_vcpu: float, memory_mib: float, *, eks_overhead: bool = False) -> tuple[float, int]:
    """The smallest Fargate task size (vCPU, MiB) with at least this cpu and memory; with
    `eks_overhead`, memory includes what EKS on Fargate adds to a pod. ValueError if none is that big."""
    memory = memory_mib + (EKS_FARGATE_OVERHEAD_MIB if eks_overhead else 0)
    for units, memories in sorted(FARGATE_SIZES.items()):
        fits = [m for m in memories if m >= memory]
        if units / 1024 >= cpu_vcpu and fits:
            return units / 1024, fits[0]
    largest = max(FARGATE_SIZES)
    raise ValueError(f"no Fargate task size has {_n(cpu_vcpu)} vCPU and {_n(memory)} MiB"
                     f"{' (with EKS overhead)' if eks_overhead else ''}; the largest is {largest // 1024} vCPU / "
                     f"{max(FARGATE_SIZES[largest])} MiB: split the work or run it on EC2 nodes")


def fargate_cost(vcpu: float, memory_mib: float, wall_seconds: float, prices: Prices) -> dict:
    """A task of this requested size on Fargate: per started second, at least `minimum_seconds`."""
    p = prices.fargate
    billed = max(p.minimum_seconds, math.ceil(wall_seconds))
    gb = memory_mib / 1024
    usd = billed * (vcpu * p.vcpu_hour + gb * p.gb_hour) / 3600
    return _cost(usd, f"max({p.minimum_seconds} s, ⌈{_n(wall_seconds)} s⌉) = {billed} s × ({_n(vcpu)} vCPU × "
                      f"${_n(p.vcpu_hour)}/h + {_n(gb)} GB × ${_n(p.gb_hour)}/h) / 3600")


def eks_task_cost(cpu_vcpu: float, memory_mib: float, wall_seconds: float, prices: Prices) -> dict:
    """A pod's share of an EC2 node: the larger of its cpu and memory fractions of the node (the rest of
    that resource cannot be packed full), for as long as it ran."""
    p = prices.eks
    gib = memory_mib / 1024
    share = max(cpu_vcpu / p.node_vcpu, gib / p.node_memory_gib)
    usd = share * p.node_hour * wall_seconds / 3600
    return _cost(usd, f"max({_n(cpu_vcpu)} vCPU / {p.node_vcpu}, {_n(gib)} GiB / {_n(p.node_memory_gib)}) = "
                      f"{_n(share)} of a {p.node_type} × ${_n(p.node_hour)}/h × {_n(wall_seconds)} s / 3600")


def mwaa_task_cost(wall_seconds: float, prices: Prices) -> dict:
    """One slot of an MWAA worker for as long as the task held it."""
    p = prices.mwaa
    usd = p.worker_hour / p.tasks_per_worker * wall_seconds / 3600
    return _cost(usd, f"${_n(p.worker_hour)}/h {p.environment_class} worker / {p.tasks_per_worker} tasks × "
                      f"{_n(wall_seconds)} s / 3600")


# --- a DAG run ----------------------------------------------------------------------------------
def run_costs(report: dict, prices: Prices | None = None) -> dict:
    """Fills a run report's (sandbox/metrics/__init__.py) task `cost` and `right_size`, the run's `cost`
    and `prices` (given, else the report's own, else DEFAULT_PRICES), and returns the report.

    A task's costs: `fargate` is an ECS task at its task size, or a pod at the Fargate size its requests
    round up to (EKS overhead included); `eks` is the task's share of a node (an ECS task's size as if
    it were a pod's requests); `mwaa` is the Airflow worker slot the task held. A task with backend None
    ran inside Airflow, so it has only the `mwaa` slot; ECS tasks and pods also hold a slot while their
    operator waits. A cost is None where its inputs are missing (no requested size, no wall time, or a
    size no Fargate task has); the run's formula says how many were left out, never counting them as $0.
    `right_size` is None for a task without samples.
    """
    prices = prices or validate_prices(report.get("prices"), "prices", _raise)
    report["prices"] = dataclasses.asdict(prices)
    tasks = report.get("tasks") or []
    for task in tasks:
        task["cost"] = _task_costs(task, prices)
        task["right_size"] = _right_size(task, prices)
    report["cost"] = _run_cost(report, tasks, prices)
    return report


def _raise(where: str, message: str) -> None:
    raise ValueError(f"{where}: {message}")


def _task_costs(task: dict, prices: Prices) -> dict:
    cost = {"fargate": None, "eks": None, "mwaa": None}
    wall = _wall(task, "started_at", "ended_at")
    if wall is None:
        return cost
    cost["mwaa"] = mwaa_task_cost(wall, prices)
    cpu, memory = _requested(task)
    if task.get("backend") in ("ecs", "k8s") and cpu is not None and memory is not None:
        cost["eks"] = eks_task_cost(cpu, memory, wall, prices)
        try:
            size = (cpu, memory) if task["backend"] == "ecs" else fargate_size(cpu, memory, eks_overhead=True)
            cost["fargate"] = fargate_cost(*size, wall, prices)
        except ValueError:
            pass  # a pod too big for any Fargate size has no Fargate cost
    return cost


def _right_size(task: dict, prices: Prices) -> dict | None:
    mean, peak = task.get("mean_cpu_cores"), task.get("peak_memory_mib")
    (cpu, memory), wall = _requested(task), _wall(task, "started_at", "ended_at")
    if not task.get("measured") or None in (mean, peak, cpu, memory, wall) or task.get("backend") not in ("ecs", "k8s"):
        return None
    cost, pod = task["cost"], task["backend"] == "k8s"
    text = f"requested {_n(cpu)} vCPU / {_n(memory)} MiB, used {_n(mean)} vCPU mean / {_n(peak)} MiB peak"
    result: dict[str, Any] = {"fargate": None}
    try:
        vcpu, mib = fargate_size(mean, peak * MEMORY_HEADROOM, eks_overhead=pod)
    except ValueError as exc:
        text += f"; {exc}"
    else:
        result["fargate"] = _alternative(fargate_cost(vcpu, mib, wall, prices), cost["fargate"],
                                         vcpu=vcpu, memory_mib=mib)
        text += f"; Fargate {_n(vcpu)} vCPU / {mib} MiB {_change(result['fargate'])}"
    if pod:
        # Kubernetes takes cpu in millicores and memory in any unit: 50m and 16Mi steps read well.
        tight_cpu = max(50, math.ceil(round(mean * 20, 6)) * 50) / 1000
        tight_mib = math.ceil(round(peak * MEMORY_HEADROOM / 16, 6)) * 16
        result["eks"] = _alternative(eks_task_cost(tight_cpu, tight_mib, wall, prices), cost["eks"],
                                     cpu_vcpu=tight_cpu, memory_mib=tight_mib)
        text += f"; requests cpu: {round(tight_cpu * 1000)}m, memory: {tight_mib}Mi {_change(result['eks'])} on EKS"
    result["text"] = text
    return result


def _alternative(new: dict, old: dict | None, **size: float) -> dict:
    return {**size, **new, "saving_usd": None if old is None else old["usd"] - new["usd"]}


def _change(alternative: dict) -> str:
    saving = alternative["saving_usd"]
    if saving is None:
        return f"costs {_usd(alternative['usd'])}"
    if abs(saving) < 1e-12:
        return "saves nothing (the size it has)"
    if saving < 0:  # it used more than it asked for: the request is too small
        return f"costs {_usd(-saving)} more (the request is below what it used)"
    return f"saves {_usd(saving)} a run"


def _run_cost(report: dict, tasks: list[dict], prices: Prices) -> dict:
    ran_outside = [t for t in tasks if t.get("backend") in ("ecs", "k8s")]
    fargate = _total([t["cost"]["fargate"] for t in ran_outside], "ECS tasks and pods")
    wall = _wall(report, "start", "end")
    if wall is None:
        return {"fargate": fargate, "eks": None, "mwaa": None}
    pods = _total([t["cost"]["eks"] for t in ran_outside], "pod shares")
    eks = None if pods is None else _cost(
        prices.eks.cluster_hour * wall / 3600 + pods["usd"],
        f"${_n(prices.eks.cluster_hour)}/h cluster × {_n(wall)} s / 3600 + ({pods['formula']})")

    m = prices.mwaa
    intervals = [i for i in map(_interval, tasks) if i is not None]
    peak = peak_concurrency(intervals)
    extra = max(0, math.ceil(peak / m.tasks_per_worker) - m.included_workers)
    untimed = len(tasks) - len(intervals)
    mwaa = _cost((m.environment_hour + extra * m.worker_hour) * wall / 3600,
                 f"${_n(m.environment_hour)}/h {m.environment_class} × {_n(wall)} s / 3600 + "
                 f"[max(0, ⌈{peak} tasks at once / {m.tasks_per_worker} per worker⌉ − {m.included_workers} "
                 f"included) = {extra} extra workers] × ${_n(m.worker_hour)}/h × {_n(wall)} s / 3600",
                 f" ({untimed} tasks without start and end not counted at once)" if untimed else "")
    return {"fargate": fargate, "eks": eks, "mwaa": mwaa}


def _total(costs: list[dict | None], what: str) -> dict | None:
    """The sum of the known costs; those without one are named in the formula, not taken as $0."""
    known = [c["usd"] for c in costs if c is not None]
    if costs and not known:
        return None
    missing = len(costs) - len(known)
    terms = " + ".join(_usd(u) for u in known) if 0 < len(known) <= 6 else f"{len(known)} {what}"
    return _cost(sum(known), terms, f" ({missing} without a size or wall time not counted)" if missing else "")


def peak_concurrency(intervals: list[tuple[datetime, datetime]]) -> int:
    """The most intervals open at one instant; one ending as another starts do not overlap."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


def _requested(task: dict) -> tuple[float | None, float | None]:
    requested = task.get("requested") or {}
    return requested.get("cpu_vcpu"), requested.get("memory_mib")


def _wall(record: dict, start_key: str, end_key: str) -> float | None:
    """The record's wall_seconds, else the time between its start and end; None when neither is known."""
    if record.get("wall_seconds") is not None:
        return record["wall_seconds"]
    start, end = moment(record.get(start_key)), moment(record.get(end_key))
    return (end - start).total_seconds() if start and end else None


def _interval(task: dict) -> tuple[datetime, datetime] | None:
    start, end = moment(task.get("started_at")), moment(task.get("ended_at"))
    return (start, end) if start and end else None


def _cost(usd: float, arithmetic: str, note: str = "") -> dict:
    return {"usd": usd, "formula": f"{arithmetic} = {_usd(usd)}{note}"}


def _n(x: float) -> str:
    return f"{x:.6f}".rstrip("0").rstrip(".")


def _usd(x: float) -> str:
    """Three significant digits for fractions of a cent, cents otherwise."""
    places = 2 if x <= 0 or x >= 0.1 else 2 - math.floor(math.log10(x))
    return f"${x:.{places}f}"
