"""The Kubernetes path: the generated connection (TLS verified, namespaced service account) and the
pod DAGs, checked by XComs, pod log lines in the task logs, and failure reasons."""
from __future__ import annotations

import base64
import json
import tempfile
from datetime import datetime

import pytest
import requests

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def connection_kubeconfig(airflow_api):
    conn = airflow_api.get_connection("kubernetes_default")
    assert conn is not None, "bootstrap did not create kubernetes_default"
    extra = json.loads(conn["extra"])
    return extra, json.loads(extra["kube_config"])


def test_connection_verifies_tls_and_uses_a_namespaced_service_account(connection_kubeconfig):
    extra, kubeconfig = connection_kubeconfig
    assert extra["namespace"] == "airflow-tasks" and extra["in_cluster"] is False
    [cluster] = kubeconfig["clusters"]
    [user] = kubeconfig["users"]
    assert cluster["cluster"]["server"].startswith("https://")
    assert cluster["cluster"].get("certificate-authority-data")
    assert "insecure-skip-tls-verify" not in json.dumps(kubeconfig)
    assert set(user["user"]) == {"token"}  # no admin client certificate
    payload = user["user"]["token"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["sub"] == "system:serviceaccount:airflow-tasks:airflow-pod-runner"


def test_service_account_may_run_pods_only_in_its_namespace(connection_kubeconfig, sandbox):
    from sandbox.host import stack
    _, kubeconfig = connection_kubeconfig
    cluster, token = kubeconfig["clusters"][0]["cluster"], kubeconfig["users"][0]["user"]["token"]
    server = stack.recorded_cluster()["server"]  # the API server as the host reaches it, whatever the provider
    with tempfile.NamedTemporaryFile("wb", suffix=".crt") as ca:
        ca.write(base64.b64decode(cluster["certificate-authority-data"]))
        ca.flush()

        def status(path: str, method: str = "GET") -> int:
            return requests.request(method, server + path, headers={"Authorization": f"Bearer {token}"},
                                    verify=ca.name, timeout=10).status_code

        assert status("/api/v1/namespaces/airflow-tasks/pods") == 200
        assert status("/api/v1/namespaces/kube-system/pods") == 403
        assert status("/api/v1/namespaces/airflow-tasks/secrets") == 403
        assert status("/api/v1/nodes") == 403


def test_poc_k8s_operator(airflow_api):
    run = airflow_api.run_dag("poc_k8s_operator", {"greeting_name": "e2e"})
    run.assert_success()
    expected = {"greeting": "hello e2e", "steps": 3}
    assert run.xcom("pod") == expected
    assert run.xcom("pod_deferrable") == expected
    assert run.xcom("taskflow_list") == [0, 1, 4, 9, 16]
    log = run.log("pod")
    assert "pod pod says hello to e2e" in log and "step 3 of 3" in log
    assert "pod pod_deferrable says hello to e2e" in run.log("pod_deferrable")
    assert "computing 5 squares in a pod" in run.log("taskflow_list")
    print(f"poc_k8s_operator: {run.seconds:.1f}s")


def test_failing_pods_fail_with_logs_and_fast(airflow_api):
    run = airflow_api.run_dag("k8s_failure_demo")
    assert run.state == "failed"
    tis = {ti["task_id"]: ti for ti in run.task_instances}
    assert {t: ti["state"] for t, ti in tis.items()} == {"nonzero_exit": "failed", "missing_image": "failed",
                                                         "privileged_pod": "failed"}
    # Refused at admission, whatever the provider: PodSecurityPolicy on the offline 1.20 node, Pod
    # Security admission (the namespace's "baseline" label) on newer clusters.
    refused = run.log("privileged_pod")
    assert any(words in refused for words in ("Privileged containers are not allowed", "violates PodSecurity",
                                              "disallowed by cluster policy")), refused[-2000:]
    log = run.log("nonzero_exit")
    assert "error: input file is corrupt" in log and "returned a failure" in log
    missing = run.log("missing_image")
    assert "Image cannot be pulled" in missing and "this-image-does-not-exist" in missing
    ti = tis["missing_image"]
    took = (datetime.fromisoformat(ti["end_date"]) - datetime.fromisoformat(ti["start_date"])).total_seconds()
    assert took < 120, f"missing image took {took:.0f}s to fail; startup_timeout_seconds is 300"


def test_make_up_leaves_a_host_kubeconfig_and_names_the_cluster(sandbox):
    from sandbox.host import stack
    from sandbox.core import kubeconfig as kc
    record = stack.recorded_cluster()
    assert record["namespace"] == "airflow-tasks" and record["server"].startswith("https://")
    assert f"Kubernetes ({record['provider']}) : {record['server']}" in stack.summary(sandbox.settings)
    with kc.ApiClient(kc.load(stack.HOST_KUBECONFIG.read_text())) as api:  # TLS verified against its CA
        assert api.server == record["server"]
        status, body = api.get("/api/v1/namespaces/airflow-tasks")
        assert status == 200 and body["metadata"]["name"] == "airflow-tasks"
