"""CPU and memory of a task, read from the kernel's cgroup files on the host (v1 or v2).

Where tasks live in the host's cgroup tree:
- an ECS task: `ecs/<task id>/<container id>`. The emulator starts every container of a task under
  that parent, as the ECS agent does, so the parent keeps the task's totals after its containers
  exit and are removed: the last fraction of a second of a short task is counted too.
- a pod: `…/kubepods[/<qos>]/pod<uid>` under a node container's cgroup (the offline node and kind
  put the kubelet's cgroups there); the pod cgroup outlives its containers until the pod is deleted.

The figures are the ones Container Insights and the kubelet report: cumulative CPU time, and memory
as the working set (usage minus inactive file cache, which the kernel can drop at any time).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

ECS_PARENT = "ecs"
# cgroupfs driver: pod<uid>; systemd driver: kubepods-burstable-pod<uid with _>.slice
_POD_DIR = re.compile(r"^(?:pod|kubepods(?:-[a-z]+)?-pod)([0-9a-f_-]{36})(?:\.slice)?$")
_NODE_MARKERS = ("kubepods", "kubepods.slice", "kubelet", "kubelet.slice")


@dataclass(frozen=True)
class Reading:
    cpu_ns: int          # cumulative CPU time of everything in the cgroup and its children
    memory_bytes: int    # working set now
    processes: int       # processes in the cgroup and its children (0: the task has ended)


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _stat_value(path: Path, key: str) -> int:
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


def _count_procs(pids_dir: Path, procs_dir: Path) -> int:
    """Processes in a cgroup and below. The pids controller counts them whatever PID namespace the
    reader is in; cgroup.procs lists only those this process can see, one level at a time."""
    current = _read_int(pids_dir / "pids.current")
    if current is not None:
        return current
    directory = procs_dir
    total = 0
    for here, subdirs, _files in os.walk(directory):
        try:
            with open(os.path.join(here, "cgroup.procs")) as procs:
                total += sum(1 for line in procs if line.strip())
        except OSError:
            pass
    return total


class CgroupTree:
    """The host's cgroup filesystem mounted at `root` (v2 when it has cgroup.controllers)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.v2 = (self.root / "cgroup.controllers").exists()

    def problem(self) -> str | None:
        """Why nothing can be sampled here, or None. Without the host's cgroup tree every listing is
        empty, which would otherwise look like a sandbox running no task at all."""
        if (self.root / "cgroup.controllers").exists() or (self.root / "cpuacct").is_dir():
            return None
        return (f"no cgroup filesystem at {self.root} (neither v2's cgroup.controllers nor v1's cpuacct/): "
                "compose mounts the host's /sys/fs/cgroup there")

    def _dir(self, controller: str, rel: str) -> Path:
        return self.root / rel if self.v2 else self.root / controller / rel

    def read(self, rel: str) -> Reading | None:
        """The cgroup's figures now, or None once it is gone."""
        if self.v2:
            base = self.root / rel
            usage_usec = _stat_value(base / "cpu.stat", "usage_usec")
            current = _read_int(base / "memory.current")
            if current is None:
                return None
            cpu_ns, memory, procs_dir = usage_usec * 1000, current, base
            inactive = _stat_value(base / "memory.stat", "inactive_file")
        else:
            cpu_ns = _read_int(self._dir("cpuacct", rel) / "cpuacct.usage")
            memory = _read_int(self._dir("memory", rel) / "memory.usage_in_bytes")
            if cpu_ns is None or memory is None:
                return None
            inactive = _stat_value(self._dir("memory", rel) / "memory.stat", "total_inactive_file")
            procs_dir = self._dir("cpuacct", rel)
        return Reading(cpu_ns=cpu_ns, memory_bytes=max(0, memory - inactive),
                       processes=_count_procs(self._dir("pids", rel), procs_dir))

    def _children(self, controller: str, rel: str) -> list[str]:
        try:
            return [entry.name for entry in os.scandir(self._dir(controller, rel)) if entry.is_dir()]
        except OSError:
            return []

    def children(self, rel: str) -> list[str]:
        return self._children("cpuacct", rel)

    def ecs_tasks(self) -> dict[str, str]:
        """ECS task id -> its cgroup (relative path)."""
        return {task_id: f"{ECS_PARENT}/{task_id}" for task_id in self._children("cpuacct", ECS_PARENT)}

    def node_roots(self) -> list[str]:
        """Cgroups under which a kubelet keeps pods: the host's top level and each container's own."""
        roots = []
        for parent in ("", "docker", "system.slice"):
            candidates = [parent] if not parent else [f"{parent}/{name}" for name in self._children("cpuacct", parent)]
            for rel in candidates:
                children = set(self._children("cpuacct", rel))
                for marker in _NODE_MARKERS:
                    if marker in children:
                        roots.append(f"{rel}/{marker}".lstrip("/"))
        return roots

    def pods(self, roots: list[str]) -> dict[str, str]:
        """Pod uid -> its cgroup, under the given kubepods roots (QoS classes one level down)."""
        found: dict[str, str] = {}

        def scan(rel: str, depth: int) -> None:
            for name in self._children("cpuacct", rel):
                match = _POD_DIR.match(name)
                if match:
                    found[match.group(1).replace("_", "-")] = f"{rel}/{name}"
                elif depth > 0:
                    scan(f"{rel}/{name}", depth - 1)

        for root in roots:
            scan(root, 3)  # kubelet/kubepods/burstable/pod… is the deepest layout (kind)
        return found

    def remove(self, rel: str) -> None:
        """Removes an ended task's empty cgroup from every hierarchy that has it."""
        dirs = [self.root / rel] if self.v2 else [self.root / c / rel for c in self._controllers()]
        for directory in dirs:
            for here, _subdirs, _files in sorted(os.walk(directory), key=lambda w: -len(w[0])):
                try:
                    os.rmdir(here)
                except OSError:
                    pass

    def _controllers(self) -> list[str]:
        try:
            return [e.name for e in os.scandir(self.root) if e.is_dir() and not e.is_symlink()]
        except OSError:
            return []
