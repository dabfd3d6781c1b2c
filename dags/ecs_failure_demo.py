"""What failing ECS tasks look like in Airflow: a container that exits non-zero fails its task and
the error shows the container's last log lines; a task whose image cannot be pulled fails with
ECS's CannotPullContainerError. Both tasks are expected to fail.
"""
from __future__ import annotations

import pendulum
from airflow.providers.amazon.aws.operators.ecs import EcsRunTaskOperator
from airflow.sdk import dag

NETWORK = {"awsvpcConfiguration": {"subnets": "{{ var.json.ecs_subnets }}",
                                   "securityGroups": "{{ var.json.ecs_security_groups }}"}}
COMMON = dict(
    aws_conn_id="aws_default",
    cluster="{{ var.value.ecs_cluster }}",
    launch_type="FARGATE",
    network_configuration=NETWORK,
    awslogs_group="{{ var.value.ecs_log_group }}",
    awslogs_stream_prefix="ecs",
    awslogs_fetch_interval=pendulum.duration(seconds=1),
    waiter_delay=2,
    retries=0,
)


@dag(
    dag_id="ecs_failure_demo",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["ecs", "failure"],
    render_template_as_native_obj=True,
    doc_md=__doc__,
)
def ecs_failure_demo():
    EcsRunTaskOperator(
        task_id="nonzero_exit",
        task_definition="{{ var.value.ecs_count_task_definition }}",
        overrides={"containerOverrides": [{"name": "counter", "command": [
            "echo loading input; echo 'error: input file is corrupt' >&2; exit 3"]}]},
        container_name="counter",
        **COMMON,
    )
    EcsRunTaskOperator(
        task_id="missing_image",
        task_definition="{{ var.value.ecs_missing_image_task_definition }}",
        overrides={},
        container_name="app",
        **COMMON,
    )


ecs_failure_demo()
