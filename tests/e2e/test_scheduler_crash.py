"""The scheduler killed while an ECS task and a pod run (its LocalExecutor's task processes die with
it): the ECS task and the pod run on, and once Airflow notices the missing heartbeat the retry
reattaches to them instead of starting them again (resilient_tasks)."""
from __future__ import annotations

import re
import time

import pytest

from sandbox.core.poll import NotYet, wait_until
from sandbox.host import stack
from sandbox.host.docker import docker

pytestmark = [pytest.mark.e2e, pytest.mark.faults]


def ti_try(airflow_api, run_id: str, task_id: str) -> int:
    return next(ti["try_number"] for ti in airflow_api.task_instances("resilient_tasks", run_id)
                if ti["task_id"] == task_id)


def test_a_scheduler_crash_is_survived_by_reattaching(airflow_api, aws_session, kube_client, fault_figure):
    ecs = aws_session.client("ecs")
    run_id = airflow_api.trigger_dag("resilient_tasks", {"pause": 100})

    def both_running() -> bool:
        arns = ecs.list_tasks(cluster="sandbox", desiredStatus="RUNNING")["taskArns"]
        pods = kube_client.core_v1.list_namespaced_pod(kube_client.namespace,
                                                       label_selector="dag_id=resilient_tasks").items
        if not arns or not any(p.status.phase == "Running" for p in pods):
            raise NotYet(f"{len(arns)} ECS task(s) running, pods: {[p.status.phase for p in pods]}")
        return True
    wait_until(both_running, timeout=180, interval=2, what="the ECS task and the pod of resilient_tasks running")

    scheduler = stack.compose("ps", "-q", "airflow-scheduler", capture=True).stdout.strip()
    docker("kill", scheduler, check=True)
    killed = time.monotonic()
    docker("start", scheduler, check=True)

    run = airflow_api.wait_for_dag_run("resilient_tasks", run_id, timeout=420)
    assert run["state"] == "success", airflow_api.task_states("resilient_tasks", run_id)
    fault_figure("scheduler killed 5 s into 100 s tasks: run succeeded after", f"{time.monotonic() - killed:.0f} s")

    first, retry = (airflow_api.task_log("resilient_tasks", run_id, "long_ecs_task", try_number=n) for n in (1, 2))
    started = re.search(r"arn:aws:ecs:[^:]+:\d+:task/sandbox/[0-9a-f-]+", first)
    assert started, first[-2000:]
    assert f"Reattaching previously launched task: {started.group(0)}" in retry, retry[-2000:]
    assert "done" in retry

    retry = airflow_api.task_log("resilient_tasks", run_id, "long_pod", try_number=2)
    assert "done" in retry, retry[-2000:]
    # One pod for both tries: the retry found the first try's pod (KubernetesPodOperator's reattach).
    assert re.search(r"[Ff]ound matching pod", retry), retry[-2000:]
    fault_figure("scheduler killed: tries of the ECS task / the pod, each reattached",
                 f"{ti_try(airflow_api, run_id, 'long_ecs_task')} / {ti_try(airflow_api, run_id, 'long_pod')}")
