"""Long tasks written to survive a scheduler restart, as production DAGs should be.

An ECS task with `reattach=True` and a pod (KubernetesPodOperator reattaches by default) each run
for `pause` seconds. If the scheduler dies meanwhile, the task process dies with it while the ECS
task and the pod run on; once the restarted scheduler finds the task orphaned (within a minute here)
the next try finds them and waits for them instead of starting them again.
"""
from __future__ import annotations

import pendulum
from airflow.providers.amazon.aws.operators.ecs import EcsRunTaskOperator
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.sdk import Param, dag

RETRY = dict(retries=1, retry_delay=pendulum.duration(seconds=5))


@dag(
    dag_id="resilient_tasks",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["ecs", "kubernetes", "faults"],
    params={"pause": Param(30, type="integer", minimum=0, maximum=3600, description="Seconds each task runs")},
    render_template_as_native_obj=True,
    doc_md=__doc__,
)
def resilient_tasks():
    EcsRunTaskOperator(
        task_id="long_ecs_task",
        aws_conn_id="aws_default",
        cluster="{{ var.value.ecs_cluster }}",
        task_definition="{{ var.value.ecs_count_task_definition }}",
        launch_type="FARGATE",
        network_configuration={"awsvpcConfiguration": {"subnets": "{{ var.json.ecs_subnets }}",
                                                       "securityGroups": "{{ var.json.ecs_security_groups }}"}},
        overrides={"containerOverrides": [{"name": "counter", "command": [
            "echo working for {{ params.pause }}s; sleep {{ params.pause }}; echo done"]}]},
        container_name="counter",
        awslogs_group="{{ var.value.ecs_log_group }}",
        awslogs_stream_prefix="ecs",
        awslogs_fetch_interval=pendulum.duration(seconds=1),
        waiter_delay=2,
        reattach=True,
        **RETRY,
    )
    KubernetesPodOperator(
        task_id="long_pod",
        name="long-pod",
        kubernetes_conn_id="kubernetes_default",
        image="{{ var.value.k8s_task_image }}",
        image_pull_policy="IfNotPresent",
        cmds=["/bin/sh", "-c"],
        arguments=["echo working for {{ params.pause }}s; sleep {{ params.pause }}; echo done"],
        reattach_on_restart=True,
        get_logs=True,
        on_finish_action="delete_pod",
        **RETRY,
    )


resilient_tasks()
