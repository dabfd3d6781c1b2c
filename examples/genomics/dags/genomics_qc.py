"""GC content of every sample FASTA, computed twice — as ECS tasks and as Kubernetes pods — from the
same unmodified team image (images/qc), then compared and summarised.

What this project shows about the sandbox: the `@task`s call plain boto3 with no hook, connection,
endpoint or keys (as on MWAA, where the worker has a role); shared code comes from `include/`; an
extra PyPI package (humanfriendly, requirements.txt) is installed into Airflow; names come from Airflow
Variables set in the astro-format airflow_settings.yaml. The file runs unchanged on AWS, on Airflow 3 and
on Airflow 2 (MWAA 2.10, 2.11): only the import of the decorators and Variable differs.
"""
from __future__ import annotations

import json
import os

import boto3
import humanfriendly
import pendulum
from airflow.providers.amazon.aws.operators.ecs import EcsRunTaskOperator
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from kubernetes.client import models as k8s

try:  # Airflow 3
    from airflow.sdk import Variable, dag, task
except ImportError:  # Airflow 2
    from airflow.decorators import dag, task
    from airflow.models import Variable

from include.fasta import merge_gc


@dag(
    dag_id="genomics_qc",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["genomics", "ecs", "kubernetes"],
    render_template_as_native_obj=True,
    doc_md=__doc__,
)
def genomics_qc():
    @task
    def list_samples(run_id=None) -> list[dict]:
        bucket, prefix = Variable.get("genomics_bucket"), Variable.get("genomics_samples_prefix")
        listed = boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix)
        keys = sorted(o["Key"] for o in listed.get("Contents", []) if o["Key"].endswith(".fa"))
        if not keys:
            raise ValueError(f"no .fa samples under s3://{bucket}/{prefix}")
        out = f"s3://{bucket}/qc/{run_id}"
        return [{"source": f"s3://{bucket}/{key}", "name": key.rsplit("/", 1)[-1].split(".")[0], "out": out}
                for key in keys]

    @task
    def ecs_overrides(samples: list[dict]) -> list[dict]:
        return [{"containerOverrides": [{"name": "qc", "command": [
            "python", "qc.py", s["source"], f"{s['out']}/ecs/{s['name']}.json"]}]} for s in samples]

    @task
    def pod_arguments(samples: list[dict]) -> list[list[str]]:
        return [[s["source"], f"{s['out']}/k8s/{s['name']}.json"] for s in samples]

    @task
    def whoami() -> str:
        """Who plain boto3 acts as: the Airflow role here, the worker's execution role on MWAA."""
        return boto3.client("sts").get_caller_identity()["Arn"]

    samples = list_samples()
    whoami() >> samples

    on_ecs = EcsRunTaskOperator.partial(
        task_id="qc_on_ecs",
        cluster="{{ var.value.genomics_ecs_cluster }}",
        task_definition="{{ var.value.genomics_task_definition }}",
        launch_type="FARGATE",
        network_configuration={"awsvpcConfiguration": {"subnets": "{{ var.json.genomics_subnets }}"}},
        pool="genomics_qc",
        awslogs_group="{{ var.value.genomics_log_group }}",
        # <the log configuration's awslogs-stream-prefix>/<container name>: the stream's name on every
        # amazon provider (container_name, which newer ones take instead, is not on MWAA 2.10's).
        awslogs_stream_prefix="qc/qc",
        waiter_delay=2,
    ).expand(overrides=ecs_overrides(samples))

    on_k8s = KubernetesPodOperator.partial(
        task_id="qc_on_k8s",
        name="genomics-qc",
        namespace="{{ var.value.genomics_namespace }}",
        image="{{ var.value.genomics_image }}",
        image_pull_policy="IfNotPresent",
        cmds=["python", "qc.py"],
        env_from=[k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(name="aws-task-env"))],
        get_logs=True,
        on_finish_action="delete_pod",
        pool="genomics_qc",
    ).expand(arguments=pod_arguments(samples))

    @task
    def report(samples: list[dict]) -> dict:
        """Reads both backends' results, checks they agree, and returns the totals."""
        s3 = boto3.client("s3")
        totals = {}
        for backend in ("ecs", "k8s"):
            results = []
            for s in samples:
                bucket, _, prefix = s["out"].removeprefix("s3://").partition("/")
                body = s3.get_object(Bucket=bucket, Key=f"{prefix}/{backend}/{s['name']}.json")["Body"].read()
                results.append(json.loads(body))
            totals[backend] = merge_gc(results)
        if totals["ecs"] != totals["k8s"]:
            raise ValueError(f"ECS and Kubernetes disagree: {totals}")
        # GENOMICS_STAGE: exported by the project's startup.sh, as MWAA runs it before Airflow starts.
        summary = {**totals["ecs"], "bases_text": humanfriendly.format_number(totals["ecs"]["bases"]),
                   "stage": os.environ.get("GENOMICS_STAGE", "unset")}
        print(f"GC fraction {summary['gc_fraction']} over {summary['bases_text']} bases")
        return summary

    report(samples).set_upstream([on_ecs, on_k8s])


genomics_qc()
