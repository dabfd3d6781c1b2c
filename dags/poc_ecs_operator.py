"""Counts to `count_to` in an ECS task and returns the numbers, once waiting in the worker and once
deferred to the triggerer.

Nothing here is sandbox-specific: cluster, task definition, network and log group are Airflow
Variables and the endpoint lives only in the `aws_default` connection, so this file runs unchanged
against real AWS.
"""
from __future__ import annotations

import pendulum
from airflow.providers.amazon.aws.operators.ecs import EcsRunTaskOperator
from airflow.sdk import Param, dag

CONTAINER = "counter"


def count_task(task_id: str, deferrable: bool) -> EcsRunTaskOperator:
    return EcsRunTaskOperator(
        task_id=task_id,
        aws_conn_id="aws_default",
        cluster="{{ var.value.ecs_cluster }}",
        task_definition="{{ var.value.ecs_count_task_definition }}",
        launch_type="FARGATE",
        network_configuration={
            "awsvpcConfiguration": {
                "subnets": "{{ var.json.ecs_subnets }}",
                "securityGroups": "{{ var.json.ecs_security_groups }}",
                "assignPublicIp": "DISABLED",
            }
        },
        # The task definition's entry point is `/bin/sh -c`; the command is the script.
        overrides={"containerOverrides": [
            {"name": CONTAINER, "command": [
                "echo counting to {{ params.count_to }}; sleep {{ params.pause }}; seq -s, 0 {{ params.count_to }}"]}
        ]},
        container_name=CONTAINER,
        awslogs_group="{{ var.value.ecs_log_group }}",
        awslogs_stream_prefix="ecs",
        awslogs_fetch_interval=pendulum.duration(seconds=1),
        waiter_delay=2,
        deferrable=deferrable,
    )


@dag(
    dag_id="poc_ecs_operator",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["ecs", "poc"],
    params={"count_to": Param(5, type="integer", minimum=0, description="Count from 0 to this number"),
            "pause": Param(0, type="integer", minimum=0, maximum=3600,
                           description="Seconds the task waits before counting (fault tests use it)")},
    render_template_as_native_obj=True,
    doc_md=__doc__,
)
def poc_ecs_operator():
    count_task("count", deferrable=False)
    count_task("count_deferrable", deferrable=True)


poc_ecs_operator()
