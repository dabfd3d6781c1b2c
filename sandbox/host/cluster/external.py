"""The external provider: any cluster you already have, from a kubeconfig file
(setting K8S_EXTERNAL_KUBECONFIG). The cluster is never created or deleted.

Containers cannot use a kubeconfig that points at 127.0.0.1/localhost. When a container on this
Docker engine publishes that port (minikube's docker driver, k3d, kind: node_containers.py),
`make up` connects it to the compose network, addresses the API server by the container's name
(TLS verified against a name its certificate holds), imports the task images into its runtime, and
`make down` disconnects it again. Otherwise (Docker Desktop's own cluster, a VM, a remote one) the
internal kubeconfig addresses the server as K8S_EXTERNAL_HOST (default host.docker.internal;
compose services have `extra_hosts: ["host.docker.internal:host-gateway"]`), keeping TLS verified
with `tls-server-name` set to the original host; or K8S_EXTERNAL_SERVER replaces the URL outright.
"""
from __future__ import annotations

import base64
import json
import socket
import ssl
from pathlib import Path
from urllib.parse import urlsplit

from sandbox.core import kubeconfig as kc
from sandbox.core.progress import info
from sandbox.host.cluster import node_containers
from sandbox.host.cluster.base import ClusterError, ClusterProvider
from sandbox.host.cluster.offline import image_id, load_into_containerd
from sandbox.host.docker import DockerError, docker, docker_pipe
from sandbox.host.settings import ROOT, Settings

# What `make up` connected (container, network), so `make down` undoes exactly that.
WIRING = ROOT / ".build" / "kube" / "external-wiring.json"


def running_containers() -> list[dict]:
    ids = docker("ps", "-q").stdout.split()
    if not ids:
        return []
    res = docker("inspect", *ids)
    return json.loads(res.stdout) if res.returncode == 0 else []


def certificate_names(host: str, port: int, ca_pem: str, timeout: float = 5) -> set[str]:
    """The DNS names and IPs of the certificate the server at host:port presents, verified against
    `ca_pem` (the kubeconfig's CA): what a client may name it as."""
    context = ssl.create_default_context(cadata=ca_pem)
    context.check_hostname = False
    with socket.create_connection((host, port), timeout=timeout) as raw:
        with context.wrap_socket(raw) as tls:
            return {value for _, value in tls.getpeercert().get("subjectAltName", ())}


def internal_from_external(doc: dict, base_dir: str | Path, host: str = "host.docker.internal",
                           server: str = "") -> dict:
    """The current context of an external kubeconfig, made usable from containers (pure function)."""
    doc = kc.inline_files(kc.minify(doc), base_dir)
    if server:
        cluster = doc["clusters"][0]["cluster"]
        original = urlsplit(cluster["server"]).hostname or ""
        cluster["server"] = server
        if server.startswith("https://") and original and not cluster.get("tls-server-name"):
            # the certificate names the original host, not the address containers use
            cluster["tls-server-name"] = "localhost" if original in ("0.0.0.0", "::") else original
    else:
        doc = kc.rewrite_server_for_containers(doc, host)
    kc.check_verified(doc)
    return doc


def image_load_hint(context: str, tags: list[str]) -> str:
    """The command that makes local images available to a cluster this engine does not run, by the
    tool its kubeconfig context names (minikube, k3d-<name>, kind-<name>, docker-desktop)."""
    images = " ".join(tags)
    if context.startswith("k3d-"):
        return f"k3d image import {images} -c {context[len('k3d-'):]}"
    if context.startswith("kind-"):
        return f"kind load docker-image {images} --name {context[len('kind-'):]}"
    if context == "docker-desktop":
        return "nothing: Docker Desktop's cluster uses this engine's images"
    if context == "minikube" or context.startswith("minikube"):
        return f"minikube image load {images} -p {context}"
    return f"push {images} to a registry the cluster pulls from"


def load_into_docker(node: str, tags: list[str]) -> list[str]:
    """Loads local images into the Docker engine inside a node container (minikube's docker runtime),
    skipping those it has with the same image ID."""
    loaded = []
    for tag in tags:
        wanted = image_id(tag)
        if not wanted:
            raise ClusterError(f"cannot load {tag} into the cluster: no such local image")
        there = docker("exec", node, "docker", "image", "inspect", "--format", "{{.Id}}", tag)
        if there.returncode == 0 and there.stdout.strip() == wanted:
            continue
        try:
            docker_pipe(["docker", "save", tag], "exec", "-i", node, "docker", "load")
        except DockerError as exc:
            raise ClusterError(f"loading {tag} into {node} failed: {exc}") from exc
        loaded.append(tag)
    return loaded


class ExternalProvider(ClusterProvider):
    name = "external"

    def __init__(self, settings: Settings):
        self.settings = settings
        self.path = settings.get("K8S_EXTERNAL_KUBECONFIG")
        self.host = settings.get("K8S_EXTERNAL_HOST") or "host.docker.internal"
        self.server = settings.get("K8S_EXTERNAL_SERVER")

    def available(self) -> tuple[bool, str]:
        if not self.path:
            return False, "K8S_EXTERNAL_KUBECONFIG is not set"
        path = Path(self.path).expanduser()
        if not path.is_file():
            return False, f"K8S_EXTERNAL_KUBECONFIG={self.path} is not a file"
        try:
            name, _, cluster, _ = kc.current(kc.load(path.read_text()))
        except (kc.KubeconfigError, KeyError) as exc:
            return False, f"{path}: {exc}"
        return True, f"external cluster from {path} (context {name}, server {cluster.get('server')})"

    def _doc(self) -> dict:
        ok, why = self.available()
        if not ok:
            raise ClusterError(why)
        return kc.load(Path(self.path).expanduser().read_text())

    def _server(self) -> str:
        return kc.current(self._doc())[2]["server"]

    def node(self) -> node_containers.NodeContainer | None:
        """The container on this engine serving the cluster's API, if it is one (and no
        K8S_EXTERNAL_SERVER overrides the address)."""
        if self.server:
            return None
        return node_containers.node_container(self._server(), running_containers())

    def provision(self, network: str) -> None:
        self._doc()
        node = self.node()
        if node is None:
            info(f"external cluster: nothing to create; containers on {network} use "
                 f"{self.internal_kubeconfig()['clusters'][0]['cluster']['server']}")
            return
        what = f"the {node.tool} cluster {node.cluster!r}: " if node.cluster else ""
        info(f"external cluster: {what}container {node.name} publishes its API server ({self._server()})")
        if network not in node.networks:
            try:
                docker("network", "connect", network, node.name, check=True)
            except DockerError as exc:
                raise ClusterError(f"could not connect {node.name} to {network}: {exc}") from exc
            WIRING.parent.mkdir(parents=True, exist_ok=True)
            WIRING.write_text(json.dumps({"container": node.name, "network": network}))
            info(f"connected {node.name} to {network} (make down disconnects it; the cluster is never deleted)")
        _, why = self._tls_name(node)
        info(f"containers reach it as https://{node.name}:{node.api_port}: {why}")

    def delete(self) -> None:
        if WIRING.exists():
            wired = json.loads(WIRING.read_text())
            res = docker("network", "disconnect", wired["network"], wired["container"])
            said = "disconnected" if res.returncode == 0 else f"could not disconnect ({res.stderr.strip()[-200:]})"
            info(f"external cluster: {wired['container']} {said} from {wired['network']}; the cluster is left running")
            WIRING.unlink()
        else:
            info("external cluster: not ours, nothing deleted")

    def load_images(self, tags: list[str]) -> list[str]:
        node = self.node()
        if node is None:
            if tags:
                context = kc.current(self._doc())[0]
                info(f"external cluster: its node is not a container on this engine, so the task images are "
                     f"not loaded into it; run: {image_load_hint(context, tags)} (until then pods using them "
                     "fail at once with ErrImagePull)")
            return []
        loaded: list[str] = []
        for name in node.nodes:
            if node.tool == "minikube" and docker("exec", name, "docker", "version").returncode == 0:
                loaded += load_into_docker(name, tags)   # minikube's default runtime
            else:
                loaded += load_into_containerd(name, tags)
        return sorted(set(loaded))

    def _tls_name(self, node: node_containers.NodeContainer) -> tuple[str | None, str]:
        cluster = kc.current(self.host_kubeconfig())[2]
        parts = urlsplit(cluster["server"])
        ca = base64.b64decode(cluster["certificate-authority-data"]).decode()
        try:
            names = certificate_names("127.0.0.1", parts.port or 443, ca)
        except (OSError, ssl.SSLError) as exc:
            raise ClusterError(f"could not read the API server's certificate at {cluster['server']}: {exc}") from exc
        return node_containers.tls_server_name(node.name, parts.hostname or "", names)

    def internal_kubeconfig(self) -> dict:
        base_dir = Path(self.path).expanduser().parent
        node = self.node()
        if node is None:
            return internal_from_external(self._doc(), base_dir, self.host, self.server)
        doc = kc.inline_files(kc.minify(self._doc()), base_dir)
        cluster = doc["clusters"][0]["cluster"]
        tls_name, _ = self._tls_name(node)
        cluster["server"] = f"https://{node.name}:{node.api_port}"
        cluster.pop("tls-server-name", None)
        if tls_name:
            cluster["tls-server-name"] = tls_name
        kc.check_verified(doc)
        return doc

    def host_kubeconfig(self) -> dict:
        return kc.inline_files(kc.minify(self._doc()), Path(self.path).expanduser().parent)

    def collect_logs(self, dest_dir: str | Path) -> list[Path]:
        dest = Path(dest_dir)
        dest.mkdir(parents=True, exist_ok=True)
        out = dest / "cluster-state.txt"
        lines = []
        try:
            with kc.ApiClient(self.host_kubeconfig()) as api:
                for path in ("/api/v1/nodes", "/api/v1/events"):
                    status, body = api.get(path)
                    lines.append(f"GET {path}: HTTP {status}\n{body}")
        except Exception as exc:  # diagnostics must not fail the run
            lines.append(f"could not read cluster state: {exc}")
        out.write_text("\n".join(lines))
        return [out]
