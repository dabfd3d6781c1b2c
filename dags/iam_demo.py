"""Who each actor is on AWS, and what a missing permission looks like (IAM is enforced).

The `whoami_*` tasks return the caller's ARN: Airflow acts as aws.airflow_role, an ECS task as its
definition's taskRoleArn (session named after the task id), a pod as kubernetes.aws_role. The
`denied_*` tasks are expected to fail, each with AWS's AccessDenied message in its log: an ECS task
whose role may only read writes to S3; RunTask passes a role Airflow may not pass; Airflow writes
where its role may only read; a pod deletes what its role may not delete.
"""
from __future__ import annotations

import boto3
import pendulum
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.operators.ecs import EcsRunTaskOperator
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.sdk import Variable, dag, task
from kubernetes.client import models as k8s

WHOAMI = "import boto3; print('caller:', boto3.client('sts').get_caller_identity()['Arn'])"
NETWORK = {"awsvpcConfiguration": {"subnets": "{{ var.json.ecs_subnets }}",
                                   "securityGroups": "{{ var.json.ecs_security_groups }}"}}
ECS = dict(
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
POD = dict(
    kubernetes_conn_id="kubernetes_default",
    image="{{ var.value.k8s_task_image }}",
    image_pull_policy="IfNotPresent",
    env_from=[k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(name="aws-task-env"))],
    get_logs=True,
    on_finish_action="delete_pod",
    retries=0,
)


@dag(
    dag_id="iam_demo",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["ecs", "kubernetes", "iam", "failure"],
    render_template_as_native_obj=True,
    doc_md=__doc__,
)
def iam_demo():
    @task(retries=0)
    def whoami_airflow() -> str:
        return boto3.client("sts").get_caller_identity()["Arn"]

    whoami_airflow()
    EcsRunTaskOperator(
        task_id="whoami_ecs",
        task_definition="{{ var.value.ecs_count_task_definition }}",
        overrides={"containerOverrides": [{"name": "counter", "command": [f'python3 -c "{WHOAMI}"']}]},
        container_name="counter",
        **ECS,
    )
    KubernetesPodOperator(task_id="whoami_pod", name="whoami", cmds=["python3", "-c", WHOAMI], **POD)

    EcsRunTaskOperator(
        task_id="denied_ecs_write",
        task_definition="{{ var.value.ecs_upload_denied_task_definition }}",
        overrides={},
        container_name="uploader",
        **ECS,
    )
    EcsRunTaskOperator(
        task_id="denied_pass_role",
        task_definition="{{ var.value.ecs_count_task_definition }}",
        # A role the Airflow role's iam:PassRole does not cover.
        overrides={"taskRoleArn": "arn:aws:iam::000000000000:role/pod-task-data"},
        container_name="counter",
        **ECS,
    )

    @task(retries=0)
    def denied_airflow_write() -> None:
        S3Hook(aws_conn_id="aws_default").load_string("x", "iam-demo/airflow.txt", Variable.get("data_bucket"),
                                                      replace=True)

    denied_airflow_write()
    KubernetesPodOperator(
        task_id="denied_pod_delete", name="denied-delete", cmds=["python3", "-c"],
        arguments=["import boto3; boto3.client('s3').delete_object(Bucket='sandbox-data', Key='seed/README.txt')"],
        **POD,
    )


iam_demo()
