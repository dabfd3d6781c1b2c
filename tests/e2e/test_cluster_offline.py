"""The offline Kubernetes provider end to end, on a Docker network of its own (not the sandbox's):
build (cached) and start the node, wait Ready, load a local image, run pods, reach a container on
the network from a pod (by IP and by name), use the internal kubeconfig from another container
with TLS verified, collect logs, restart warm; then remove everything this module created.

Does not need the sandbox (`make up`); it needs Docker and the local image sandbox-base/python:bookworm
(or PYTHON_BASE_IMAGE). First run builds the cluster images (~10-15 min on 2 cores).
"""
from __future__ import annotations

import base64
import json
import socket
import textwrap
import time

import pytest

from sandbox.core import kubeconfig as kc
from sandbox.core.poll import NotYet, wait_until
from sandbox.host.cluster.offline import OfflineProvider
from sandbox.host.docker import docker
from sandbox.host.images import LOCAL_PYTHON_BASE

pytestmark = pytest.mark.e2e

NETWORK = "k8s-dev-net"
SUBNET = "169.254.171.0/24"
NODE = "k8s-dev-node"
HTTP = "k8s-dev-http"
TEST_LABEL = "sandbox.test=cluster-offline"
TIMINGS: dict[str, float] = {}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def image(settings):
    for tag in (LOCAL_PYTHON_BASE, settings.get("PYTHON_BASE_IMAGE")):
        if tag and docker("image", "inspect", tag).returncode == 0:
            return tag
    pytest.skip("no local Python image to run pods with (make up builds sandbox-base/python:bookworm)")


@pytest.fixture(scope="module")
def network():
    existing = docker("network", "inspect", "--format", '{{index .Labels "sandbox.test"}}', NETWORK)
    if existing.returncode == 0 and existing.stdout.strip() != TEST_LABEL.split("=")[1]:
        pytest.fail(f"a Docker network {NETWORK} exists that this test did not create; remove it or rename")
    if existing.returncode != 0:
        docker("network", "create", "--subnet", SUBNET, "--label", TEST_LABEL, NETWORK, check=True)
    yield NETWORK
    docker("network", "rm", NETWORK)


@pytest.fixture(scope="module")
def http_server(network, image):
    """A tiny HTTP server on the network, answering `pong from <name>`."""
    docker("rm", "-f", HTTP)
    code = textwrap.dedent("""
        import http.server
        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = b"pong from k8s-dev-http"
                self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
                self.wfile.write(body)
        http.server.ThreadingHTTPServer(("0.0.0.0", 8000), H).serve_forever()
    """)
    docker("run", "-d", "--name", HTTP, "--label", TEST_LABEL, "--network", network, image, "python3", "-c", code,
           check=True)
    ip = docker("inspect", "--format", f'{{{{(index .NetworkSettings.Networks "{network}").IPAddress}}}}',
                HTTP, check=True).stdout.strip()
    yield ip
    docker("rm", "-f", HTTP)


@pytest.fixture(scope="module")
def cluster(settings, network):
    provider = OfflineProvider(settings, node_name=NODE, api_port=free_port())
    if provider._inspect() is not None:
        provider.delete()  # left over from an interrupted run of this test (delete() checks the label)
    started = time.monotonic()
    provider.ensure_images()
    TIMINGS["images (build or cache check)"] = time.monotonic() - started
    started = time.monotonic()
    provider.provision(network)
    provider.wait_ready(timeout=300)
    TIMINGS["cold start to Ready"] = time.monotonic() - started
    yield provider
    try:
        provider.collect_logs(f"/tmp/{NODE}-logs")
    finally:
        provider.delete()
        print("\n" + "\n".join(f"  {k}: {v:.1f}s" for k, v in TIMINGS.items()))


def run_pod(cluster: OfflineProvider, name: str, image: str, code: str, timeout: float = 180) -> dict:
    """Creates a pod running `python3 -c code`, waits until it has finished, returns the pod."""
    cluster.kubectl("delete", "pod", name, "--ignore-not-found", "--wait=true")
    manifest = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "containers": [{
            "name": "main", "image": image, "imagePullPolicy": "Never", "command": ["python3", "-c", code]}]},
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))

    def finished() -> dict:
        pod = json.loads(cluster.kubectl("get", "pod", name, "-o", "json").stdout)
        if pod["status"].get("phase") not in ("Succeeded", "Failed"):
            raise NotYet(f"still {pod['status'].get('phase')}")
        return pod

    def with_events(message: str) -> AssertionError:
        events = cluster.kubectl("get", "events", "--field-selector", f"involvedObject.name={name}", check=False).stdout
        return AssertionError(f"{message}:\n{events}")

    return wait_until(finished, timeout=timeout, interval=1, what=f"pod {name} finished", error=with_events)


def exit_code(pod: dict) -> int:
    return pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"]


def test_node_is_ready(cluster):
    nodes = json.loads(cluster.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    assert [n["metadata"]["name"] for n in nodes] == [NODE]
    assert kc.node_ready({"items": nodes})[0]
    assert nodes[0]["status"]["nodeInfo"]["kubeletVersion"] == "v1.20.2"


def test_load_image_skips_what_is_there(cluster, image):
    started = time.monotonic()
    assert cluster.load_images([image]) == [image]
    TIMINGS[f"load {image}"] = time.monotonic() - started
    assert cluster.load_images([image]) == []  # same image ID already in containerd


def test_pod_runs_and_its_logs_come_through_the_api(cluster, image):
    cluster.load_images([image])
    started = time.monotonic()
    pod = run_pod(cluster, "hello", image, "import sys; print('hello from the offline cluster'); sys.exit(0)")
    TIMINGS["pod create to finished"] = time.monotonic() - started
    assert pod["status"]["phase"] == "Succeeded" and exit_code(pod) == 0
    assert cluster.kubectl("logs", "hello").stdout.strip() == "hello from the offline cluster"
    # the same through the host kubeconfig (apiserver -> kubelet, TLS both ways)
    with kc.ApiClient(cluster.host_kubeconfig()) as api:
        status, _ = api.get("/api/v1/namespaces/default/pods/hello")
        assert status == 200
        status, text = api.get_text("/api/v1/namespaces/default/pods/hello/log")
        assert status == 200 and text.strip() == "hello from the offline cluster"


def test_failing_pod_reports_its_exit_code(cluster, image):
    cluster.load_images([image])
    pod = run_pod(cluster, "fails", image, "import sys; print('boom'); sys.exit(3)")
    assert pod["status"]["phase"] == "Failed" and exit_code(pod) == 3


def test_pod_reaches_a_container_on_the_network_by_ip_and_by_name(cluster, image, http_server):
    cluster.load_images([image])
    code = textwrap.dedent(f"""
        import urllib.request
        for url in ("http://{http_server}:8000/", "http://{HTTP}:8000/"):
            print(url, urllib.request.urlopen(url, timeout=10).read().decode())
    """)
    pod = run_pod(cluster, "reach", image, code)
    logs = cluster.kubectl("logs", "reach").stdout
    assert pod["status"]["phase"] == "Succeeded", logs
    assert f"http://{http_server}:8000/ pong from k8s-dev-http" in logs
    assert f"http://{HTTP}:8000/ pong from k8s-dev-http" in logs  # pods resolve the network's names


def test_pod_reaches_the_api_server_in_cluster(cluster, image):
    """In-cluster clients use https://10.96.0.1 (the `kubernetes` Service) with the pod's service
    account token and the cluster CA; the node forwards it to the API server (no kube-proxy)."""
    cluster.load_images([image])
    code = textwrap.dedent("""
        import json, ssl, urllib.request, urllib.error
        sa = "/var/run/secrets/kubernetes.io/serviceaccount"
        ctx = ssl.create_default_context(cafile=sa + "/ca.crt")
        req = urllib.request.Request("https://10.96.0.1/api/v1/namespaces/default/pods",
                                     headers={"Authorization": "Bearer " + open(sa + "/token").read()})
        try:
            urllib.request.urlopen(req, context=ctx, timeout=10)
        except urllib.error.HTTPError as e:
            print(e.code, json.load(e)["message"])
    """)
    pod = run_pod(cluster, "in-cluster", image, code)
    logs = cluster.kubectl("logs", "in-cluster").stdout
    assert pod["status"]["phase"] == "Succeeded", logs
    # authenticated as the pod's service account (RBAC denies it, as it should)
    assert logs.startswith("403 ") and "system:serviceaccount:default:default" in logs, logs


def test_exec_into_a_running_pod(cluster, image):
    """KubernetesPodOperator's XCom sidecar is read with pods/exec (apiserver -> kubelet -> containerd)."""
    cluster.load_images([image])
    cluster.kubectl("delete", "pod", "sleeper", "--ignore-not-found", "--wait=true")
    cluster.kubectl("run", "sleeper", f"--image={image}", "--image-pull-policy=Never", "--restart=Never",
                    "--command", "--", "sleep", "300")
    cluster.kubectl("wait", "--for=condition=Ready", "pod/sleeper", "--timeout=120s")
    res = cluster.kubectl("exec", "sleeper", "--", "python3", "-c", "print(6 * 7)")
    assert res.stdout.strip() == "42"
    cluster.kubectl("delete", "pod", "sleeper", "--wait=false")


def test_internal_kubeconfig_is_verified_and_works_from_a_container(cluster, network, image):
    doc = cluster.internal_kubeconfig()
    cluster_entry = doc["clusters"][0]["cluster"]
    assert cluster_entry["server"] == "https://kubernetes:6443"
    assert cluster_entry["certificate-authority-data"]
    assert "insecure-skip-tls-verify" not in cluster_entry
    kc.check_verified(doc)
    user = doc["users"][0]["user"]
    # Use it from another container on the network, TLS verified against the embedded CA.
    files = {"ca": cluster_entry["certificate-authority-data"], "crt": user["client-certificate-data"],
             "key": user["client-key-data"]}
    code = textwrap.dedent(f"""
        import base64, json, ssl, tempfile, urllib.request, os
        files = {files!r}
        d = tempfile.mkdtemp()
        for name, data in files.items():
            open(os.path.join(d, name), "wb").write(base64.b64decode(data))
        ctx = ssl.create_default_context(cafile=os.path.join(d, "ca"))
        ctx.load_cert_chain(os.path.join(d, "crt"), os.path.join(d, "key"))
        body = json.load(urllib.request.urlopen("{cluster_entry['server']}/api/v1/nodes", context=ctx, timeout=10))
        print(" ".join(n["metadata"]["name"] for n in body["items"]))
    """)
    res = docker("run", "--rm", "--label", TEST_LABEL, "--network", network, image, "python3", "-c", code)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == NODE
    # The host kubeconfig names 127.0.0.1 and is verified the same way.
    host = cluster.host_kubeconfig()
    assert host["clusters"][0]["cluster"]["server"] == f"https://127.0.0.1:{cluster.api_port}"
    with kc.ApiClient(host) as api:
        assert api.get("/version")[1]["gitVersion"] == "v1.20.2"
    assert base64.b64decode(cluster_entry["certificate-authority-data"]).startswith(b"-----BEGIN CERTIFICATE")


def test_provision_is_idempotent_and_restarts_warm(cluster, network, image):
    node_id = docker("inspect", "--format", "{{.Id}}", NODE, check=True).stdout.strip()
    cluster.provision(network)  # running: reused
    assert docker("inspect", "--format", "{{.Id}}", NODE, check=True).stdout.strip() == node_id
    docker("stop", NODE, check=True)
    started = time.monotonic()
    cluster.provision(network)  # stopped: started again, same container, same PKI and images
    cluster.wait_ready(timeout=300)
    TIMINGS["warm start (stopped node) to Ready"] = time.monotonic() - started
    assert docker("inspect", "--format", "{{.Id}}", NODE, check=True).stdout.strip() == node_id
    assert cluster.load_images([image]) == []  # containerd's volume kept the image
    pod = run_pod(cluster, "after-restart", image, "print('still here')")
    assert pod["status"]["phase"] == "Succeeded"
    assert cluster.kubectl("logs", "after-restart").stdout.strip() == "still here"


def test_collect_logs(cluster, tmp_path):
    written = cluster.collect_logs(tmp_path)
    names = {p.name for p in written}
    assert {"node.log", "components", "cluster-state.txt"} <= names
    assert (tmp_path / "components" / "kubelet.log").stat().st_size > 0
    assert NODE in (tmp_path / "cluster-state.txt").read_text()
