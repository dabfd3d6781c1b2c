"""report.py: a DAG run's task instances (as Airflow's REST API returns them) joined with the sampler's
records, one row per task try, and priced; which records belong to a run."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from sandbox.metrics import report
from sandbox.metrics.pricing import DEFAULT_PRICES, fargate_cost
from sandbox.metrics.store import Record

pytestmark = pytest.mark.unit

RUN_ID = "manual__2024-01-01T00:00:00+00:00"
RUN_LABEL = "manual__2024-01-01T0000000000-701821d7a"   # KubernetesPodOperator's label of RUN_ID
MIB = 2**20


def at(seconds: float) -> float:
    """Epoch seconds, `seconds` after the run started."""
    return datetime(2024, 1, 1, tzinfo=timezone.utc).timestamp() + seconds


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(at(seconds), timezone.utc).isoformat()


DAG_RUN = {"dag_id": "etl", "dag_run_id": RUN_ID, "state": "failed",
           "start_date": "2024-01-01T00:00:00+00:00", "end_date": "2024-01-01T00:05:00+00:00"}


def ti(task_id, operator, state, try_number=1, start=None, end=None, map_index=-1) -> dict:
    return {"task_id": task_id, "map_index": map_index, "try_number": try_number, "state": state,
            "operator": operator, "start_date": iso(start) if start is not None else None,
            "end_date": iso(end) if end is not None else None}


TIS = [
    ti("extract", "EcsRunTaskOperator", "success", start=10, end=40),
    ti("transform", "KubernetesPodOperator", "failed", try_number=2, start=60, end=90),
    ti("notify", "PythonOperator", "success", start=95, end=96),
    ti("skipped_load", "EcsRunTaskOperator", "skipped"),
    ti("cleanup", "KubernetesPodOperator", "upstream_failed"),
]


def ecs_record() -> Record:
    return Record(backend="ecs", key="task1", resource="ecs task arn:aws:ecs:us-east-1:0:task/sandbox/task1",
                  identity={"dag_id": "etl", "run_id": RUN_ID, "task_id": "extract", "map_index": -1,
                            "try_number": 1},
                  requested={"cpu_vcpu": 0.25, "memory_mib": 512.0},
                  started_at=at(12), ended_at=at(22), ended=True,
                  samples=[[at(12), 0, 100 * MIB], [at(13), 500_000_000, 200 * MIB],
                           [at(15), 2_500_000_000, 150 * MIB]])


def pod_record_try1() -> Record:
    return Record(backend="k8s", key="uid-1", resource="pod airflow/transform-1",
                  identity={"dag_id": "etl", "run_id": RUN_LABEL, "task_id": "transform", "map_index": -1,
                            "try_number": 1},
                  requested={"cpu_vcpu": 0.5, "memory_mib": 256.0}, limits={"cpu_vcpu": 1.0, "memory_mib": 512.0},
                  started_at=at(41), ended_at=at(45), ended=True,
                  samples=[[at(41), 100_000_000, 30 * MIB], [at(43), 1_100_000_000, 60 * MIB]])


def build(records, *, sampler_up=True, tis=TIS):
    return report.build(DAG_RUN, tis, records, DEFAULT_PRICES, interval=0.5, sampler_up=sampler_up)


@pytest.fixture
def built():
    return build([ecs_record(), pod_record_try1()])


def rows_by(built) -> dict:
    return {(r["task_id"], r["try_number"]): r for r in built["tasks"]}


def test_rows_one_per_try_that_ran_skipped_and_upstream_failed_left_out(built):
    assert [(r["task_id"], r["try_number"]) for r in built["tasks"]] == [
        ("extract", 1), ("notify", 1), ("transform", 1), ("transform", 2)]


def test_run_fields(built):
    assert (built["dag_id"], built["run_id"], built["state"], built["wall_seconds"]) == ("etl", RUN_ID, "failed", 300.0)
    assert built["sampler"]["interval_seconds"] == 0.5
    assert built["sampler"]["measured_tasks"] == 2
    assert built["sampler"]["unmeasured_tasks"] == 1      # transform try 2; notify ran inside Airflow


def test_measured_ecs_row(built):
    row = rows_by(built)[("extract", 1)]
    assert row["measured"] is True
    assert (row["backend"], row["state"], row["operator"]) == ("ecs", "success", "EcsRunTaskOperator")
    assert row["resource"] == "ecs task arn:aws:ecs:us-east-1:0:task/sandbox/task1"
    assert (row["started_at"], row["ended_at"]) == (iso(12), iso(22))   # the runtime's, not Airflow's 10..40
    assert row["wall_seconds"] == 10.0
    assert row["cpu_seconds"] == 2.5
    assert row["peak_memory_mib"] == 200.0
    assert row["mean_cpu_cores"] == 0.25
    assert row["requested"] == {"cpu_vcpu": 0.25, "memory_mib": 512.0}
    # 0.5 CPU-s over 1 s, then 2 CPU-s over 2 s; t from started_at
    assert row["samples"] == {"t": [1.0, 3.0], "cpu_cores": [0.5, 1.0], "memory_mib": [200.0, 150.0]}


def test_earlier_try_with_a_record_is_its_own_row(built):
    row = rows_by(built)[("transform", 1)]
    assert row["measured"] is True and row["backend"] == "k8s"
    assert row["state"] == "ended"                      # Airflow's state is try 2's
    assert row["cpu_seconds"] == 1.1 and row["peak_memory_mib"] == 60.0
    assert row["limits"] == {"cpu_vcpu": 1.0, "memory_mib": 512.0}
    assert row["samples"] == {"t": [2.0], "cpu_cores": [0.5], "memory_mib": [60.0]}


def test_try_without_a_record_is_unmeasured_with_none_never_zero(built):
    row = rows_by(built)[("transform", 2)]
    assert row["measured"] is False
    assert (row["backend"], row["state"], row["resource"]) == ("k8s", "failed", None)
    assert row["cpu_seconds"] is None and row["peak_memory_mib"] is None and row["mean_cpu_cores"] is None
    assert row["requested"] is None
    assert row["samples"] == {"t": [], "cpu_cores": [], "memory_mib": []}
    assert (row["started_at"], row["wall_seconds"]) == (iso(60), 30.0)   # Airflow's times
    assert row["cost"]["fargate"] is None and row["cost"]["eks"] is None     # no size: no cost, not $0
    assert row["cost"]["mwaa"]["usd"] > 0


def test_airflow_only_task_has_no_backend(built):
    row = rows_by(built)[("notify", 1)]
    assert (row["backend"], row["measured"], row["cpu_seconds"]) == (None, False, None)


def test_a_record_with_one_sample_is_not_measured():
    record = ecs_record()
    record.samples = record.samples[-1:]
    row = build([record])["tasks"][0]
    assert (row["task_id"], row["measured"], row["cpu_seconds"], row["samples"]["t"]) == ("extract", False, None, [])


def test_a_try_airflow_no_longer_lists_is_kept():
    record = ecs_record()
    record.identity = {**record.identity, "task_id": "gone"}
    rows = build([record])["tasks"]
    assert rows[-1]["task_id"] == "gone" and rows[-1]["state"] == "ended" and rows[-1]["measured"] is True
    assert rows[-1]["operator"] is None and rows[-1]["backend"] == "ecs"


def test_costs_are_filled(built):
    assert set(built["cost"]) == {"fargate", "eks", "mwaa"}
    assert all(built["cost"][k]["usd"] > 0 for k in ("fargate", "eks", "mwaa"))
    extract = rows_by(built)[("extract", 1)]
    assert extract["cost"]["fargate"]["usd"] == fargate_cost(0.25, 512.0, 10.0, DEFAULT_PRICES)["usd"]
    assert set(extract["cost"]) == {"fargate", "eks", "mwaa"}
    assert extract["right_size"] is not None
    assert built["prices"]["region"] == DEFAULT_PRICES.region


def test_note_when_measured(built):
    assert built["sampler"]["note"].startswith("each ECS task's and pod's cgroup sampled every 0.5 s")


def test_note_when_the_sampler_is_down():
    built = build([], sampler_up=False)
    assert "the metrics service is not running" in built["sampler"]["note"]
    assert built["sampler"]["measured_tasks"] == 0


def test_note_when_runtime_tasks_have_no_records():
    built = build([])
    assert built["sampler"]["note"].startswith("no ECS task or pod of this run was measured")
    assert built["sampler"]["unmeasured_tasks"] == 2     # extract and transform try 2
    assert all(r["cpu_seconds"] is None for r in built["tasks"])


def test_note_when_no_task_ran_outside_airflow():
    built = build([], tis=[ti("notify", "PythonOperator", "success", start=1, end=2)])
    assert built["sampler"]["note"].startswith("each ECS task's and pod's cgroup")


def test_for_run_matches_label_safe_and_raw_run_ids():
    ecs, pod = ecs_record(), pod_record_try1()
    other_dag = Record(backend="ecs", key="t2", resource="r",
                       identity={**ecs.identity, "dag_id": "other"})
    other_run = Record(backend="k8s", key="u2", resource="r",
                       identity={**pod.identity, "run_id": "scheduled__2025-06-01T0000000000-62a051894"})
    unidentified = Record(backend="k8s", key="u3", resource="r")
    records = [ecs, pod, other_dag, other_run, unidentified]
    assert report.for_run(records, "etl", RUN_ID) == [ecs, pod]
    assert report.for_run(records, "other", RUN_ID) == [other_dag]
    assert report.for_run(records, "etl", "scheduled__2025-06-01T00:00:00+00:00") == [other_run]


def test_report_file_names_keep_the_run_readable():
    from sandbox.host.report import file_name
    assert file_name("manual__2026-11-25T19:03:57.979197+00:00") == "manual__2026-11-25T19_03_57.979197_00_00"
    assert file_name("scheduled__2026-01-01T00:00:00+00:00") != file_name("scheduled__2026-01-01T00:00:01+00:00")


def test_store_knows_which_runs_the_sampler_watched_whole(tmp_path):
    from sandbox.metrics.store import Store
    store = Store(tmp_path / "records")
    store.mark_up(100.0, 150.0)
    store.mark_up(100.0, 200.0)   # the same start: that span grows
    store.mark_up(300.0, 320.0)   # restarted: a new span
    again = Store(tmp_path / "records")  # after a restart of the service
    assert again.watched(110.0, 190.0) and again.watched(300.0, 320.0)
    assert not again.watched(190.0, 310.0)   # the sampler was down in between
    assert not again.watched(90.0, 120.0)    # the run began before the sampler


# ── why tries went unmeasured: the watches' records (health.py) for the run's window ──
def pod_watch_failing(until=None, ended_by=None) -> dict:
    return {"what": "pod watch", "backends": ["k8s"], "state": "failing", "since": at(-40), "until": until,
            "reasons": ["the cluster's certificate did not verify (CERTIFICATE_VERIFY_FAILED)"],
            "detail": None, "ended_by": ended_by}


def test_note_names_the_pod_watch_failure_during_the_run_not_a_guess():
    built = report.build(DAG_RUN, TIS, [ecs_record()], DEFAULT_PRICES, interval=0.5, sampler_up=True,
                         failures=[pod_watch_failing(until=at(70), ended_by="the kubeconfig written at 00:01:09 UTC "
                                                                            "was loaded at 00:01:10 UTC")])
    assert built["sampler"]["note"] == (
        "1 pod try of this run was not measured: the pod watch was failing during this run "
        "(from 23:59:20 UTC to 00:01:10 UTC): the cluster's certificate did not verify (CERTIFICATE_VERIFY_FAILED); "
        "it ended when the kubeconfig written at 00:01:09 UTC was loaded at 00:01:10 UTC")


def test_each_unmeasured_try_says_why_from_the_failures_during_its_own_times():
    early = {**pod_watch_failing(until=at(50)), "reasons": ["the API server is not reachable"]}
    late = {**pod_watch_failing(), "since": at(85)}
    rows = rows_by(report.build(DAG_RUN, TIS, [ecs_record(), pod_record_try1()], DEFAULT_PRICES, interval=0.5,
                                sampler_up=True, failures=[early, late]))
    # transform try 2 ran 60..90 (Airflow's times): the failure from 85 on concerns it, the one up to 50 not.
    assert rows[("transform", 2)]["reason"] == (
        "the pod watch was failing during this try (from 00:01:25 UTC on, and still now): "
        "the cluster's certificate did not verify (CERTIFICATE_VERIFY_FAILED)")
    assert rows[("transform", 1)]["reason"] is None and rows[("extract", 1)]["reason"] is None   # measured
    assert rows[("notify", 1)]["reason"] is None                                                   # no backend


def test_note_counts_each_backend_a_failure_explains():
    sampling = {"what": "cgroup sampling", "backends": ["ecs", "k8s"], "state": "failing", "since": at(5),
                "until": None, "reasons": ["no cgroup filesystem at /host/cgroup"], "detail": None, "ended_by": None}
    note = build([], tis=TIS)["sampler"]["note"]
    assert note.startswith("no ECS task or pod of this run was measured")   # nothing known: the generic text
    note = report.build(DAG_RUN, TIS, [], DEFAULT_PRICES, interval=0.5, sampler_up=True,
                        failures=[sampling])["sampler"]["note"]
    assert note.startswith("1 ECS task try and 1 pod try of this run were not measured: the cgroup sampling was "
                           "failing during this run (from 00:00:05 UTC on, and still now): no cgroup filesystem")


def test_a_failure_of_another_backends_watch_explains_nothing():
    built = report.build(DAG_RUN, TIS[:1], [], DEFAULT_PRICES, interval=0.5, sampler_up=True,
                         failures=[pod_watch_failing()])
    assert built["sampler"]["note"].startswith("no ECS task or pod of this run was measured")


def test_unmeasured_tries_no_failure_explains_are_counted_apart():
    built = report.build(DAG_RUN, TIS, [pod_record_try1()], DEFAULT_PRICES, interval=0.5, sampler_up=True,
                         failures=[pod_watch_failing()])
    note = built["sampler"]["note"]
    assert note.startswith("1 pod try of this run was not measured: the pod watch was failing during this run")
    assert note.endswith("; 1 ECS task try was not measured for a reason the metrics service did not record")
