"""What failing pods look like in Airflow: a pod that exits non-zero fails its task and its log
lines are in the task log; a pod whose image does not exist fails fast with the pull error instead
of waiting out the startup timeout; a privileged pod is refused by the cluster's pod security, and
the API's own message is in the task log. All three tasks are expected to fail.
"""
from __future__ import annotations

import pendulum
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.sdk import dag
from kubernetes.client import models as k8s

COMMON = dict(kubernetes_conn_id="kubernetes_default", image_pull_policy="IfNotPresent", get_logs=True,
              on_finish_action="delete_pod", retries=0)


@dag(
    dag_id="k8s_failure_demo",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["kubernetes", "failure"],
    doc_md=__doc__,
)
def k8s_failure_demo():
    KubernetesPodOperator(
        task_id="nonzero_exit",
        name="nonzero-exit",
        image="{{ var.value.k8s_task_image }}",
        cmds=["/bin/sh", "-c"],
        arguments=["echo loading input; echo 'error: input file is corrupt' >&2; exit 3"],
        **COMMON,
    )
    KubernetesPodOperator(
        task_id="missing_image",
        name="missing-image",
        image="sandbox/this-image-does-not-exist:1.0",
        cmds=["true"],
        startup_timeout_seconds=300,
        **COMMON,
    )
    KubernetesPodOperator(
        task_id="privileged_pod",
        name="privileged-pod",
        image="{{ var.value.k8s_task_image }}",
        cmds=["true"],
        container_security_context=k8s.V1SecurityContext(privileged=True),
        **COMMON,
    )


k8s_failure_demo()
