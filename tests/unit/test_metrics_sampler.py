"""Sampler.round() over a fake v1 cgroup tree in tmp_path, changed between rounds as the kernel would,
with an injected clock and fakes of Docker, ECS, CloudWatch and the pod watch (no Docker, no network)."""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from sandbox.metrics.cgroups import CgroupTree
from sandbox.metrics.sampler import CONTAINER_INSIGHTS, Sampler
from sandbox.metrics.times import epoch as _epoch
from sandbox.metrics.store import Record, Store

pytestmark = pytest.mark.unit

T0 = 1_700_000_000.0            # 2023-11-14T22:13:20Z
MIB = 2**20
TASK = "5d1c0e7a8b9f4a3c9e2d1f0a6b7c8d9e"
CONTAINER = "a1" * 32
CLUSTER_ARN = "arn:aws:ecs:us-east-1:000000000000:cluster/sandbox"
TASK_ARN = f"arn:aws:ecs:us-east-1:000000000000:task/sandbox/{TASK}"
NODE = "b2" * 32
POD_UID = "3f9a1c2e-4b5d-4e6f-8a7b-9c0d1e2f3a4b"
POD_CGROUP = f"docker/{NODE}/kubepods/burstable/pod{POD_UID}"
CONTROLLERS = ("cpuacct", "memory", "pids")


class CgroupFs(CgroupTree):
    """On a cgroupfs rmdir takes a directory holding only the kernel's files; in tmp_path they are
    real files, so they are deleted first (what remove() is then asked to do is recorded)."""

    def __init__(self, root):
        super().__init__(root)
        self.removed: list[str] = []

    def remove(self, rel):
        self.removed.append(rel)
        for controller in CONTROLLERS:
            for path in (self.root / controller / rel).rglob("*"):
                if path.is_file():
                    path.unlink()
        super().remove(rel)


def set_cgroup(root: Path, rel: str, *, cpu_ns: int, usage: int = 0, inactive: int = 0, pids: int = 0) -> None:
    for controller, name, text in (("cpuacct", "cpuacct.usage", f"{cpu_ns}\n"),
                                   ("memory", "memory.usage_in_bytes", f"{usage}\n"),
                                   ("memory", "memory.stat", f"cache 1\ntotal_inactive_file {inactive}\n"),
                                   ("pids", "pids.current", f"{pids}\n")):
        directory = root / controller / rel
        directory.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(text)


def remove_cgroup(root: Path, rel: str) -> None:
    for controller in CONTROLLERS:
        shutil.rmtree(root / controller / rel)


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeDocker:
    def __init__(self, containers: dict[str, dict]):
        self.api = self
        self.containers = containers

    def inspect_container(self, container_id):
        if container_id not in self.containers:
            raise LookupError(f"No such container: {container_id}")
        return self.containers[container_id]


class FakeEcs:
    def __init__(self, tasks: dict[str, dict]):
        self.tasks = tasks
        self.calls: list[dict] = []

    def list_clusters(self):
        return {"clusterArns": sorted({t["clusterArn"] for t in self.tasks.values()})}

    def describe_tasks(self, *, cluster, tasks, include):
        """ECS takes a task's id or its ARN."""
        self.calls.append({"cluster": cluster, "tasks": tasks, "include": include})
        found = [t for t in self.tasks.values() if t["clusterArn"] == cluster
                 and (t["taskArn"] in tasks or t["taskArn"].rsplit("/", 1)[-1] in tasks)]
        return {"tasks": found, "failures": []}


class FakeCloudWatch:
    def __init__(self):
        self.calls: list[dict] = []

    def put_metric_data(self, **kwargs):
        self.calls.append(kwargs)


class FakePods:
    def __init__(self, pods: dict[str, dict]):
        self.pods = pods

    def get(self, uid):
        return self.pods.get(uid)


def ecs_container(started: str, finished: str) -> dict:
    return {"Config": {"Labels": {"com.amazonaws.ecs.task-arn": TASK_ARN,
                                  "com.amazonaws.ecs.cluster": CLUSTER_ARN,
                                  "com.amazonaws.ecs.container-name": "main"}},
            "State": {"Status": "exited", "StartedAt": started, "FinishedAt": finished}}


ECS_TASK = {"taskArn": TASK_ARN, "clusterArn": CLUSTER_ARN, "cpu": "256", "memory": "512",
            "taskDefinitionArn": "arn:aws:ecs:us-east-1:000000000000:task-definition/etl-load:3",
            "tags": [{"key": "team", "value": "data"},
                     {"key": "airflow:dag_id", "value": "etl"},
                     {"key": "airflow:run_id", "value": "manual__2023-11-14T22:13:00+00:00"},
                     {"key": "airflow:task_id", "value": "load"},
                     {"key": "airflow:try_number", "value": "1"}]}


@pytest.fixture
def env(tmp_path):
    class Env:
        root = tmp_path / "cgroup"
        records = tmp_path / "records"
        clock = Clock(T0)
        tree = CgroupFs(tmp_path / "cgroup")
        store = Store(tmp_path / "records")
        docker = FakeDocker({CONTAINER: ecs_container("2023-11-14T22:13:19.800000123Z",
                                                      "2023-11-14T22:13:21.200000999Z")})
        ecs = FakeEcs({TASK_ARN: ECS_TASK})
        cloudwatch = FakeCloudWatch()
        pods = FakePods({})

        def sampler(self):
            return Sampler(self.tree, self.store, interval=0.5, ecs_client=self.ecs, cloudwatch=self.cloudwatch,
                           docker_client=self.docker, pods=self.pods, clock=self.clock)

        def round_at(self, sampler, seconds):
            self.clock.now = T0 + seconds
            sampler.round()

    for controller in CONTROLLERS:
        (Env.root / controller).mkdir(parents=True)
    return Env()


# ── an ECS task ───────────────────────────────────────────────────────────
def test_ecs_task_measured_to_its_end(env):
    root, task = env.root, f"ecs/{TASK}"
    sampler = env.sampler()
    set_cgroup(root, task, cpu_ns=200_000_000, usage=100 * MIB, inactive=20 * MIB, pids=1)
    set_cgroup(root, f"{task}/{CONTAINER}", cpu_ns=200_000_000, usage=100 * MIB, inactive=20 * MIB, pids=1)
    env.round_at(sampler, 0.0)
    set_cgroup(root, task, cpu_ns=700_000_000, usage=150 * MIB, inactive=20 * MIB, pids=1)   # 1 core
    env.round_at(sampler, 0.5)
    set_cgroup(root, task, cpu_ns=1_200_000_000, usage=110 * MIB, inactive=20 * MIB, pids=1)
    env.round_at(sampler, 1.0)
    # the container exits and is removed; the task's cgroup keeps its CPU up to the exit
    remove_cgroup(root, f"{task}/{CONTAINER}")
    set_cgroup(root, task, cpu_ns=1_500_000_000, usage=5 * MIB, inactive=1 * MIB, pids=0)
    env.round_at(sampler, 1.5)
    env.round_at(sampler, 2.5)
    record = env.store.get("ecs", TASK)
    assert record.ended is False and f"ecs-{TASK}" in sampler.tracked   # idle 1 s: maybe between containers
    assert not (env.records / f"ecs-{TASK}.json").exists()
    env.round_at(sampler, 3.5)                                           # idle 2 s: ended

    assert record.ended is True and sampler.tracked == {}
    assert record.resource == f"ecs task {TASK_ARN}"
    assert record.identity == {"dag_id": "etl", "run_id": "manual__2023-11-14T22:13:00+00:00",
                               "task_id": "load", "map_index": -1, "try_number": 1}
    assert record.requested == {"cpu_vcpu": 0.25, "memory_mib": 512.0}
    assert env.ecs.calls[0] == {"cluster": CLUSTER_ARN, "tasks": [TASK], "include": ["TAGS"]}
    assert record.started_at == pytest.approx(T0 - 0.2, abs=1e-6)
    assert record.ended_at == pytest.approx(T0 + 1.2, abs=1e-6)
    # three running samples, then the tail the task's cgroup kept, stamped at the container's exit
    assert [s[1:] for s in record.samples] == [[200_000_000, 80 * MIB], [700_000_000, 130 * MIB],
                                               [1_200_000_000, 90 * MIB], [1_500_000_000, 4 * MIB]]
    assert [s[0] for s in record.samples] == [T0, T0 + 0.5, T0 + 1.0, pytest.approx(T0 + 1.2, abs=1e-3)]
    assert record.cpu_seconds == 1.5
    assert record.peak_memory_mib == 130.0

    saved = json.loads((env.records / f"ecs-{TASK}.json").read_text())
    assert saved["ended"] is True and saved["identity"]["task_id"] == "load"
    assert saved["samples"][-1][1] == 1_500_000_000
    assert Store(env.records).get("ecs", TASK).cpu_seconds == 1.5       # a restarted sampler keeps it

    assert env.tree.removed == [task]
    for controller in CONTROLLERS:
        assert not (root / controller / task).exists(), controller
        assert (root / controller / "ecs").is_dir()


def test_ecs_task_published_as_container_insights(env):
    root, task = env.root, f"ecs/{TASK}"
    sampler = env.sampler()
    # 0.5 CPU-s before the first sample, then 1 core for 1 s, then 2 cores for 0.5 s
    for at, cpu_ns, usage in ((0.0, 500_000_000, 64 * MIB), (0.5, 1_000_000_000, 96 * MIB),
                              (1.0, 1_500_000_000, 128 * MIB), (1.5, 2_500_000_000, 128 * MIB)):
        set_cgroup(root, task, cpu_ns=cpu_ns, usage=usage, pids=2)
        set_cgroup(root, f"{task}/{CONTAINER}", cpu_ns=cpu_ns, usage=usage, pids=2)
        env.round_at(sampler, at)
    set_cgroup(root, task, cpu_ns=2_500_000_000, usage=0, pids=0)
    env.round_at(sampler, 2.0)
    env.round_at(sampler, 4.0)
    assert env.store.get("ecs", TASK).ended

    data = [d for call in env.cloudwatch.calls for d in call["MetricData"]]
    assert {call["Namespace"] for call in env.cloudwatch.calls} == {CONTAINER_INSIGHTS} == {"ECS/ContainerInsights"}
    dims = [{"Name": "ClusterName", "Value": "sandbox"}, {"Name": "TaskDefinitionFamily", "Value": "etl-load"},
            {"Name": "TaskId", "Value": TASK}]
    assert all(d["Dimensions"] == dims and d["StorageResolution"] == 1 for d in data)
    cpu = [d for d in data if d["MetricName"] == "CpuUtilized"]
    # One datum per whole second, in CPU units (1024 per vCPU); together they are the task's CPU time.
    stamps = [d["Timestamp"].timestamp() for d in cpu]
    assert stamps == sorted(set(stamps)) and all(t == int(t) for t in stamps)
    assert sum(d["Value"] for d in cpu) / 1024 == pytest.approx(2.5)
    assert all(d["Unit"] == "None" for d in cpu)
    memory = [(d["Value"], d["Unit"]) for d in data if d["MetricName"] == "MemoryUtilized"]
    assert memory == [(64.0, "Megabytes"), (96.0, "Megabytes"), (128.0, "Megabytes"), (128.0, "Megabytes")]


def test_per_second_cpu_adds_up_across_flushes():
    from sandbox.metrics.sampler import per_second
    points = [[10.2, 0.1e9, 0], [10.45, 0.35e9, 0], [10.7, 0.6e9, 0], [10.95, 0.85e9, 0], [11.2, 1.1e9, 0],
              [11.45, 1.35e9, 0], [12.3, 2.2e9, 0]]
    first, since, kept = per_second(points[:5], None, final=False)
    assert [s for s, _ in first] == [10] and since == 11.0      # only the second that has ended
    assert first[0][1] == pytest.approx(0.9 * 1024)              # 0.1 before the first sample + 0.8 in 10.2-11
    rest, since, _ = per_second(kept + points[5:], since, final=True)
    assert [s for s, _ in rest] == [11, 12] and since == 12.3
    assert sum(v for _, v in first + rest) / 1024 == pytest.approx(2.2)


def test_ecs_task_present_only_after_it_ended_has_no_samples(env):
    # The sampler was down while the task ran: its cgroup has CPU and no process.
    root, task = env.root, f"ecs/{TASK}"
    set_cgroup(root, task, cpu_ns=3_000_000_000, usage=2 * MIB, pids=0)
    set_cgroup(root, f"{task}/{CONTAINER}", cpu_ns=3_000_000_000, usage=2 * MIB, pids=0)
    sampler = env.sampler()
    env.round_at(sampler, 0.0)
    env.round_at(sampler, 1.0)
    assert env.store.get("ecs", TASK).ended is False
    env.round_at(sampler, 2.0)

    record = env.store.get("ecs", TASK)
    assert record.ended is True
    assert record.samples == [] and record.cpu_seconds is None and record.peak_memory_mib is None
    assert record.identity["task_id"] == "load"
    assert (record.started_at, record.ended_at) == (pytest.approx(T0 - 0.2, abs=1e-6),
                                                   pytest.approx(T0 + 1.2, abs=1e-6))
    assert (env.records / f"ecs-{TASK}.json").exists()
    assert env.tree.removed == [task]
    assert env.cloudwatch.calls == []


def test_ecs_task_not_yet_started_is_not_ended(env):
    set_cgroup(env.root, f"ecs/{TASK}", cpu_ns=0, pids=0)   # created, no container started yet
    sampler = env.sampler()
    for seconds in (0, 1, 2, 3, 4):
        env.round_at(sampler, seconds)
    assert env.store.get("ecs", TASK).ended is False
    assert f"ecs-{TASK}" in sampler.tracked and env.tree.removed == []


def test_ended_record_is_not_tracked_again(env):
    root, task = env.root, f"ecs/{TASK}"
    set_cgroup(root, task, cpu_ns=3_000_000_000, pids=0)
    env.store.add(Record(backend="ecs", key=TASK, resource="ecs task x", ended=True,
                         samples=[[T0, 1, 2], [T0 + 1, 3, 4]]))
    sampler = env.sampler()
    env.round_at(sampler, 0.0)
    env.round_at(sampler, 3.0)
    assert sampler.tracked == {}
    assert env.store.get("ecs", TASK).samples == [[T0, 1, 2], [T0 + 1, 3, 4]]


# ── a pod ─────────────────────────────────────────────────────────────────
RUN_LABEL = "manual__2023-11-14T2213000000-8b1c2d3e4"


def kpo_pod(phase: str, statuses: list[dict]) -> dict:
    return {"metadata": {"uid": POD_UID, "namespace": "airflow", "name": "transform-abc123",
                         "labels": {"kubernetes_pod_operator": "True", "dag_id": "etl", "task_id": "transform",
                                    "run_id": RUN_LABEL, "try_number": "2",
                                    "map_index": "1"}},
            "spec": {"containers": [
                {"name": "base", "resources": {"requests": {"cpu": "500m", "memory": "256Mi"},
                                               "limits": {"cpu": "1", "memory": "512Mi"}}},
                {"name": "airflow-xcom-sidecar", "resources": {"requests": {"cpu": "1m", "memory": "10Mi"}}}]},
            "status": {"phase": phase, "containerStatuses": statuses}}


SIDECAR_RUNNING = {"name": "airflow-xcom-sidecar", "state": {"running": {"startedAt": "2023-11-14T22:13:00Z"}}}
BASE_RUNNING = {"name": "base", "state": {"running": {"startedAt": "2023-11-14T22:13:21Z"}}}
BASE_DONE = {"name": "base", "state": {"terminated": {"startedAt": "2023-11-14T22:13:21Z",
                                                      "finishedAt": "2023-11-14T22:13:24Z", "exitCode": 0}}}


def test_pod_measured_until_it_succeeded(env):
    root = env.root
    env.pods.pods[POD_UID] = kpo_pod("Running", [BASE_RUNNING, SIDECAR_RUNNING])
    sampler = env.sampler()
    set_cgroup(root, POD_CGROUP, cpu_ns=100_000_000, usage=40 * MIB, inactive=8 * MIB, pids=2)
    env.round_at(sampler, 1.0)
    set_cgroup(root, POD_CGROUP, cpu_ns=600_000_000, usage=72 * MIB, inactive=8 * MIB, pids=2)
    env.round_at(sampler, 2.0)
    record = env.store.get("k8s", POD_UID)
    assert record.ended is False
    assert record.identity == {"dag_id": "etl", "run_id": RUN_LABEL,
                               "task_id": "transform", "map_index": 1, "try_number": 2}
    env.pods.pods[POD_UID] = kpo_pod("Succeeded", [BASE_DONE, SIDECAR_RUNNING])
    set_cgroup(root, POD_CGROUP, cpu_ns=700_000_000, usage=9 * MIB, inactive=8 * MIB, pids=0)
    env.round_at(sampler, 3.0)

    assert record.ended is True and sampler.tracked == {}
    assert record.resource == "pod airflow/transform-abc123"
    assert record.requested == {"cpu_vcpu": 0.5, "memory_mib": 256.0}     # the sidecar's 1m/10Mi left out
    assert record.limits == {"cpu_vcpu": 1.0, "memory_mib": 512.0}
    assert (record.started_at, record.ended_at) == (T0 + 1.0, T0 + 4.0)  # the base container's, not the sidecar's
    assert [s[1:] for s in record.samples] == [[100_000_000, 32 * MIB], [600_000_000, 64 * MIB],
                                               [700_000_000, 1 * MIB]]
    assert record.cpu_seconds == 0.7
    assert json.loads((env.records / f"k8s-{POD_UID}.json").read_text())["ended"] is True
    assert env.tree.removed == []                     # the kubelet removes a pod's cgroup, not the sampler
    assert env.cloudwatch.calls == []                 # Container Insights is ECS's
    env.round_at(sampler, 4.0)                        # the cgroup outlives the pod's end
    assert sampler.tracked == {} and len(record.samples) == 3


def test_pod_deleted_is_finished_when_its_cgroup_vanishes(env):
    env.pods.pods[POD_UID] = kpo_pod("Running", [BASE_RUNNING, SIDECAR_RUNNING])
    sampler = env.sampler()
    set_cgroup(env.root, POD_CGROUP, cpu_ns=100_000_000, usage=16 * MIB, pids=1)
    env.round_at(sampler, 1.0)
    set_cgroup(env.root, POD_CGROUP, cpu_ns=900_000_000, usage=32 * MIB, pids=1)
    env.round_at(sampler, 1.5)
    remove_cgroup(env.root, POD_CGROUP)
    env.round_at(sampler, 2.0)

    record = env.store.get("k8s", POD_UID)
    assert record.ended is True and sampler.tracked == {}
    assert record.identity["task_id"] == "transform"
    assert record.started_at == T0 + 1.0                  # the base container's running startedAt
    assert record.ended_at == T0 + 1.5                    # not terminated: the last sample
    assert record.cpu_seconds == 0.9 and record.peak_memory_mib == 32.0
    assert (env.records / f"k8s-{POD_UID}.json").exists()


def test_pod_not_found_by_the_watch_keeps_being_sampled(env):
    set_cgroup(env.root, POD_CGROUP, cpu_ns=1, usage=MIB, pids=1)
    sampler = env.sampler()
    env.round_at(sampler, 0.0)
    env.round_at(sampler, 0.5)
    record = env.store.get("k8s", POD_UID)
    assert record.ended is False and record.identity is None and len(record.samples) == 2


# ── Docker's times ────────────────────────────────────────────────────────
@pytest.mark.parametrize("value, epoch", [
    ("2023-11-14T22:13:20.123456789Z", T0 + 0.123456),
    ("2023-11-14T22:13:20.5Z", T0 + 0.5),                 # Docker trims trailing zeros
    ("2023-11-14T22:13:20Z", T0),
    ("2023-11-14T23:13:20+01:00", T0),
])
def test_epoch_docker_and_kubernetes_times(value, epoch):
    assert _epoch(value) == pytest.approx(epoch, abs=1e-6)


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00Z", "", None])
def test_epoch_zero_time_is_none(value):
    assert _epoch(value) is None


@pytest.fixture
def new_york_time(monkeypatch):
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_epoch_keeps_the_zone_of_a_nanosecond_time(new_york_time):
    # Cutting the nanoseconds once took the zone's digits too and read the time in the local zone.
    assert _epoch("2023-11-14T22:13:20.123456789Z") == pytest.approx(T0 + 0.123456, abs=1e-6)
    assert _epoch("2023-11-14T17:13:20.5-05:00") == pytest.approx(T0 + 0.5, abs=1e-6)


def test_pod_times_within_the_kubelets_seconds_come_from_the_samples():
    from sandbox.metrics.sampler import refine_to_samples
    # The kubelet says 10 s to 10 s: the container ran less than a second.
    samples = [[9.8, 5e6, 0], [10.05, 5e6, 0], [10.3, 2e8, 0], [10.55, 4e8, 0], [10.8, 4e8, 0]]
    assert refine_to_samples(10.0, 10.0, samples) == (10.05, 10.55)
    # Samples outside the kubelet's seconds do not stretch them by more than the second it truncated.
    assert refine_to_samples(10.0, 10.0, [[8.0, 0, 0], [12.0, 1e9, 0]]) == (10.0, 11.0)
    assert refine_to_samples(10.0, 12.0, [[10.2, 0, 0], [10.4, 0, 0]]) == (10.0, 12.0)  # no CPU: unchanged


# ── what the sampler could not do, recorded for the reports ───────────────
class FailingEcs(FakeEcs):
    """The emulator restarting: its API refuses connections until `answers` is set."""

    def __init__(self, tasks):
        super().__init__(tasks)
        self.answers = False

    def list_clusters(self):
        if not self.answers:
            raise ConnectionError('Could not connect to the endpoint URL: "http://localstack:4566/"')
        return super().list_clusters()


def test_ecs_api_failing_is_recorded_with_its_time_until_it_answers_again(env):
    env.ecs = FailingEcs({TASK_ARN: ECS_TASK})
    sampler = env.sampler()
    set_cgroup(env.root, f"ecs/{TASK}", cpu_ns=100_000_000, usage=MIB, pids=1)
    env.round_at(sampler, 0.0)
    health = sampler.ecs_lookup_health
    assert (health.state, health.since) == ("failing", T0)
    assert health.failure == ("the emulator's ECS API did not answer (ConnectionError: Could not connect to the "
                              'endpoint URL: "http://localstack:4566/")')
    assert env.store.get("ecs", TASK).identity is None
    env.ecs.answers = True
    env.round_at(sampler, 1.0)
    assert health.state == "ok" and env.store.get("ecs", TASK).identity["task_id"] == "load"
    assert [(p["since"], p["until"]) for p in health.during(T0, T0 + 1)] == [(T0, T0 + 1.0)]


def test_ecs_api_back_while_no_task_runs_is_noticed(env):
    env.ecs = FailingEcs({TASK_ARN: ECS_TASK})
    sampler = env.sampler()
    set_cgroup(env.root, f"ecs/{TASK}", cpu_ns=0, pids=1)
    env.round_at(sampler, 0.0)
    remove_cgroup(env.root, f"ecs/{TASK}")
    env.round_at(sampler, 0.5)
    assert sampler.tracked == {} and sampler.ecs_lookup_health.state == "failing"
    env.ecs.answers = True
    env.round_at(sampler, 6.0)                 # no task to look up: the sampler asks the API itself
    assert sampler.ecs_lookup_health.state == "ok"


def test_no_cgroup_tree_is_recorded_not_taken_for_an_idle_sandbox(env, tmp_path):
    env.tree = CgroupFs(tmp_path / "not-mounted")
    sampler = env.sampler()
    env.round_at(sampler, 0.0)
    assert sampler.sampling_health.state == "failing"
    assert sampler.sampling_health.problem() == (
        f"cgroup sampling failing since 22:13:20 UTC: no cgroup filesystem at {tmp_path / 'not-mounted'} "
        "(neither v2's cgroup.controllers nor v1's cpuacct/): compose mounts the host's /sys/fs/cgroup there")
    assert CgroupFs(env.root).problem() is None   # the other tests' v1 tree
