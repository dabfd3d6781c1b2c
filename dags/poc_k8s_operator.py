"""KubernetesPodOperator and @task.kubernetes against the sandbox's cluster.

`pod` prints lines (they appear in this task's log) and returns a JSON XCom through the sidecar;
`pod_deferrable` is the same, waiting in the triggerer; `taskflow_list` runs a Python function in a
pod and returns a list. The image is an Airflow Variable and the cluster, namespace and credentials
come only from the `kubernetes_default` connection, so this file runs unchanged on another cluster.
"""
from __future__ import annotations

import pendulum
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.sdk import Param, dag, task

SCRIPT = """
echo "pod {{ ti.task_id }} says hello to {{ params.greeting_name }}"
for i in 1 2 3; do echo "step $i of 3"; done
mkdir -p /airflow/xcom
printf '{"greeting": "hello %s", "steps": 3}' "{{ params.greeting_name }}" > /airflow/xcom/return.json
"""


def hello_pod(task_id: str, deferrable: bool) -> KubernetesPodOperator:
    return KubernetesPodOperator(
        task_id=task_id,
        kubernetes_conn_id="kubernetes_default",
        name=task_id.replace("_", "-"),
        image="{{ var.value.k8s_task_image }}",
        image_pull_policy="IfNotPresent",
        cmds=["/bin/sh", "-c"],
        arguments=[SCRIPT],
        do_xcom_push=True,
        get_logs=True,
        deferrable=deferrable,
        poll_interval=2,
        on_finish_action="delete_pod",
        # Seen once under load: a deferral resumed within seconds was marked failed while the resumed
        # worker ran (the execution API then refused its success, 409). One retry absorbs that race.
        retries=1 if deferrable else 0,
        retry_delay=pendulum.duration(seconds=5),
    )


@dag(
    dag_id="poc_k8s_operator",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["kubernetes", "poc"],
    params={"greeting_name": Param("sandbox", type="string")},
    doc_md=__doc__,
)
def poc_k8s_operator():
    hello_pod("pod", deferrable=False)
    hello_pod("pod_deferrable", deferrable=True)

    @task.kubernetes(
        kubernetes_conn_id="kubernetes_default",
        image="{{ var.value.k8s_task_image }}",
        image_pull_policy="IfNotPresent",
        do_xcom_push=True,
        on_finish_action="delete_pod",
    )
    def taskflow_list(n: int) -> list[int]:
        """Runs inside the pod: squares of 0..n-1."""
        print(f"computing {n} squares in a pod")
        return [i * i for i in range(n)]

    taskflow_list(5)


poc_k8s_operator()
