"""Clusters whose nodes are containers on this Docker engine: minikube's docker driver, k3d, kind
clusters made by hand, the sandbox's own node started elsewhere. Their kubeconfig names
https://127.0.0.1:<port>, which no container reaches; the container that publishes that port is
found among the engine's containers and told apart by its labels (docs/external-clusters.md has
the shapes, read from each tool's source). Pure functions of `docker inspect` output.
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

# Addresses a published port answers on from the host.
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "0.0.0.0", "::1", "::", "[::1]"}
PUBLISHED_ON = {"127.0.0.1", "0.0.0.0", "::", "::1", ""}

# label that names a container's cluster, and the role label and roles that run pods, per tool
TOOLS = {
    "kind": ("io.x-k8s.kind.cluster", "io.x-k8s.kind.role", {"control-plane", "worker"}),
    "k3d": ("k3d.cluster", "k3d.role", {"server", "agent"}),
    "minikube": ("name.minikube.sigs.k8s.io", None, None),
}


@dataclass(frozen=True)
class NodeContainer:
    """The container serving the API (for k3d its load balancer) and the ones whose runtime runs pods."""

    name: str                   # the API server's name on a shared network: each tool's certificate holds it
    tool: str                   # kind | k3d | minikube | container (not made by a known tool)
    cluster: str                # the tool's cluster/profile name ("" for an unknown one)
    api_port: int               # the API server's port inside the container
    networks: tuple[str, ...]   # the Docker networks it is on now
    nodes: tuple[str, ...]      # containers to import task images into


def name_of(container: dict) -> str:
    return (container.get("Name") or "").lstrip("/")


def labels_of(container: dict) -> dict:
    return (container.get("Config") or {}).get("Labels") or {}


def tool_of(labels: dict) -> tuple[str, str]:
    """(tool, cluster name) from a container's labels; ("container", "") for none we know."""
    for tool, (cluster_label, _, _) in TOOLS.items():
        if labels.get(cluster_label):
            return tool, labels[cluster_label]
    return "container", ""


def published_api(server: str, containers: list[dict]) -> tuple[dict, int] | None:
    """The running container publishing the kubeconfig server's port on the host's loopback (or all
    addresses), with the container port behind it; None for a server elsewhere (a VM, remote)."""
    parts = urlsplit(server)
    if (parts.hostname or "") not in LOOPBACK_HOSTS and f"[{parts.hostname}]" not in LOOPBACK_HOSTS:
        return None
    port = parts.port or 443
    for container in containers:
        if not (container.get("State") or {}).get("Running", True):
            continue
        for container_port, bindings in ((container.get("NetworkSettings") or {}).get("Ports") or {}).items():
            for binding in bindings or []:
                if binding.get("HostPort") == str(port) and binding.get("HostIp", "") in PUBLISHED_ON:
                    return container, int(container_port.split("/")[0])
    return None


def node_container(server: str, containers: list[dict]) -> NodeContainer | None:
    found = published_api(server, containers)
    if found is None:
        return None
    api, api_port = found
    tool, cluster = tool_of(labels_of(api))
    nodes = [name_of(api)]
    if tool in ("kind", "k3d"):
        cluster_label, role_label, pod_roles = TOOLS[tool]
        nodes = [name_of(c) for c in containers
                 if labels_of(c).get(cluster_label) == cluster and labels_of(c).get(role_label) in pod_roles]
    elif tool == "minikube":
        nodes = [name_of(c) for c in containers if labels_of(c).get(TOOLS["minikube"][0]) == cluster]
    networks = tuple(sorted(((api.get("NetworkSettings") or {}).get("Networks") or {})))
    return NodeContainer(name=name_of(api), tool=tool, cluster=cluster, api_port=api_port, networks=networks,
                         nodes=tuple(sorted(nodes)))


def tls_server_name(node_name: str, original_host: str, names: set[str]) -> tuple[str | None, str]:
    """Which name verifies the API server reached as `node_name`, given the DNS names and IPs its
    certificate holds: (tls-server-name or None when the container name itself is held, why)."""
    if node_name in names:
        return None, f"its certificate holds the container name {node_name}"
    for candidate in (original_host, "localhost", "127.0.0.1"):
        if candidate and candidate in names:
            return candidate, (f"its certificate does not hold the container name {node_name}; "
                               f"verifying it as {candidate}, a name it holds")
    return original_host or None, (f"its certificate holds neither {node_name} nor the kubeconfig's host; "
                                   f"verifying it as {original_host} will fail: set K8S_EXTERNAL_SERVER")
