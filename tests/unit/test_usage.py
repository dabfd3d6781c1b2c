"""sandbox/host/usage.py over a fake v1 cgroup tree (real files in tmp_path): each component's CPU over
a window, the node's own share without its pods', what ECS tasks removed inside the window used, and
the rest of the machine."""
from __future__ import annotations

import pytest

from sandbox.host import usage
from sandbox.metrics.cgroups import CgroupTree
from tests.unit.test_metrics_cgroups import MIB, v1_cgroup

pytestmark = pytest.mark.unit

SCHEDULER = "5c" * 32
NODE = "0d" * 32


def tree_at(root, *, scheduler_ns, node_ns, pods_ns, ecs_ns, pods_mib=100):
    v1_cgroup(root, f"docker/{SCHEDULER}", cpu_ns=scheduler_ns, usage=400 * MIB, inactive=0)
    v1_cgroup(root, f"docker/{NODE}", cpu_ns=node_ns, usage=(500 + pods_mib) * MIB, inactive=0)
    v1_cgroup(root, f"docker/{NODE}/kubepods", cpu_ns=pods_ns, usage=pods_mib * MIB, inactive=0)
    v1_cgroup(root, "ecs", cpu_ns=ecs_ns, usage=10 * MIB, inactive=0)


@pytest.fixture
def meter(tmp_path, monkeypatch):
    parts = {"airflow-scheduler": f"docker/{SCHEDULER}", "cluster node (k8s-node)": f"docker/{NODE}",
             usage.PODS: f"docker/{NODE}/kubepods", usage.ECS_TASKS: "ecs"}
    monkeypatch.setattr(usage, "components", lambda settings, tree: parts)
    machine = iter([100.0, 190.0])
    monkeypatch.setattr(usage, "machine_cpu_seconds", lambda: next(machine))
    engine = iter([{1: 5.0}, {1: 8.0, 2: 1.0}])  # pid 2 started inside the window: counted whole
    monkeypatch.setattr(usage, "engine_cpu_seconds", lambda: next(engine))
    m = usage.UsageMeter(settings=None, interval=3600)
    m.tree = CgroupTree(tmp_path)
    return m


def test_each_component_is_charged_what_it_used_in_the_window(tmp_path, meter):
    s = 10**9
    tree_at(tmp_path, scheduler_ns=10 * s, node_ns=50 * s, pods_ns=30 * s, ecs_ns=7 * s)
    meter.start()
    # the node used 25 s, 20 of them in its pods; ECS tasks that ran and were removed still count in ecs/
    tree_at(tmp_path, scheduler_ns=40 * s, node_ns=75 * s, pods_ns=50 * s, ecs_ns=19 * s, pods_mib=300)
    used = meter.stop()
    assert used.cpu_s["airflow-scheduler"] == pytest.approx(30)
    assert used.cpu_s["cluster node (k8s-node)"] == pytest.approx(5)
    assert used.cpu_s[usage.PODS] == pytest.approx(20)
    assert used.cpu_s[usage.ECS_TASKS] == pytest.approx(12)
    assert used.tasks_cpu_s() == pytest.approx(32)
    assert used.cpu_s[usage.ENGINE] == pytest.approx(4)
    assert used.cpu_s[usage.REST] == pytest.approx(90 - 30 - 5 - 20 - 12 - 4)
    assert used.peak_mib["cluster node (k8s-node)"] == pytest.approx(500)  # its pods' memory is theirs
    assert used.peak_mib[usage.PODS] == pytest.approx(300)
    table = "\n".join(used.table("window"))
    assert "| airflow-scheduler | 30.0 | 33 | 400 | 400 |" in table


def test_work_added_takes_out_what_each_component_spends_idle_over_as_long():
    run = usage.Usage(seconds=60.0, cores=2, cpu_s={"airflow-scheduler": 26.0, usage.PODS: 18.0, "metrics": 0.2})
    idle = usage.Usage(seconds=30.0, cores=2, cpu_s={"airflow-scheduler": 1.0, "metrics": 0.5})
    rows = usage.work_added(run, idle, tasks=8)
    by_name = {r["component"]: r for r in rows}
    assert [r["component"] for r in rows] == ["airflow-scheduler", usage.PODS, "metrics"]
    # idle 1 CPU-s in 30 s: 2 CPU-s over the run's 60 s
    assert by_name["airflow-scheduler"] == {"component": "airflow-scheduler", "cpu_s": 26.0, "idle_cpu_s_per_min": 2.0,
                                            "added_cpu_s": 24.0, "per_task_cpu_s": 3.0}
    assert by_name[usage.PODS]["added_cpu_s"] == 18.0  # nothing runs in it idle
    assert by_name["metrics"]["added_cpu_s"] == 0.0  # less than idle (noise) is nothing added, not a saving
    table = usage.work_added_table(rows, run, tasks=8)
    assert table[-2].startswith("| all | 44.2 | 3.0 | 42.0 | 5.25 |")
    # the pods' own 18 CPU-s are the tasks' work; the other 24 are the sandbox's: 3 per task
    assert "18.0 CPU-s of it" in table[-1] and "3.00 CPU-s per task" in table[-1]
