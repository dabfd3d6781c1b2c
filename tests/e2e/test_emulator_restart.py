"""The emulator killed mid-task (a crash, an OOM kill): its state is back when it restarts, and an
ECS task that was running ends STOPPED with a reason that says so, so the operator fails within a
minute instead of waiting for logs that never come. Afterwards the sandbox works as before."""
from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest

from sandbox.core.airflow_api import AirflowApiError
from sandbox.core.poll import NotYet, wait_until
from sandbox.host import stack
from sandbox.host.docker import docker

pytestmark = [pytest.mark.e2e, pytest.mark.faults]

RESTART_REASON = "The AWS emulator restarted while this task ran"
TRIGGER_POLLED = "Status of the task is"  # the ECS trigger's line after each DescribeTasks


def emulator_container() -> str:
    return stack.compose("ps", "-q", "localstack", capture=True).stdout.strip()


def test_a_crash_of_the_emulator_keeps_its_state_and_ends_running_tasks(airflow_api, aws_session, fault_figure):
    ecs, s3, iam = aws_session.client("ecs"), aws_session.client("s3"), aws_session.client("iam")
    s3.put_object(Bucket="sandbox-data", Key="faults/written-before-the-crash.txt", Body=b"kept")
    roles = sorted(r["RoleName"] for r in iam.list_roles()["Roles"])
    definitions = ecs.list_task_definitions()["taskDefinitionArns"]

    run_id = airflow_api.trigger_dag("poc_ecs_operator", {"pause": 300})

    def running_tasks():
        arns = ecs.list_tasks(cluster="sandbox", desiredStatus="RUNNING")["taskArns"]
        tasks = ecs.describe_tasks(cluster="sandbox", tasks=arns)["tasks"] if arns else []
        if len([t for t in tasks if t["lastStatus"] == "RUNNING"]) < 2:
            raise NotYet(f"{len(tasks)} task(s) started")
        return [t["taskArn"] for t in tasks]
    arns = wait_until(running_tasks, timeout=120, interval=1, what="both ECS tasks of poc_ecs_operator running")

    # The deferred task's trigger creates its AWS clients when it starts, and a trigger started while
    # the emulator is down fails on Airflow's credentials ("Could not connect to the endpoint URL"),
    # not on the crash this test is about: the kill waits for the trigger's first poll.
    def trigger_polling() -> bool:
        try:
            log = airflow_api.task_log("poc_ecs_operator", run_id, "count_deferrable")
        except AirflowApiError as exc:  # 404 until the task instance has its first try
            raise NotYet(str(exc)) from exc
        if TRIGGER_POLLED not in log:
            raise NotYet("count_deferrable's trigger has not polled ECS yet")
        return True
    wait_until(trigger_polling, timeout=60, interval=1, what="count_deferrable's trigger polling ECS")
    time.sleep(4)  # the saver writes every 3 s: the running tasks are on the volume

    container = emulator_container()
    docker("kill", container, check=True)          # no clean shutdown: nothing is written at exit
    killed = time.monotonic()
    docker("start", container, check=True)
    _wait_answering(ecs)

    run = airflow_api.wait_for_dag_run("poc_ecs_operator", run_id, timeout=120)
    ended = time.monotonic() - killed
    fault_figure("emulator killed mid-task: the waiting ECS operators failed after", f"{ended:.1f} s")
    assert run["state"] == "failed"
    assert ended < 60, f"the run took {ended:.0f}s to end after the crash"
    tasks = ecs.describe_tasks(cluster="sandbox", tasks=arns)["tasks"]
    assert {(t["lastStatus"], t["stopCode"]) for t in tasks} == {("STOPPED", "TerminationNotice")}
    assert all(t["stoppedReason"].startswith(RESTART_REASON) for t in tasks)
    for task_id in ("count", "count_deferrable"):
        log = airflow_api.task_log("poc_ecs_operator", run_id, task_id)
        assert RESTART_REASON in log, log[-2000:]

    # Everything written before the crash is back.
    assert s3.get_object(Bucket="sandbox-data", Key="faults/written-before-the-crash.txt")["Body"].read() == b"kept"
    assert sorted(r["RoleName"] for r in iam.list_roles()["Roles"]) == roles
    assert ecs.list_task_definitions()["taskDefinitionArns"] == definitions
    fault_figure("emulator killed: IAM roles / task definitions / S3 object back",
                 f"{len(roles)} / {len(definitions)} / 1")
    # ... and Airflow's role session survived too: the next run needs no new credentials.
    airflow_api.run_dag("poc_ecs_operator").assert_success()


def _wait_answering(ecs) -> None:
    def answering() -> bool:
        try:
            ecs.list_clusters()
        except Exception as exc:
            raise NotYet(str(exc)) from exc
        return True
    wait_until(answering, timeout=60, interval=1, what="the emulator answering again")


def test_an_emulator_that_comes_back_empty_is_seeded_again(sandbox, airflow_api, aws_session, fault_figure):
    container = emulator_container()
    since = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    docker("kill", container, check=True)
    # Its volume wiped, as if removed: the emulator starts with nothing.
    image = docker("inspect", "--format", "{{.Config.Image}}", container, capture=True).stdout.strip()
    docker("run", "--rm", "-v", f"{sandbox.settings.project}_emulator-state:/var/lib/ministack", "--entrypoint",
           "sh", image, "-c", "rm -rf /var/lib/ministack/*", check=True)
    docker("start", container, check=True)
    started = time.monotonic()
    _wait_answering(aws_session.client("ecs"))

    def seeded_again() -> str:
        logs = stack.compose("logs", "--no-log-prefix", "--since", since, "reseeder", capture=True).stdout
        if "==> Seeded again" not in logs:
            raise NotYet("the reseeder has not seeded again yet")
        return logs
    logs = wait_until(seeded_again, timeout=120, interval=2, what="the reseeder seeding the empty emulator again")
    fault_figure("emulator back empty: seeded again after its start, within", f"{time.monotonic() - started:.0f} s")
    assert "The emulator lost" in logs and "iam role airflow-runner" in logs, logs[-2000:]
    assert "airflow-runner" in {r["RoleName"] for r in aws_session.client("iam").list_roles()["Roles"]}
    # Everything a DAG needs is back (task definitions, images in ECR, roles): it runs as before.
    airflow_api.run_dag("poc_ecs_operator").assert_success()
