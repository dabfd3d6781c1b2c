"""What one AWS call costs through the emulator, as Airflow makes it: RunTask, DescribeTasks and
GetLogEvents as Airflow's role (credentials from STS AssumeRole, IAM evaluated on every call) and
as the account root (no policy evaluated), and AssumeRole itself. Round-trip milliseconds from this
machine; `make bench --only-startup` records them."""
from __future__ import annotations

import json
import statistics
import time

from sandbox.core.airflow_api import AirflowClient
from sandbox.host.settings import Settings
from sandbox.seeding.config import role_arn as config_role_arn
from sandbox.testing.aws import EmulatorSession

CONTAINER = "counter"  # the count-numbers task definition's container (dags/poc_ecs_operator.py)


def _timed(call, times: int) -> dict:
    took = []
    for _ in range(times):
        started = time.perf_counter()
        call()
        took.append((time.perf_counter() - started) * 1000)
    took.sort()
    return {"median_ms": round(statistics.median(took), 1), "p90_ms": round(took[int(0.9 * (len(took) - 1))], 1),
            "calls": times}


def measure(settings: Settings, calls: int = 20, run_tasks: int = 5) -> dict:
    """Medians and 90th percentiles per call and identity; `run_tasks` real tasks are started per identity."""
    from sandbox.host.stack import seed_config, selected_project
    config = seed_config(selected_project(settings))
    variables = AirflowClient(settings.airflow_url, *settings.admin)
    cluster = variables.get_variable("ecs_cluster")
    task_definition = variables.get_variable("ecs_count_task_definition")
    network = {"awsvpcConfiguration": {"subnets": _json(variables.get_variable("ecs_subnets")),
                                       "securityGroups": _json(variables.get_variable("ecs_security_groups")),
                                       "assignPublicIp": "DISABLED"}}
    root = EmulatorSession(settings.aws_endpoint, region_name=config.region, **settings.root_keys)
    sts = root.client("sts")
    role_arn = config_role_arn(config.account_id, config.airflow_role)
    results = {"AssumeRole": _timed(lambda: sts.assume_role(RoleArn=role_arn, RoleSessionName="bench"), calls)}
    creds = sts.assume_role(RoleArn=role_arn, RoleSessionName="bench")["Credentials"]
    role = EmulatorSession(settings.aws_endpoint, region_name=config.region, aws_access_key_id=creds["AccessKeyId"],
                           aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"])
    for identity, session in (("as Airflow's role", role), ("as the account root", root)):
        ecs, logs = session.client("ecs"), session.client("logs")
        arns = []

        def run_task():
            task = ecs.run_task(cluster=cluster, taskDefinition=task_definition, launchType="FARGATE",
                                networkConfiguration=network,
                                overrides={"containerOverrides": [{"name": CONTAINER, "command": ["seq -s, 0 3"]}]})
            arns.append(task["tasks"][0]["taskArn"])

        results[f"RunTask {identity}"] = _timed(run_task, run_tasks)
        results[f"DescribeTasks {identity}"] = _timed(lambda: ecs.describe_tasks(cluster=cluster, tasks=arns[-1:]),
                                                      calls)
        ecs.get_waiter("tasks_stopped").wait(cluster=cluster, tasks=arns, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
        stream = f"ecs/{CONTAINER}/{arns[-1].rsplit('/', 1)[-1]}"
        group = variables.get_variable("ecs_log_group")
        results[f"GetLogEvents {identity}"] = _timed(
            lambda: logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True), calls)
    return results


def _json(value: str | None):
    return json.loads(value or "[]")


def table(results: dict) -> list[str]:
    lines = [f"  {'call':<38} {'median':>9} {'p90':>9}"]
    for name, figures in results.items():
        lines.append(f"  {name:<38} {figures['median_ms']:>7.1f}ms {figures['p90_ms']:>7.1f}ms")
    return lines
