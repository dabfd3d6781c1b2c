"""The same known load — CPU-seconds and MiB the params say — as an ECS task and as a pod, at once.

The metrics tests check that what the sandbox measured for both matches what the load used
(images/task/known_load.py prints it in each task's log); a run's cost report shows both side by
side. The pod asks for what the ECS task definition `known-load` declares (1 vCPU, 2 GiB).
"""
from __future__ import annotations

import pendulum
from airflow.providers.amazon.aws.operators.ecs import EcsRunTaskOperator
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.sdk import Param, dag
from kubernetes.client import models as k8s

# One string per option: the DAG renders templates as native objects (the network configuration's
# lists), which would make a lone "3.0" a float.
LOAD = ["python3", "/app/known_load.py", "--cpu-seconds={{ params.cpu_seconds }}",
        "--memory-mib={{ params.memory_mib }}"]


@dag(
    dag_id="known_load",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["ecs", "kubernetes", "metrics"],
    params={"cpu_seconds": Param(3.0, type="number", minimum=0.1, maximum=60),
            "memory_mib": Param(200, type="integer", minimum=1, maximum=1500)},
    doc_md=__doc__,
    render_template_as_native_obj=True,
)
def known_load():
    EcsRunTaskOperator(
        task_id="ecs_load",
        aws_conn_id="aws_default",
        cluster="{{ var.value.ecs_cluster }}",
        task_definition="{{ var.value.ecs_known_load_task_definition }}",
        launch_type="FARGATE",
        network_configuration={"awsvpcConfiguration": {"subnets": "{{ var.json.ecs_subnets }}",
                                                       "securityGroups": "{{ var.json.ecs_security_groups }}"}},
        overrides={"containerOverrides": [{"name": "load", "command": LOAD}]},
        container_name="load",
        awslogs_group="{{ var.value.ecs_log_group }}",
        awslogs_stream_prefix="ecs",
    )
    KubernetesPodOperator(
        task_id="k8s_load",
        kubernetes_conn_id="kubernetes_default",
        name="known-load",
        image="{{ var.value.k8s_task_image }}",
        image_pull_policy="IfNotPresent",
        cmds=LOAD,
        container_resources=k8s.V1ResourceRequirements(requests={"cpu": "1", "memory": "2Gi"},
                                                       limits={"cpu": "1", "memory": "2Gi"}),
        get_logs=True,
        on_finish_action="delete_pod",
    )


known_load()
