"""An ECS task writes an object to S3 with plain boto3 and no keys (task role credentials); the
next task reads it back and checks key, size and content.

Bucket, cluster, task definition and network come from Airflow Variables and the endpoint only
from the `aws_default` connection, so the same file runs on real AWS.
"""
from __future__ import annotations

import hashlib
import json

import pendulum
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.operators.ecs import EcsRunTaskOperator
from airflow.sdk import Param, dag, task

CONTAINER = "uploader"


@dag(
    dag_id="upload_file_to_s3",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["ecs", "s3"],
    params={"message": Param("hello from an ECS task", type="string", description="What the task writes")},
    render_template_as_native_obj=True,
    doc_md=__doc__,
)
def upload_file_to_s3():
    upload = EcsRunTaskOperator(
        task_id="upload",
        aws_conn_id="aws_default",
        cluster="{{ var.value.ecs_cluster }}",
        task_definition="{{ var.value.ecs_upload_task_definition }}",
        launch_type="FARGATE",
        network_configuration={
            "awsvpcConfiguration": {
                "subnets": "{{ var.json.ecs_subnets }}",
                "securityGroups": "{{ var.json.ecs_security_groups }}",
            }
        },
        overrides={"containerOverrides": [{
            "name": CONTAINER,
            "environment": [
                {"name": "TARGET_BUCKET", "value": "{{ var.value.data_bucket }}"},
                {"name": "TARGET_KEY", "value": "uploads/{{ ts_nodash }}.txt"},
                {"name": "PAYLOAD", "value": "{{ params.message }} ({{ run_id }})"},
            ],
        }]},
        container_name=CONTAINER,
        awslogs_group="{{ var.value.ecs_log_group }}",
        awslogs_stream_prefix="ecs",
        awslogs_fetch_interval=pendulum.duration(seconds=1),
        waiter_delay=2,
    )

    @task
    def verify(summary: str, params=None, run_id=None) -> dict:
        """Reads the object back through the connection and checks it is what the task wrote."""
        written = json.loads(summary)
        expected = f"{params['message']} ({run_id})".encode()
        body = S3Hook(aws_conn_id="aws_default").get_key(written["key"], written["bucket"]).get()["Body"].read()
        if body != expected:
            raise ValueError(f"s3://{written['bucket']}/{written['key']} holds {body!r}, expected {expected!r}")
        if written["size"] != len(expected) or written["sha256"] != hashlib.sha256(expected).hexdigest():
            raise ValueError(f"task reported {written}, but the expected payload is {len(expected)} bytes")
        return {"bucket": written["bucket"], "key": written["key"], "size": len(body)}

    verify(upload.output)


upload_file_to_s3()
