"""cgroups.py against fake cgroup trees built from real files in tmp_path: a v1 host (one directory
per controller) and a v2 host (one unified tree), with ECS task and pod cgroups where the emulator,
the offline node, kind and a systemd-driver kubelet put them."""
from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.metrics.cgroups import CgroupTree, Reading

pytestmark = pytest.mark.unit

TASK = "0f6e4b2a9c8d4e1fa3b5c7d9e1f2a3b4"
OTHER_TASK = "11111111222233334444555555555555"
CONTAINER = "c0ffee" * 10 + "abcd"
NODE = "d0cca" * 12 + "beef"
BURSTABLE_UID = "6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
GUARANTEED_UID = "7b2c3d4e-5f60-4b7c-9d8e-0f1a2b3c4d5e"
BESTEFFORT_UID = "8c3d4e5f-6071-4c8d-ae9f-1a2b3c4d5e6f"
SYSTEMD_UID = "9d4e5f60-7182-4d9e-bfa0-2b3c4d5e6f70"
MIB = 2**20


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def v1_cgroup(root: Path, rel: str, *, cpu_ns: int, usage: int, inactive: int, pids: int | None = None) -> None:
    write(root / "cpuacct" / rel / "cpuacct.usage", f"{cpu_ns}\n")
    write(root / "memory" / rel / "memory.usage_in_bytes", f"{usage}\n")
    # inactive_file is this cgroup's own; total_inactive_file includes its children (what counts)
    write(root / "memory" / rel / "memory.stat",
          f"cache 999\ninactive_file 7\nactive_file 5\ntotal_cache 999\ntotal_inactive_file {inactive}\n")
    if pids is not None:
        write(root / "pids" / rel / "pids.current", f"{pids}\n")


def v2_cgroup(root: Path, rel: str, *, usage_usec: int, current: int, inactive: int, pids: int | None = None) -> None:
    write(root / rel / "cpu.stat", f"usage_usec {usage_usec}\nuser_usec 1\nsystem_usec 2\n")
    write(root / rel / "memory.current", f"{current}\n")
    write(root / rel / "memory.stat", f"anon 100\nfile 999\nactive_file 5\ninactive_file {inactive}\n")
    if pids is not None:
        write(root / rel / "pids.current", f"{pids}\n")


@pytest.fixture
def v1(tmp_path) -> Path:
    root = tmp_path / "v1"
    v1_cgroup(root, f"ecs/{TASK}", cpu_ns=2_500_000_000, usage=300 * MIB, inactive=100 * MIB, pids=3)
    v1_cgroup(root, f"ecs/{TASK}/{CONTAINER}", cpu_ns=2_000_000_000, usage=250 * MIB, inactive=90 * MIB, pids=3)
    v1_cgroup(root, f"ecs/{OTHER_TASK}", cpu_ns=10, usage=MIB, inactive=0, pids=0)
    node = f"docker/{NODE}/kubepods"
    v1_cgroup(root, f"{node}/burstable/pod{BURSTABLE_UID}", cpu_ns=4_000_000_000, usage=64 * MIB,
              inactive=4 * MIB, pids=2)
    (root / "cpuacct" / node / f"burstable/pod{BURSTABLE_UID}" / ("ab" * 32)).mkdir()  # a container
    v1_cgroup(root, f"{node}/pod{GUARANTEED_UID}", cpu_ns=1, usage=MIB, inactive=0, pids=1)
    (root / "cpuacct" / node / "besteffort").mkdir()
    (root / "cpuacct" / "docker" / ("ee" * 32)).mkdir()   # a container that is not a node
    (root / "cpuacct" / "user.slice").mkdir()
    return root


@pytest.fixture
def v2(tmp_path) -> Path:
    root = tmp_path / "v2"
    write(root / "cgroup.controllers", "cpuset cpu io memory pids\n")
    v2_cgroup(root, f"ecs/{TASK}", usage_usec=1_500_000, current=200 * MIB, inactive=50 * MIB, pids=4)
    v2_cgroup(root, f"ecs/{TASK}/{CONTAINER}", usage_usec=1_000_000, current=150 * MIB, inactive=10 * MIB, pids=4)
    kind = f"docker/{NODE}/kubelet/kubepods/besteffort/pod{BESTEFFORT_UID}"
    v2_cgroup(root, kind, usage_usec=42, current=MIB, inactive=0, pids=1)
    (root / f"docker/{NODE}/kubelet/kubepods/burstable").mkdir(parents=True)
    systemd = f"kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{SYSTEMD_UID.replace('-', '_')}.slice"
    v2_cgroup(root, systemd, usage_usec=7, current=MIB, inactive=0, pids=1)
    (root / "system.slice" / "sshd.service").mkdir(parents=True)
    return root


# ── v1 ────────────────────────────────────────────────────────────────────
def test_v1_is_detected_without_cgroup_controllers(v1):
    assert CgroupTree(v1).v2 is False


def test_v1_read_gives_cpu_working_set_and_pids(v1):
    reading = CgroupTree(v1).read(f"ecs/{TASK}")
    # working set = usage - total_inactive_file (not the cgroup's own inactive_file)
    assert reading == Reading(cpu_ns=2_500_000_000, memory_bytes=200 * MIB, processes=3)


def test_v1_working_set_is_never_negative(v1):
    v1_cgroup(v1, "ecs/shrunk", cpu_ns=5, usage=10 * MIB, inactive=12 * MIB, pids=1)
    assert CgroupTree(v1).read("ecs/shrunk").memory_bytes == 0


def test_v1_processes_from_cgroup_procs_without_pids_controller(v1):
    rel = "ecs/nopids"
    v1_cgroup(v1, rel, cpu_ns=1, usage=MIB, inactive=0)
    write(v1 / "cpuacct" / rel / "cgroup.procs", "")  # the parent itself holds no process
    write(v1 / "cpuacct" / rel / "a" / "cgroup.procs", "101\n102\n")
    write(v1 / "cpuacct" / rel / "b" / "cgroup.procs", "201\n\n")
    assert CgroupTree(v1).read(rel).processes == 3


def test_v1_pids_current_wins_over_cgroup_procs(v1):
    write(v1 / "cpuacct" / f"ecs/{TASK}" / "cgroup.procs", "1\n2\n3\n4\n5\n6\n7\n")
    assert CgroupTree(v1).read(f"ecs/{TASK}").processes == 3


def test_v1_read_is_none_once_gone(v1):
    tree = CgroupTree(v1)
    assert tree.read("ecs/never-was") is None
    (v1 / "memory" / f"ecs/{OTHER_TASK}" / "memory.usage_in_bytes").unlink()
    assert tree.read(f"ecs/{OTHER_TASK}") is None   # removed from the memory hierarchy first


def test_v1_ecs_tasks(v1):
    assert CgroupTree(v1).ecs_tasks() == {TASK: f"ecs/{TASK}", OTHER_TASK: f"ecs/{OTHER_TASK}"}


def test_ecs_tasks_empty_before_any_task(tmp_path):
    (tmp_path / "cpuacct").mkdir()
    assert CgroupTree(tmp_path).ecs_tasks() == {}


def test_v1_children_are_the_task_containers(v1):
    assert CgroupTree(v1).children(f"ecs/{TASK}") == [CONTAINER]
    assert CgroupTree(v1).children(f"ecs/{OTHER_TASK}") == []
    assert CgroupTree(v1).children("ecs/gone") == []


def test_v1_node_roots_finds_kubepods_in_a_node_container(v1):
    assert CgroupTree(v1).node_roots() == [f"docker/{NODE}/kubepods"]


def test_v1_node_roots_finds_the_hosts_own_kubelet(v1):
    (v1 / "cpuacct" / "kubepods").mkdir()
    assert sorted(CgroupTree(v1).node_roots()) == sorted(["kubepods", f"docker/{NODE}/kubepods"])


def test_v1_pods_by_qos_class(v1):
    tree = CgroupTree(v1)
    assert tree.pods(tree.node_roots()) == {
        BURSTABLE_UID: f"docker/{NODE}/kubepods/burstable/pod{BURSTABLE_UID}",
        GUARANTEED_UID: f"docker/{NODE}/kubepods/pod{GUARANTEED_UID}",
    }
    assert tree.pods([]) == {}


def test_v1_pod_read(v1):
    reading = CgroupTree(v1).read(f"docker/{NODE}/kubepods/burstable/pod{BURSTABLE_UID}")
    assert reading == Reading(cpu_ns=4_000_000_000, memory_bytes=60 * MIB, processes=2)


def test_v1_remove_takes_the_task_out_of_every_controller(v1):
    root = v1 / "removable"
    for controller in ("cpuacct", "memory", "pids", "cpu,cpuacct"):
        (root / controller / f"ecs/{TASK}/{CONTAINER}").mkdir(parents=True)
        (root / controller / f"ecs/{OTHER_TASK}").mkdir(parents=True)
    (root / "cpu").symlink_to(root / "cpu,cpuacct")  # as on hosts that mount cpu and cpuacct together
    CgroupTree(root).remove(f"ecs/{TASK}")
    for controller in ("cpuacct", "memory", "pids", "cpu,cpuacct"):
        assert not (root / controller / f"ecs/{TASK}").exists(), controller
        assert (root / controller / f"ecs/{OTHER_TASK}").is_dir(), controller


def test_remove_never_deletes_files(v1):
    # On a real cgroupfs rmdir takes a directory with only the kernel's files; here files are real,
    # and remove() must leave them (it is rmdir, not rm -r).
    CgroupTree(v1).remove(f"ecs/{TASK}")
    assert (v1 / "cpuacct" / f"ecs/{TASK}" / CONTAINER / "cpuacct.usage").read_text() == "2000000000\n"
    assert (v1 / "pids" / f"ecs/{TASK}" / "pids.current").exists()


# ── v2 ────────────────────────────────────────────────────────────────────
def test_v2_is_detected_by_cgroup_controllers(v2):
    assert CgroupTree(v2).v2 is True


def test_v2_read_cpu_from_usec_and_working_set(v2):
    reading = CgroupTree(v2).read(f"ecs/{TASK}")
    assert reading == Reading(cpu_ns=1_500_000_000, memory_bytes=150 * MIB, processes=4)


def test_v2_processes_from_cgroup_procs_without_pids_current(v2):
    rel = f"ecs/{TASK}"
    (v2 / rel / "pids.current").unlink()
    (v2 / rel / CONTAINER / "pids.current").unlink()
    write(v2 / rel / "cgroup.procs", "")
    write(v2 / rel / CONTAINER / "cgroup.procs", "7\n8\n")
    assert CgroupTree(v2).read(rel).processes == 2


def test_v2_read_is_none_once_gone(v2):
    tree = CgroupTree(v2)
    assert tree.read("ecs/never-was") is None
    (v2 / f"ecs/{TASK}/{CONTAINER}" / "memory.current").unlink()
    assert tree.read(f"ecs/{TASK}/{CONTAINER}") is None


def test_v2_ecs_tasks_and_children(v2):
    tree = CgroupTree(v2)
    assert tree.ecs_tasks() == {TASK: f"ecs/{TASK}"}
    assert tree.children(f"ecs/{TASK}") == [CONTAINER]


def test_v2_node_roots_kind_and_systemd(v2):
    assert sorted(CgroupTree(v2).node_roots()) == sorted([f"docker/{NODE}/kubelet", "kubepods.slice"])


def test_v2_pods_kind_layout_and_systemd_driver_uid_with_dashes(v2):
    tree = CgroupTree(v2)
    assert tree.pods(tree.node_roots()) == {
        BESTEFFORT_UID: f"docker/{NODE}/kubelet/kubepods/besteffort/pod{BESTEFFORT_UID}",
        SYSTEMD_UID: ("kubepods.slice/kubepods-burstable.slice/"
                      f"kubepods-burstable-pod{SYSTEMD_UID.replace('-', '_')}.slice"),
    }


def test_v2_systemd_guaranteed_pod(v2):
    (v2 / "kubepods.slice" / f"kubepods-pod{GUARANTEED_UID.replace('-', '_')}.slice").mkdir()
    pods = CgroupTree(v2).pods(["kubepods.slice"])
    assert pods[GUARANTEED_UID] == f"kubepods.slice/kubepods-pod{GUARANTEED_UID.replace('-', '_')}.slice"


def test_v2_remove_empty_dirs(tmp_path):
    write(tmp_path / "cgroup.controllers", "cpu memory pids\n")
    (tmp_path / f"ecs/{TASK}/{CONTAINER}").mkdir(parents=True)
    (tmp_path / f"ecs/{OTHER_TASK}").mkdir(parents=True)
    CgroupTree(tmp_path).remove(f"ecs/{TASK}")
    assert not (tmp_path / f"ecs/{TASK}").exists()
    assert (tmp_path / f"ecs/{OTHER_TASK}").is_dir()
    assert (tmp_path / "cgroup.controllers").exists()
