"""Samples every ECS task and pod the sandbox runs, several times a second, from the host's cgroups.

One round every `interval` seconds reads each running task's cgroup (cgroups.py); a task is tied to
its Airflow task try once (identity.py: the ECS task's tags, the pod's labels) and its record is
saved when it ends. ECS tasks are also published to the emulator's CloudWatch as Container Insights
does (namespace ECS/ContainerInsights, CpuUtilized in CPU units and MemoryUtilized in MiB, per task),
at one-second resolution, so the same queries work against real AWS.
"""
from __future__ import annotations

import json
import logging
import math
import threading
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable

from sandbox.metrics import identity
from sandbox.metrics.cgroups import CgroupTree
from sandbox.metrics.health import FAILING, WatchHealth
from sandbox.metrics.store import Record, Store
from sandbox.metrics.times import epoch

if TYPE_CHECKING:
    from sandbox.metrics.podwatch import PodWatch

log = logging.getLogger("sandbox.metrics")

CONTAINER_INSIGHTS = "ECS/ContainerInsights"
# An ECS task has ended when its cgroup has had no process for this long (containers that depend
# on each other start one after another, with a moment between them).
_ECS_IDLE_SECONDS = 2.0
_NODE_RESCAN_SECONDS = 5.0
_PUBLISH_SECONDS = 5.0
# While the ECS API fails, asked this often whether it answers again: lookups happen only when a
# task starts, so without asking, `make status` would say "failing" long after the emulator is back.
_ECS_PROBE_SECONDS = 5.0


def per_second(points: list[list[float]], since: float | None, *, final: bool
               ) -> tuple[list[tuple[int, float]], float | None, list[list[float]]]:
    """Container Insights' CpuUtilized for each whole second the samples cover: the CPU the task used
    in that second (its cumulative counter interpolated between samples), in CPU units (1024 per
    vCPU). Summed over the seconds, it is the task's CPU time; the first second also carries what the
    task used before its first sample. Until `final`, only seconds that have ended are given.

    `points` are [epoch s, cumulative CPU ns, memory]; `since` where the previous call stopped (None:
    nothing published yet). Returns the seconds, the new `since`, and the points a later call needs.
    """
    if not points:
        return [], since, points
    end = points[-1][0] if final else float(math.floor(points[-1][0]))
    start = points[0][0] if since is None else since

    def used_by(x: float) -> float:
        for (t0, c0, _), (t1, c1, _) in zip(points, points[1:]):
            if t0 <= x <= t1:
                return c0 + (c1 - c0) * ((x - t0) / (t1 - t0) if t1 > t0 else 1.0)
        return points[0][1] if x <= points[0][0] else points[-1][1]

    seconds = []
    second = math.floor(start)
    while second < end:
        a, b = max(second, start), min(second + 1, end)
        before = 0.0 if since is None and a == start else used_by(a)
        seconds.append((int(second), (used_by(b) - before) / 1e9 * 1024))
        second += 1
    if end <= start:
        return [], since, points
    kept = [p for p in points if p[0] >= end]
    earlier = [p for p in points if p[0] < end]
    return seconds, end, (earlier[-1:] + kept)


def refine_to_samples(start: float, end: float, samples: list[list[float]]) -> tuple[float, float]:
    """The kubelet gives a container's start and end to the whole second, so a sub-second task would
    read 0 s. Within those seconds, the samples say when the pod used CPU: from the sample before
    its CPU first grew (by more than a millisecond) to the sample where it last grew."""
    grew = [(before[0], after[0]) for before, after in zip(samples, samples[1:]) if after[1] - before[1] > 1e6]
    if not grew:
        return start, end
    first, last = grew[0][0], grew[-1][1]
    return max(start, min(first, start + 1)), min(max(end, last), end + 1)


class Tracked:
    """A running ECS task or pod: its record plus what the sampler needs until it ends."""

    def __init__(self, record: Record, cgroup: str):
        self.record = record
        self.cgroup = cgroup
        self.resolved = False
        self.next_resolve = 0.0
        self.seen_running = False
        self.idle_since: float | None = None
        self.containers: set[str] = set()   # Docker ids of an ECS task's containers
        self.meta: dict[str, Any] = {}      # cluster, family (ECS) for Container Insights
        self.unpublished: list[list[float]] = []
        self.published_until: float | None = None  # Container Insights: CPU published up to here
        self.memory_published = 0                   # … and the memory of this many of `unpublished`
        self.last_cpu_ns = 0


class Sampler:
    def __init__(self, cgroups: CgroupTree, store: Store, *, interval: float,
                 ecs_client: Any = None, cloudwatch: Any = None, docker_client: Any = None,
                 pods: "PodWatch | None" = None, clock: Callable[[], float] = time.time):
        self.cgroups, self.store, self.interval = cgroups, store, interval
        self.ecs, self.cloudwatch, self.docker, self.pods = ecs_client, cloudwatch, docker_client, pods
        self.clock = clock
        self.tracked: dict[str, Tracked] = {}
        self._node_roots: list[str] = []
        self._node_scan = 0.0
        self._last_publish = 0.0
        self._clusters: list[str] = []
        self.rounds = 0
        self.last_round: float | None = None
        self.round_seconds = 0.0  # CPU the last round took (the sampler's own cost)
        # What its figures depend on, for /healthz and for the reports of runs while they failed.
        self.sampling_health = WatchHealth("cgroup sampling", ("ecs", "k8s"), clock=clock)
        self.ecs_lookup_health = WatchHealth("ECS task lookup", ("ecs",), clock=clock)
        self._cgroup_problem: str | None = None
        self._next_ecs_probe = 0.0

    # ── one round ──────────────────────────────────────────────────────────
    def round(self) -> None:
        started = time.process_time()
        now = self.clock()
        if now - self._node_scan > _NODE_RESCAN_SECONDS:
            self._node_roots, self._node_scan = self.cgroups.node_roots(), now
            self._cgroup_problem = self.cgroups.problem()
        present = {f"ecs-{task_id}": ("ecs", task_id, rel) for task_id, rel in self.cgroups.ecs_tasks().items()}
        present.update({f"k8s-{uid}": ("k8s", uid, rel) for uid, rel in self.cgroups.pods(self._node_roots).items()})

        for name, (backend, key, rel) in present.items():
            tracked = self.tracked.get(name)
            if tracked is None:
                existing = self.store.get(backend, key)
                if existing is not None and existing.ended:
                    continue  # measured and saved already; its cgroup is on its way out
                record = self.store.add(existing or Record(backend=backend, key=key, resource=f"{backend} {key}"))
                tracked = self.tracked[name] = Tracked(record, rel)
            self._sample(tracked, now)

        for name in [n for n in self.tracked if n not in present]:
            self._finish(self.tracked.pop(name), now)  # the cgroup is gone: the pod was deleted
        for name, tracked in list(self.tracked.items()):
            if self._has_ended(tracked, now):
                self._finish(self.tracked.pop(name), now)
                self.cgroups.remove(tracked.cgroup) if tracked.record.backend == "ecs" else None

        if now - self._last_publish >= _PUBLISH_SECONDS:
            self._publish(list(self.tracked.values()))
            self._last_publish = now
        if self.ecs is not None and self.ecs_lookup_health.state == FAILING and now >= self._next_ecs_probe:
            self._next_ecs_probe = now + _ECS_PROBE_SECONDS
            try:
                self._clusters = self.ecs.list_clusters().get("clusterArns", [])
                self.ecs_lookup_health.succeeded()
            except Exception:
                pass  # failing still: the record has the error of the lookup that failed
        self.rounds += 1
        self.last_round = now
        if self._cgroup_problem:
            if self.sampling_health.failed(self._cgroup_problem):
                log.warning("nothing can be sampled: %s", self._cgroup_problem)
        else:
            self.sampling_health.succeeded()
        self.round_seconds = time.process_time() - started

    def _sample(self, tracked: Tracked, now: float) -> None:
        reading = self.cgroups.read(tracked.cgroup)
        if reading is None:
            return
        if tracked.record.backend == "ecs":
            tracked.containers.update(self.cgroups.children(tracked.cgroup))
        running = reading.processes > 0
        tracked.last_cpu_ns = reading.cpu_ns
        if running or tracked.record.backend == "k8s":
            tracked.record.samples.append([round(now, 3), reading.cpu_ns, reading.memory_bytes])
            tracked.unpublished.append([now, reading.cpu_ns, reading.memory_bytes])
        if running:
            tracked.seen_running, tracked.idle_since = True, None
        elif tracked.idle_since is None:
            tracked.idle_since = now
        if not tracked.resolved and now >= tracked.next_resolve:
            try:
                tracked.resolved = self._resolve(tracked)
            except Exception as error:  # the emulator or the API restarting: try again shortly
                log.warning("cannot identify %s yet: %s", tracked.record.resource, error)
            tracked.next_resolve = now + 1.0

    def _has_ended(self, tracked: Tracked, now: float) -> bool:
        if tracked.record.backend == "ecs":
            # A task that used CPU but was never seen running ran while the sampler was down.
            return ((tracked.seen_running or tracked.last_cpu_ns > 0) and tracked.idle_since is not None
                    and now - tracked.idle_since >= _ECS_IDLE_SECONDS)
        pod = self.pods.get(tracked.record.key) if self.pods else None
        return bool(pod) and pod.get("status", {}).get("phase") in ("Succeeded", "Failed")

    def _finish(self, tracked: Tracked, now: float) -> None:
        record = tracked.record
        if not tracked.resolved:
            try:
                tracked.resolved = self._resolve(tracked)
            except Exception as error:
                log.warning("cannot identify %s: %s", record.resource, error)
        self._times(tracked)
        final = self.cgroups.read(tracked.cgroup) if record.backend == "ecs" else None
        if final is not None and record.samples and final.cpu_ns > record.samples[-1][1]:
            # The task's cgroup kept what its containers used after the last sample, up to their exit.
            at = max(record.samples[-1][0], record.ended_at or now)
            record.samples.append([round(at, 3), final.cpu_ns, final.memory_bytes])
            tracked.unpublished.append([at, final.cpu_ns, final.memory_bytes])
        record.ended = True
        self._publish([tracked])
        self.store.save(record)
        log.info("measured %s %s: %.2f CPU-s, peak %.1f MiB, %d samples", record.resource,
                 json.dumps(record.identity), record.cpu_seconds or 0, record.peak_memory_mib or 0,
                 len(record.samples))

    # ── who a task is ──────────────────────────────────────────────────────
    def _resolve(self, tracked: Tracked) -> bool:
        return self._resolve_ecs(tracked) if tracked.record.backend == "ecs" else self._resolve_pod(tracked)

    def _resolve_ecs(self, tracked: Tracked) -> bool:
        """Asks ECS about the task by its id (the cgroup's name), in each cluster: no Docker call,
        which a busy engine starting a fan-out's containers can do without."""
        if self.ecs is None:
            return False
        try:
            task = self._describe_ecs_task(tracked.record.key)
        except Exception as error:
            # Recorded: a run whose ECS tasks went unnamed meanwhile says so instead of guessing.
            self.ecs_lookup_health.failed(f"the emulator's ECS API did not answer ({type(error).__name__}: {error})")
            raise
        self.ecs_lookup_health.succeeded()
        if not task:
            self._clusters = []  # a cluster made since: list them again next time
            return False
        record = tracked.record
        record.resource = f"ecs task {task['taskArn']}"
        record.identity = identity.from_ecs_tags(task.get("tags"))
        record.requested = identity.ecs_requested(task)
        tracked.meta = {"ClusterName": task["clusterArn"].rsplit("/", 1)[-1],
                        "TaskDefinitionFamily": task.get("taskDefinitionArn", "").rsplit("/", 1)[-1].split(":")[0],
                        "TaskId": record.key}
        return True

    def _describe_ecs_task(self, task_id: str) -> dict | None:
        if not self._clusters:
            self._clusters = self.ecs.list_clusters().get("clusterArns", [])
        for cluster in self._clusters:
            tasks = self.ecs.describe_tasks(cluster=cluster, tasks=[task_id], include=["TAGS"]).get("tasks")
            if tasks:
                return tasks[0]
        return None

    def _resolve_pod(self, tracked: Tracked) -> bool:
        pod = self.pods.get(tracked.record.key) if self.pods else None
        if not pod:
            return False
        meta = pod.get("metadata", {})
        record = tracked.record
        record.resource = f"pod {meta.get('namespace')}/{meta.get('name')}"
        record.identity = identity.from_pod_labels(meta.get("labels"))
        record.requested = identity.pod_resources(pod, "requests")
        record.limits = identity.pod_resources(pod, "limits")
        return True

    def _times(self, tracked: Tracked) -> None:
        """Start and end as the runtime recorded them: Docker's (to the nanosecond) for an ECS
        task's containers, the kubelet's (to the second) for a pod's."""
        starts, ends = [], []
        if tracked.record.backend == "ecs" and self.docker is not None:
            for container_id in tracked.containers:
                try:
                    state = self.docker.api.inspect_container(container_id)["State"]
                except Exception:
                    continue
                starts.append(epoch(state.get("StartedAt")))
                ends.append(epoch(state.get("FinishedAt")))
        elif self.pods is not None:
            pod = self.pods.get(tracked.record.key) or {}
            for status in pod.get("status", {}).get("containerStatuses", []):
                if status.get("name") == identity.XCOM_SIDECAR:
                    continue
                state = status.get("state", {})
                finished = state.get("terminated") or {}
                starts.append(epoch(finished.get("startedAt") or (state.get("running") or {}).get("startedAt")))
                ends.append(epoch(finished.get("finishedAt")))
        samples = tracked.record.samples
        starts = [s for s in starts if s] or ([samples[0][0]] if samples else [])
        ends = [e for e in ends if e] or ([samples[-1][0]] if samples else [])
        tracked.record.started_at = min(starts) if starts else None
        tracked.record.ended_at = max(ends) if ends else None
        if tracked.record.backend == "k8s" and starts and ends:
            tracked.record.started_at, tracked.record.ended_at = refine_to_samples(
                tracked.record.started_at, tracked.record.ended_at, samples)

    # ── Container Insights ─────────────────────────────────────────────────
    def _publish(self, tracked_list: list[Tracked]) -> None:
        if self.cloudwatch is None:
            return
        data = []
        for tracked in tracked_list:
            if tracked.record.backend != "ecs" or not tracked.meta or not tracked.unpublished:
                continue
            dims = [{"Name": k, "Value": v} for k, v in tracked.meta.items()]
            seconds, tracked.published_until, kept = per_second(
                tracked.unpublished, tracked.published_until, final=tracked.record.ended)
            for second, cpu_units in seconds:
                data.append({"MetricName": "CpuUtilized", "Dimensions": dims, "Unit": "None", "StorageResolution": 1,
                             "Timestamp": datetime.fromtimestamp(second, timezone.utc), "Value": cpu_units})
            for t, _, memory in tracked.unpublished[tracked.memory_published:]:
                data.append({"MetricName": "MemoryUtilized", "Dimensions": dims, "Unit": "Megabytes",
                             "StorageResolution": 1, "Timestamp": datetime.fromtimestamp(t, timezone.utc),
                             "Value": memory / 2**20})
            tracked.memory_published = len(kept)
            tracked.unpublished = kept
        for start in range(0, len(data), 1000):  # PutMetricData takes at most 1000 datums
            try:
                self.cloudwatch.put_metric_data(Namespace=CONTAINER_INSIGHTS, MetricData=data[start:start + 1000])
            except Exception as error:
                log.warning("Container Insights metrics not published: %s", error)

    # ── the loop ───────────────────────────────────────────────────────────
    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            began = time.monotonic()
            try:
                self.round()
            except Exception as error:
                if self.sampling_health.failed(f"a sampling round failed ({type(error).__name__}: {error})"):
                    log.exception("sampling round failed")
            stop.wait(max(0.0, self.interval - (time.monotonic() - began)))

