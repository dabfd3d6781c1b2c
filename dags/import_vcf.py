"""One task per case: lists the VCF cases in S3, computes per-case statistics (variant counts per
chromosome and genotype counts per sample) in parallel as ECS tasks or Kubernetes pods — the param
`backend` chooses — and aggregates them.

Each case task runs `images/task/vcf_stats.py` from the same task image on either backend; it
reads its `.vcf.gz` (and checks its `.tbi`) from S3, writes a result JSON to S3 and returns a summary.
Bucket, prefixes, cluster, task definition and image come from Airflow Variables; the endpoints
from the `aws_default` and `kubernetes_default` connections.
"""
from __future__ import annotations

import collections
import json

import pendulum
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.operators.ecs import EcsRunTaskOperator
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.sdk import Param, Variable, dag, task
from kubernetes.client import models as k8s

# Pods get AWS settings from this Secret (bootstrap creates it in the sandbox). On EKS, create it
# with AWS_REGION only and let IRSA supply the credentials.
AWS_ENV_SECRET = "aws-task-env"


def case_env(key: str, ts_nodash: str) -> dict[str, str]:
    """What vcf_stats.py needs for one case; results of one run share a prefix."""
    return {"DATA_BUCKET": Variable.get("data_bucket"), "CASE_KEY": key,
            "RESULT_PREFIX": f"{Variable.get('vcf_results_prefix')}{ts_nodash}/"}


@dag(
    dag_id="import_vcf",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["ecs", "kubernetes", "fan-out"],
    params={
        "backend": Param("ecs", enum=["ecs", "k8s"], description="Run the cases as ECS tasks or Kubernetes pods"),
        "max_cases": Param(8, type="integer", minimum=1, description="How many cases to import"),
    },
    max_active_tasks=64,
    render_template_as_native_obj=True,
    doc_md=__doc__,
)
def import_vcf():
    @task
    def list_cases(params=None) -> list[str]:
        bucket, prefix = Variable.get("data_bucket"), Variable.get("vcf_cases_prefix")
        keys = sorted(k for k in S3Hook(aws_conn_id="aws_default").list_keys(bucket, prefix=prefix) or []
                      if k.endswith(".vcf.gz"))
        if len(keys) < params["max_cases"]:
            raise ValueError(f"max_cases={params['max_cases']} but s3://{bucket}/{prefix} holds {len(keys)} cases")
        return keys[: params["max_cases"]]

    @task.branch
    def choose_backend(params=None) -> str:
        return "ecs_case_overrides" if params["backend"] == "ecs" else "k8s_case_env"

    @task
    def ecs_case_overrides(keys: list[str], ts_nodash=None) -> list[dict]:
        return [{"containerOverrides": [{"name": "vcf", "environment": [
            {"name": name, "value": value} for name, value in case_env(key, ts_nodash).items()]}]} for key in keys]

    @task
    def k8s_case_env(keys: list[str], ts_nodash=None) -> list[dict]:
        return [case_env(key, ts_nodash) for key in keys]

    cases = list_cases()
    backend = choose_backend()
    ecs_args, k8s_args = ecs_case_overrides(cases), k8s_case_env(cases)
    backend >> [ecs_args, k8s_args]

    ecs_cases = EcsRunTaskOperator.partial(
        task_id="ecs_case",
        aws_conn_id="aws_default",
        cluster="{{ var.value.ecs_cluster }}",
        task_definition="{{ var.value.ecs_vcf_task_definition }}",
        launch_type="FARGATE",
        network_configuration={"awsvpcConfiguration": {"subnets": "{{ var.json.ecs_subnets }}",
                                                       "securityGroups": "{{ var.json.ecs_security_groups }}"}},
        container_name="vcf",
        awslogs_group="{{ var.value.ecs_log_group }}",
        awslogs_stream_prefix="ecs",
        # Each mapped task polls ECS and CloudWatch Logs; on a small machine 32 workers polling every
        # second or two cost more CPU than the cases themselves, so fan-out tasks poll less often.
        awslogs_fetch_interval=pendulum.duration(seconds=4),
        waiter_delay=4,
    ).expand(overrides=ecs_args)

    k8s_cases = KubernetesPodOperator.partial(
        task_id="k8s_case",
        kubernetes_conn_id="kubernetes_default",
        name="vcf-case",
        image="{{ var.value.k8s_task_image }}",
        image_pull_policy="IfNotPresent",
        cmds=["python3", "/app/vcf_stats.py"],
        env_from=[k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(name=AWS_ENV_SECRET))],
        # Small requests, so 32 cases fit on a 2-core node at once (the cost report says how close
        # they are to what a case uses); the limit is the ECS task definition's memory.
        container_resources=k8s.V1ResourceRequirements(requests={"cpu": "50m", "memory": "128Mi"},
                                                       limits={"memory": "512Mi"}),
        do_xcom_push=True,
        get_logs=True,
        on_finish_action="delete_pod",
    ).expand(env_vars=k8s_args)

    @task(trigger_rule="none_failed_min_one_success")
    def aggregate(keys: list[str], params=None, ti=None, ts_nodash=None) -> dict:
        """Adds up the per-case results the case tasks wrote to S3, and writes the summary next to them."""
        task_id = "ecs_case" if params["backend"] == "ecs" else "k8s_case"
        summaries = [s if isinstance(s, dict) else json.loads(s)
                     for s in ti.xcom_pull(task_ids=task_id, key="return_value") or []]
        if len(summaries) != len(keys):
            raise ValueError(f"{len(keys)} cases listed but {len(summaries)} case tasks returned a summary")
        hook, bucket = S3Hook(aws_conn_id="aws_default"), Variable.get("data_bucket")
        per_chrom: collections.Counter = collections.Counter()
        genotypes: collections.Counter = collections.Counter()
        for summary in summaries:
            result = json.loads(hook.read_key(summary["result_key"], bucket))
            per_chrom.update(result["variants_per_chromosome"])
            for counts in result["genotypes_per_sample"].values():
                genotypes.update(counts)
        total = {"backend": params["backend"], "cases": len(summaries),
                 "variants": sum(s["variants"] for s in summaries),
                 "variants_per_chromosome": dict(sorted(per_chrom.items())),
                 "genotypes": dict(sorted(genotypes.items())),
                 "per_case": {s["case"]: s["variants"] for s in summaries}}
        key = f"{Variable.get('vcf_results_prefix')}{ts_nodash}/summary.json"
        hook.load_string(json.dumps(total, indent=2), key, bucket, replace=True)
        return {**total, "summary_key": key}

    aggregate(cases).set_upstream([ecs_cases, k8s_cases])


import_vcf()
