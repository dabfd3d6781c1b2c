"""Recognising a cluster whose node is a container on this engine, from its kubeconfig server and
`docker inspect` output shaped as kind, k3d and minikube make their containers
(docs/external-clusters.md)."""
from __future__ import annotations

import pytest

from sandbox.host.cluster.node_containers import node_container, tls_server_name

pytestmark = pytest.mark.unit


def container(name, labels, ports=None, networks=("bridge",), running=True):
    return {"Name": f"/{name}", "Config": {"Labels": labels}, "State": {"Running": running},
            "NetworkSettings": {"Ports": ports or {}, "Networks": {n: {} for n in networks}}}


KIND = [
    container("dev-control-plane", {"io.x-k8s.kind.cluster": "dev", "io.x-k8s.kind.role": "control-plane"},
              {"6443/tcp": [{"HostIp": "127.0.0.1", "HostPort": "40123"}]}, ("kind",)),
    container("dev-worker", {"io.x-k8s.kind.cluster": "dev", "io.x-k8s.kind.role": "worker"}, networks=("kind",)),
    container("other-control-plane", {"io.x-k8s.kind.cluster": "other", "io.x-k8s.kind.role": "control-plane"},
              {"6443/tcp": [{"HostIp": "127.0.0.1", "HostPort": "40999"}]}, ("kind",)),
]
K3D = [
    container("k3d-lab-serverlb", {"app": "k3d", "k3d.cluster": "lab", "k3d.role": "loadbalancer"},
              {"6443/tcp": [{"HostIp": "0.0.0.0", "HostPort": "38211"}]}, ("k3d-lab",)),
    container("k3d-lab-server-0", {"app": "k3d", "k3d.cluster": "lab", "k3d.role": "server"}, networks=("k3d-lab",)),
    container("k3d-lab-agent-0", {"app": "k3d", "k3d.cluster": "lab", "k3d.role": "agent"}, networks=("k3d-lab",)),
]
MINIKUBE = [
    container("minikube", {"created_by.minikube.sigs.k8s.io": "true", "name.minikube.sigs.k8s.io": "minikube"},
              {"22/tcp": [{"HostIp": "127.0.0.1", "HostPort": "32772"}],
               "8443/tcp": [{"HostIp": "127.0.0.1", "HostPort": "32769"}]}, ("minikube",)),
]


def test_a_kind_cluster_is_found_by_the_port_its_control_plane_publishes():
    node = node_container("https://127.0.0.1:40123", KIND)
    assert (node.name, node.tool, node.cluster, node.api_port) == ("dev-control-plane", "kind", "dev", 6443)
    assert node.networks == ("kind",)
    assert node.nodes == ("dev-control-plane", "dev-worker")  # not the other cluster's


def test_k3d_is_reached_through_its_load_balancer_and_loads_images_into_its_servers_and_agents():
    node = node_container("https://0.0.0.0:38211", K3D)
    assert (node.name, node.tool, node.api_port) == ("k3d-lab-serverlb", "k3d", 6443)
    assert node.nodes == ("k3d-lab-agent-0", "k3d-lab-server-0")


def test_minikube_is_found_by_its_8443_port():
    node = node_container("https://127.0.0.1:32769", MINIKUBE)
    assert (node.name, node.tool, node.api_port, node.nodes) == ("minikube", "minikube", 8443, ("minikube",))


def test_an_unknown_container_publishing_the_port_is_still_a_node():
    node = node_container("https://localhost:7443", [container("my-node", {}, {"6443/tcp": [
        {"HostIp": "127.0.0.1", "HostPort": "7443"}]})])
    assert (node.tool, node.cluster, node.nodes) == ("container", "", ("my-node",))


@pytest.mark.parametrize("server", ["https://10.0.0.5:6443", "https://api.example.com", "https://127.0.0.1:1"])
def test_a_server_no_local_container_publishes_is_not_a_node(server):
    assert node_container(server, KIND + K3D + MINIKUBE) is None


def test_a_stopped_container_does_not_count():
    stopped = [container("dev-control-plane", {"io.x-k8s.kind.cluster": "dev"},
                         {"6443/tcp": [{"HostIp": "127.0.0.1", "HostPort": "40123"}]}, running=False)]
    assert node_container("https://127.0.0.1:40123", stopped) is None


def test_the_tls_name_is_the_container_name_when_the_certificate_holds_it():
    assert tls_server_name("minikube", "127.0.0.1", {"minikube", "localhost", "127.0.0.1"})[0] is None
    name, why = tls_server_name("my-node", "127.0.0.1", {"kubernetes", "localhost", "127.0.0.1"})
    assert name == "127.0.0.1" and "does not hold the container name my-node" in why
    name, why = tls_server_name("my-node", "example.internal", {"kubernetes"})
    assert name == "example.internal" and "K8S_EXTERNAL_SERVER" in why


@pytest.mark.parametrize("context, hint", [
    ("minikube", "minikube image load sandbox/task:1.0 -p minikube"),
    ("k3d-lab", "k3d image import sandbox/task:1.0 -c lab"),
    ("kind-dev", "kind load docker-image sandbox/task:1.0 --name dev"),
    ("docker-desktop", "nothing: Docker Desktop's cluster uses this engine's images"),
    ("prod-eks", "push sandbox/task:1.0 to a registry the cluster pulls from"),
])
def test_a_cluster_elsewhere_gets_the_command_its_tool_loads_images_with(context, hint):
    from sandbox.host.cluster.external import image_load_hint
    assert image_load_hint(context, ["sandbox/task:1.0"]) == hint
