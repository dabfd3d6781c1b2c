"""Where the sandbox's CPU and memory go, per component, over a window (`make bench`'s breakdown).

Read from the host's cgroup tree, as the metrics service reads tasks (sandbox.metrics.cgroups):
- each compose service's container (`docker/<id>`);
- the cluster's node container, split into its own processes (kubelet, API server, etcd, the
  runtime) and the pods under its `kubepods` cgroup;
- the ECS tasks under `ecs/` (the emulator starts every task container there);
- the Docker engine's host processes (dockerd, containerd, the shims alive at the end), by their
  own CPU time in /proc (they share the host's root cgroup with everything else);
- the rest of the machine: runc (each container start and healthcheck), the kernel, this process —
  the machine's busy time (/proc/stat) less everything above.
Cumulative CPU is charged up the cgroup hierarchy, so a parent keeps what its removed children used:
`ecs/` and `kubepods` count tasks that ended and were cleaned up inside the window.
Memory is the working set (usage less inactive file cache), sampled every second for its peak.
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

from sandbox.host import stack
from sandbox.host.docker import docker
from sandbox.metrics.cgroups import ECS_PARENT, CgroupTree

CGROUP_ROOT = "/sys/fs/cgroup"
ECS_TASKS = "ECS tasks"
NODE = "cluster node"  # named "cluster node (<container>)"; its pods are PODS
PODS = "pods"
ENGINE = "Docker engine (dockerd, containerd, shims)"
ENGINE_PROCESSES = ("dockerd", "containerd", "docker-proxy")  # and every containerd-shim*
REST = "rest of the machine (runc, the kernel, exited shims, the bench)"


def machine_cpu_seconds() -> float:
    """CPU time every core of the machine has spent on anything but idling (/proc/stat)."""
    with open("/proc/stat") as stat:
        user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, stat.readline().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def engine_cpu_seconds() -> dict[int, float]:
    """pid -> CPU-seconds of the Docker engine's host processes, their own only: a shim's reaped children
    include the container processes, whose time their container's cgroup already counts."""
    found = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as fh:
                raw = fh.read()
        except OSError:
            continue
        comm, fields = raw[raw.index("(") + 1:raw.rindex(")")], raw[raw.rindex(")") + 2:].split()
        if comm in ENGINE_PROCESSES or comm.startswith("containerd-shim"):
            found[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick  # utime stime
    return found


def container_cgroup(tree: CgroupTree, container_id: str) -> str | None:
    """A container's cgroup under the cgroupfs or the systemd driver, or None if it has none now."""
    for rel in (f"docker/{container_id}", f"system.slice/docker-{container_id}.scope"):
        if tree.read(rel) is not None:
            return rel
    return None


def full_container_ids(refs: list[str]) -> dict[str, str]:
    """Short id or name -> the full id the cgroup directory is named by (refs gone are left out)."""
    found = {}
    for ref in refs:
        res = docker("inspect", "--format", "{{.Id}}", ref)
        if res.returncode == 0:
            found[ref] = res.stdout.strip()
    return found


def components(settings, tree: CgroupTree) -> dict[str, str]:
    """Component name -> cgroup, for what runs now: compose services, the node and its pods, ECS tasks.
    The node's own figure is its cgroup less its pods' (see Usage)."""
    found: dict[str, str] = {}
    running = {svc["Service"]: svc["ID"] for svc in stack.services() if svc.get("State") == "running"}
    node = getattr(stack.recorded_provider(settings), "node", None)
    names = {**running, **({f"{NODE} ({node})": node} if node else {})}
    full_ids = full_container_ids(list(names.values()))
    for name, ref in names.items():
        rel = container_cgroup(tree, full_ids[ref]) if ref in full_ids else None
        if rel:
            found[name] = rel
            pods = [r for r in tree.node_roots() if r.startswith(rel + "/")] if name.startswith(NODE) else []
            if pods:
                found[PODS] = pods[0]
    found[ECS_TASKS] = ECS_PARENT
    return found


@dataclass
class Usage:
    """CPU-seconds and peak / last working set per component over one window."""

    seconds: float
    cores: int
    cpu_s: dict[str, float] = field(default_factory=dict)
    peak_mib: dict[str, float] = field(default_factory=dict)
    last_mib: dict[str, float] = field(default_factory=dict)

    def tasks_cpu_s(self) -> float:
        return self.cpu_s.get(ECS_TASKS, 0.0) + self.cpu_s.get(PODS, 0.0)

    def as_dict(self) -> dict:
        return {"seconds": round(self.seconds, 1), "cores": self.cores,
                "cpu_s": {k: round(v, 2) for k, v in self.cpu_s.items()},
                "peak_mib": {k: round(v) for k, v in self.peak_mib.items()},
                "last_mib": {k: round(v) for k, v in self.last_mib.items()}}

    def table(self, title: str) -> list[str]:
        total = sum(self.cpu_s.values()) or 1.0
        rows = [f"{title}: {self.seconds:.1f} s on {self.cores} cores",
                "| component | CPU-s | % of the machine's | peak MiB | MiB at the end |", "|---|---:|---:|---:|---:|"]
        for name in sorted(self.cpu_s, key=lambda n: -self.cpu_s[n]):
            rows.append(f"| {name} | {self.cpu_s[name]:.1f} | {self.cpu_s[name] / total * 100:.0f} | "
                        f"{self.peak_mib.get(name, 0):.0f} | {self.last_mib.get(name, 0):.0f} |")
        rows.append(f"| all | {total:.1f} | 100 | | {sum(self.last_mib.values()):.0f} |")
        return rows


def work_added(run: Usage, idle: Usage, tasks: int) -> list[dict]:
    """What each component spent on a run beyond what it spends idle over as long (its rate over the
    idle window times the run's wall time), in all and per task of the run, largest first."""
    rows = []
    for name, cpu in run.cpu_s.items():
        idle_s = idle.cpu_s.get(name, 0.0) / idle.seconds * run.seconds if idle.seconds else 0.0
        added = max(0.0, cpu - idle_s)
        rows.append({"component": name, "cpu_s": round(cpu, 2), "idle_cpu_s_per_min": round(idle_s / run.seconds * 60, 2),
                     "added_cpu_s": round(added, 2), "per_task_cpu_s": round(added / tasks, 3) if tasks else None})
    return sorted(rows, key=lambda r: -r["added_cpu_s"])


def work_added_table(rows: list[dict], run: Usage, tasks: int) -> list[str]:
    added = sum(r["added_cpu_s"] for r in rows)
    own = run.tasks_cpu_s()
    table = [f"What the run added to the idle sandbox's CPU, per component and per task ({tasks} tasks):",
             "| component | CPU-s in the run | idle CPU-s a minute | added by the run | per task |",
             "|---|---:|---:|---:|---:|"]
    table += [f"| {r['component']} | {r['cpu_s']:.1f} | {r['idle_cpu_s_per_min']:.1f} | {r['added_cpu_s']:.1f} | "
              f"{r['per_task_cpu_s']:.2f} |" for r in rows]
    table.append(f"| all | {sum(r['cpu_s'] for r in rows):.1f} | {sum(r['idle_cpu_s_per_min'] for r in rows):.1f} | "
                 f"{added:.1f} | {added / tasks if tasks else 0:.2f} |")
    if own:
        table.append(f"The tasks' own CPU is {own:.1f} CPU-s of it; the rest of what the run added, "
                     f"{(added - own) / tasks if tasks else 0:.2f} CPU-s per task, is the sandbox's work for each task.")
    return table


class UsageMeter:
    """Start, run the window, stop: per-component CPU over the window and memory sampled each second.
    A component that appears during the window (a started service) counts from its first reading."""

    def __init__(self, settings, interval: float = 1.0):
        self.settings = settings
        self.tree = CgroupTree(CGROUP_ROOT)
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cpu0: dict[str, float] = {}
        self._cpu1: dict[str, float] = {}
        self._peak: dict[str, float] = {}
        self._last: dict[str, float] = {}

    def readings(self, parts: dict[str, str]) -> dict[str, tuple[float, float]]:
        """Component -> (cumulative CPU-seconds, working set MiB) now; the node's without its pods'."""
        readings = {}
        for name, rel in parts.items():
            reading = self.tree.read(rel)
            if reading is not None:
                readings[name] = (reading.cpu_ns / 1e9, reading.memory_bytes / 2**20)
        node = next((n for n in readings if n.startswith(NODE)), None)
        if node and PODS in readings:  # the node's own share: its cgroup holds the pods'
            cpu, mem = readings[node]
            readings[node] = (cpu - readings[PODS][0], max(0.0, mem - readings[PODS][1]))
        return readings

    def _sample(self) -> None:
        readings = self.readings(self._parts)
        for name, (cpu, mem) in readings.items():
            self._cpu0.setdefault(name, cpu)
            self._cpu1[name] = cpu
            self._peak[name] = max(self._peak.get(name, 0.0), mem)
            self._last[name] = mem

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def start(self) -> UsageMeter:
        self._parts = components(self.settings, self.tree)
        self._started, self._machine0 = time.monotonic(), machine_cpu_seconds()
        self._engine0 = engine_cpu_seconds()
        self._sample()
        self._thread = threading.Thread(target=self._loop, name="usage-meter", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> Usage:
        self._stop.set()
        self._thread.join()
        self._sample()
        usage = Usage(seconds=time.monotonic() - self._started, cores=os.cpu_count() or 1)
        usage.cpu_s = {name: self._cpu1[name] - self._cpu0[name] for name in self._cpu1}
        # a process started within the window counts whole; one that ended in it is lost (REST has it)
        usage.cpu_s[ENGINE] = sum(cpu - self._engine0.get(pid, 0.0) for pid, cpu in engine_cpu_seconds().items())
        usage.cpu_s[REST] = max(0.0, machine_cpu_seconds() - self._machine0 - sum(usage.cpu_s.values()))
        usage.peak_mib, usage.last_mib = dict(self._peak), dict(self._last)
        return usage


def memory_now(settings) -> dict[str, float]:
    """Each component's working set now, MiB (the idle figure after a run)."""
    meter = UsageMeter(settings)
    return {name: mem for name, (_cpu, mem) in meter.readings(components(settings, meter.tree)).items()}
