"""The sampler's records: one per ECS task or pod, kept in memory while it runs and as a JSON file
once it has ended (on the metrics service's volume, so a restart keeps what was measured)."""
from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class Record:
    backend: str                     # "ecs" | "k8s"
    key: str                         # ECS task id or pod uid
    resource: str                    # "ecs task <arn>" | "pod <ns>/<name>"
    identity: dict | None = None     # dag_id, run_id, task_id, map_index, try_number (Airflow's)
    requested: dict | None = None    # cpu_vcpu, memory_mib
    limits: dict | None = None
    started_at: float | None = None  # epoch seconds, from the runtime (Docker, the kubelet)
    ended_at: float | None = None
    # [epoch s, cumulative CPU ns, working set bytes]; the first is the baseline of the CPU figures
    samples: list[list[float]] = field(default_factory=list)
    ended: bool = False

    @property
    def cpu_seconds(self) -> float | None:
        if len(self.samples) < 1:
            return None
        return self.samples[-1][1] / 1e9

    @property
    def peak_memory_mib(self) -> float | None:
        return max(s[2] for s in self.samples) / 2**20 if self.samples else None


class Store:
    """Thread-safe: the sampler writes, the HTTP server reads."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._records: dict[str, Record] = {}
        for path in sorted(self.directory.glob("*.json")):
            try:
                data = json.loads(path.read_text())
                record = Record(**data)
            except (OSError, ValueError, TypeError):
                continue  # a file cut short by a crash: that task is reported as not measured
            self._records[self._name(record)] = record

    @staticmethod
    def _name(record: Record) -> str:
        return f"{record.backend}-{record.key}"

    def get(self, backend: str, key: str) -> Record | None:
        with self._lock:
            return self._records.get(f"{backend}-{key}")

    def add(self, record: Record) -> Record:
        with self._lock:
            return self._records.setdefault(self._name(record), record)

    def save(self, record: Record) -> None:
        """Writes the record's file (atomically: a reader never sees half of it)."""
        path = self.directory / f"{self._name(record)}.json"
        with self._lock:
            text = json.dumps(asdict(record))
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)

    # ── when the sampler ran: a run wholly inside one of these spans was seen from start to end ──
    def mark_up(self, since: float, now: float) -> None:
        """Records that the sampler has run from `since` (its start) until `now`."""
        path = self.directory.parent / "uptime.json"
        with self._lock:
            spans = self._spans()
            spans = [s for s in spans if s[0] != since] + [[since, now]]
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(spans[-1000:]))
            os.replace(tmp, path)

    def watched(self, start: float, end: float) -> bool:
        with self._lock:
            return any(a <= start and end <= b for a, b in self._spans())

    def _spans(self) -> list[list[float]]:
        try:
            return json.loads((self.directory.parent / "uptime.json").read_text())
        except (OSError, ValueError):
            return []

    def all(self) -> list[Record]:
        with self._lock:
            return list(self._records.values())
