"""A cluster the user already runs, shaped as minikube's docker driver makes one: a node container on
its own Docker network, its API published only on 127.0.0.1:<port>, with its own kubeconfig. With
K8S_PROVIDER=external and nothing else, `make test`'s Kubernetes tests pass against it: `make up`
finds the container behind the kubeconfig's port, connects it to the compose network, reaches the
API by the container's name with TLS verified, and gives it the task images; `make down`
disconnects it and leaves it running. The stand-in is the offline node image run apart."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import yaml

from sandbox.core import kubeconfig as kc
from sandbox.host import stack
from sandbox.host.cluster.offline import NODE_IMAGE, OfflineProvider
from sandbox.host.docker import docker
from sandbox.host.images import image_exists
from sandbox.host.settings import ROOT

# Runs with the others that replace the sandbox (tests/conftest.py): it takes it down and back up.
pytestmark = [pytest.mark.e2e, pytest.mark.replaces_sandbox]

STANDIN = "sandbox-standin-cluster"
STANDIN_NETWORK = "sandbox-standin-net"
STANDIN_PORT = 16443
SELECTION = "test_k8s_dags"  # the pod paths; import_vcf's fan-out on the stand-in added a minute to CI


@pytest.fixture
def standin(sandbox):
    """The user's cluster: started before the sandbox is taken down, removed after it is back."""
    if not image_exists(NODE_IMAGE):
        pytest.skip(f"the stand-in is the offline node image {NODE_IMAGE}, not built here (K8S_PROVIDER "
                    f"{sandbox.settings.get('K8S_PROVIDER', 'auto')})")
    stack.down(sandbox.settings)
    if docker("network", "inspect", STANDIN_NETWORK).returncode != 0:
        docker("network", "create", STANDIN_NETWORK, check=True)
    cluster = OfflineProvider(sandbox.settings, node_name=STANDIN, api_port=STANDIN_PORT, alias=STANDIN)
    try:
        cluster.provision(STANDIN_NETWORK)
        cluster.wait_ready(240)
        yield cluster
    finally:
        cluster.delete()
        docker("network", "rm", STANDIN_NETWORK)
        stack.up(sandbox.settings)


def networks_of(container: str) -> set[str]:
    res = docker("inspect", "--format", "{{json .NetworkSettings.Networks}}", container, check=True)
    return set(yaml.safe_load(res.stdout))


def test_a_cluster_the_user_runs_is_found_wired_and_used(sandbox, standin, tmp_path):
    kubeconfig = tmp_path / "standin.yaml"
    kubeconfig.write_text(yaml.safe_dump(standin.host_kubeconfig()))
    assert kc.current(standin.host_kubeconfig())[2]["server"] == f"https://127.0.0.1:{STANDIN_PORT}"
    assert networks_of(STANDIN) == {STANDIN_NETWORK}

    env = {k: v for k, v in os.environ.items() if k != "SANDBOX_KEEP" and not k.startswith("PYTEST_")}
    env.update(K8S_PROVIDER="external", K8S_EXTERNAL_KUBECONFIG=str(kubeconfig))
    res = subprocess.run([sys.executable, "-m", "sandbox", "test", "-k", SELECTION], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=1800)
    print(f"--- make test against the stand-in (exit {res.returncode}) ---\n{res.stdout[-6000:]}\n{res.stderr[-2000:]}")
    assert res.returncode == 0
    out = res.stdout
    assert f"container {STANDIN} publishes its API server (https://127.0.0.1:{STANDIN_PORT})" in out
    assert f"connected {STANDIN} to {sandbox.settings.network}" in out
    assert f"containers reach it as https://{STANDIN}:6443: its certificate holds the container name" in out
    assert "Loading sandbox/task:1.0 into the cluster" in out
    # test_k8s_dags: pod DAG, XCom sidecar, @task.kubernetes, failures, namespaced service account, TLS verified
    assert re.search(r"\b5 passed\b", out) and not re.search(r"\b\d+ failed\b", out), out[-3000:]

    # `make down` at the end of that run: disconnected, still running, its node untouched.
    assert networks_of(STANDIN) == {STANDIN_NETWORK}
    assert docker("inspect", "--format", "{{.State.Running}}", STANDIN, check=True).stdout.strip() == "true"
    with kc.ApiClient(standin.host_kubeconfig()) as api:
        status, _ = api.get("/api/v1/namespaces/airflow-tasks")
    assert status == 200  # the sandbox's namespace stays, with its service account and secrets
