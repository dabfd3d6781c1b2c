"""The offline provider: a single-node cluster of real upstream components (Kubernetes 1.20.2 built
from Debian bookworm's `kubernetes` source package, etcd, containerd, runc, CNI plugins from
Debian) in one container, run like a kind node. Needs no container registry and no GitHub.

Two images, built once and reused while their inputs are unchanged (each carries a label with the
sha256 of its Dockerfile, the files it COPYs, its base image and the image it copies from):
  sandbox/k8s-binaries:1.20.2   kind/offline/binaries.Dockerfile  (~6-10 min, Go build)
  sandbox/k8s-node:1.20.2       kind/offline/node.Dockerfile      (~1 min)
"""
from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path

from sandbox.core import kubeconfig as kc
from sandbox.core.poll import NotYet, wait_until
from sandbox.core.progress import Background, info, step
from sandbox.host.cluster.base import API_SERVER_PORT_IN_NETWORK, ClusterError, ClusterProvider, docker_engine_ok
from sandbox.host.docker import DockerError, docker, docker_pipe
from sandbox.host.images import LOCAL_DEBIAN_BASE, docker_build, image_exists, image_label, resolve_bases
from sandbox.host.settings import ROOT, Settings

BINARIES_IMAGE = "sandbox/k8s-binaries:1.20.2"
NODE_IMAGE = "sandbox/k8s-node:1.20.2"
NODE_PACKAGES_IMAGE = "sandbox/k8s-node-packages:1.20.2"  # node.Dockerfile's first stage, built early
BINARIES_DOCKERFILE = "kind/offline/binaries.Dockerfile"
NODE_DOCKERFILE = "kind/offline/node.Dockerfile"
NODE_FILES = ("kind/offline/node-entrypoint.sh",)  # what node.Dockerfile COPYs from the context
INPUTS_LABEL = "sandbox.inputs-sha256"
NODE_LABEL = "sandbox.k8s-node"  # on the node container: value "offline"
PROJECT_LABEL = "sandbox.project"
PKI = "/etc/kubernetes/pki"

# What the node container needs instead of --privileged (refused on these machines: CAP_SYS_RESOURCE
# is not in the bounding set). containerd's root is a volume: no overlay on overlay.
NODE_RUN_FLAGS = (
    "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE",
    "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
    "--security-opt", "systempaths=unconfined",
    "--device-cgroup-rule", "a *:* rwm", "--device", "/dev/kmsg",
    "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
    "--tmpfs", "/run", "--tmpfs", "/tmp",
    "--stop-timeout", "30",
)


def inputs_sha256(files: list[str] | tuple[str, ...], extra: list[str] = (), root: Path = ROOT) -> str:
    """sha256 over the given repo files (path and content) and extra strings (base image, parent hash)."""
    digest = hashlib.sha256()
    for rel in files:
        digest.update(rel.encode() + b"\0" + (root / rel).read_bytes() + b"\0")
    for item in extra:
        digest.update(item.encode() + b"\0")
    return digest.hexdigest()


def dockerignore_excludes(rel_path: str, dockerignore: str) -> bool:
    """Whether a .dockerignore (Docker's rules: last matching line wins, `!` re-includes, a pattern
    matching a folder covers what is inside) keeps rel_path out of the build context."""
    import fnmatch
    excluded = False
    parts = rel_path.strip("/").split("/")
    candidates = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    for raw in dockerignore.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line[1:].strip() if negate else line
        pattern = pattern.strip("/")
        if pattern.startswith("**/"):
            patterns = [pattern, pattern[3:]]
        else:
            patterns = [pattern]
        if any(fnmatch.fnmatchcase(c, p) for c in candidates for p in patterns):
            excluded = not negate
    return excluded


def image_id(tag: str) -> str | None:
    res = docker("image", "inspect", "--format", "{{.Id}}", tag)
    return res.stdout.strip() if res.returncode == 0 else None


def normalize_ref(tag: str) -> str:
    """The name containerd gives a Docker image tag: docker.io/library/python:3.12, docker.io/org/x:latest."""
    name, _, digest = tag.partition("@")
    last = name.rsplit("/", 1)[-1]
    if ":" not in last and not digest:
        name += ":latest"
    first, sep, rest = name.partition("/")
    if not sep:
        name = f"docker.io/library/{name}"
    elif not ("." in first or ":" in first or first == "localhost"):
        name = f"docker.io/{name}"
    return name + (f"@{digest}" if digest else "")


def load_into_containerd(node: str, tags: list[str], containerd_namespace: str = "k8s.io") -> list[str]:
    """Imports local images into the containerd of a node container (`docker save | ctr import`),
    skipping those already there with the same Docker image ID (a label records it). Returns the tags loaded."""
    ctr = ["docker", "exec", node, "ctr", "-n", containerd_namespace, "images"]
    listed = docker(*ctr[1:], "ls")
    if listed.returncode != 0:
        raise ClusterError(f"cannot list the images of the node container {node}: {listed.stderr.strip()[-300:]}")
    present = parse_ctr_images(listed.stdout)
    loaded = []
    for tag in tags:
        wanted = image_id(tag)
        if not wanted:
            raise ClusterError(f"cannot load {tag} into the cluster: no such local image")
        ref = normalize_ref(tag)
        if present.get(ref, {}).get("sandbox.docker-id") == wanted:
            continue
        with step(f"Loading {tag} into the cluster ({node})"):
            try:
                docker_pipe(["docker", "save", tag], "exec", "-i", *ctr[2:], "import", "-")
            except DockerError as exc:
                raise ClusterError(f"loading {tag} into {node} failed: {exc}") from exc
            docker(*ctr[1:], "label", ref, f"sandbox.docker-id={wanted}", check=True)
        loaded.append(tag)
    return loaded


def parse_ctr_images(output: str) -> dict[str, dict[str, str]]:
    """`ctr images ls` output -> {ref: labels}. The LABELS column is the last one ('-' when none)."""
    images: dict[str, dict[str, str]] = {}
    for line in output.splitlines()[1:]:
        fields = line.split()
        if not fields:
            continue
        labels = {}
        if len(fields) > 1 and fields[-1] != "-" and "=" in fields[-1]:
            for pair in fields[-1].split(","):
                key, _, value = pair.partition("=")
                labels[key] = value
        images[fields[0]] = labels
    return images


class OfflineProvider(ClusterProvider):
    name = "offline"

    def __init__(self, settings: Settings, *, node_name: str | None = None, api_port: int | str | None = None,
                 alias: str | None = None, base_image: str | None = None):
        self.settings = settings
        self.node = node_name or f"{settings.project}-k8s-node"
        self.api_port = int(api_port or settings.get("K8S_API_PORT", "6443") or 6443)
        self.alias = alias or self.alias
        self.volume = f"{self.node}-containerd"
        self._base_image = base_image

    # --- availability --------------------------------------------------------------------------
    def available(self) -> tuple[bool, str]:
        ok, engine = docker_engine_ok()
        if not ok:
            return False, engine
        version, _, cgroup = engine.partition(" ")
        built = " (images built)" if image_exists(NODE_IMAGE) else " (images are built on first use, ~10 min)"
        note = "" if cgroup in ("1", "") else f"; note: verified on cgroup v1, this engine uses cgroup v{cgroup}"
        return True, f"offline single-node cluster on Docker {version}{built}{note}"

    # --- images ----------------------------------------------------------------------------------
    def _base(self) -> str:
        """The Debian base: DEBIAN_BASE_IMAGE or the local debootstrap base if either is already
        here (no pull attempt, no other image touched), else what `make up` would use."""
        if not self._base_image:
            for tag in (self.settings.get("DEBIAN_BASE_IMAGE", "debian:bookworm-slim"), LOCAL_DEBIAN_BASE):
                if image_exists(tag):
                    self._base_image = tag
                    break
            else:
                self._base_image = resolve_bases(self.settings)["debian"]
        return self._base_image

    def ensure_images(self) -> None:
        """Builds the binaries and node images unless images with matching input hashes exist."""
        current_bin, current_node = image_label(BINARIES_IMAGE, INPUTS_LABEL), image_label(NODE_IMAGE, INPUTS_LABEL)
        base = self._base()  # part of the hashes: another base image means another build
        bin_digest = inputs_sha256([BINARIES_DOCKERFILE], [base])
        node_digest = inputs_sha256([NODE_DOCKERFILE, *NODE_FILES], [base, bin_digest])
        if current_node != node_digest:
            ignore = ROOT / ".dockerignore"
            for rel in NODE_FILES:
                if ignore.exists() and dockerignore_excludes(rel, ignore.read_text()):
                    raise ClusterError(f".dockerignore keeps {rel} out of the build context; "
                                       "add the line `!kind/offline/` to .dockerignore")
        packages = None
        if current_bin != bin_digest:
            if current_node != node_digest:  # the node's packages install while Go compiles
                packages = Background("cluster")
                packages.start(self._build_node_packages, base)
            with step(f"Building {BINARIES_IMAGE} (Kubernetes from Debian's source package; "
                      "about 5-10 min on 2 cores, once, beside the rest of `make up`)"):
                docker_build(BINARIES_IMAGE, BINARIES_DOCKERFILE, {"BASE_IMAGE": base}, {INPUTS_LABEL: bin_digest},
                             background=True)
        if current_node != node_digest:
            if packages is not None:
                packages.result()  # raises the packages stage's failure (the build below would repeat it)
            with step(f"Building {NODE_IMAGE} ({NODE_DOCKERFILE})"):
                docker_build(NODE_IMAGE, NODE_DOCKERFILE, {"BASE_IMAGE": base, "BINARIES_IMAGE": BINARIES_IMAGE},
                             {INPUTS_LABEL: node_digest}, background=True)

    @staticmethod
    def _build_node_packages(base: str) -> None:
        with step(f"Building {NODE_PACKAGES_IMAGE} (the node's Debian packages: {NODE_DOCKERFILE}, "
                  "stage node-packages)"):
            docker_build(NODE_PACKAGES_IMAGE, NODE_DOCKERFILE, {"BASE_IMAGE": base}, background=True,
                         target="node-packages")

    # --- node container --------------------------------------------------------------------------
    def _inspect(self) -> dict | None:
        res = docker("container", "inspect", self.node)
        if res.returncode != 0:
            return None
        return json.loads(res.stdout)[0]

    def _ours(self, data: dict) -> bool:
        return (data.get("Config", {}).get("Labels") or {}).get(NODE_LABEL) == "offline"

    def prepare(self) -> None:
        self.ensure_images()

    def provision(self, network: str) -> None:
        self.ensure_images()  # instant when prepare() built them
        data = self._inspect()
        if data and not self._ours(data):
            raise ClusterError(f"a container named {self.node} exists and is not a sandbox node; "
                               "remove or rename it, or set COMPOSE_PROJECT_NAME")
        if data and data["Image"] != image_id(NODE_IMAGE):
            with step(f"Node image changed: recreating {self.node}"):
                self.delete()
            data = None
        if data is None:
            self._run(network)
        else:
            if not data["State"]["Running"]:
                with step(f"Starting the Kubernetes node {self.node}"):
                    docker("start", self.node, check=True)
            else:
                info(f"reusing the running Kubernetes node {self.node}")
            networks = (self._inspect() or {}).get("NetworkSettings", {}).get("Networks", {})
            if network not in networks:
                docker("network", "connect", "--alias", self.alias, network, self.node, check=True)
                info(f"connected {self.node} to {network} as {self.alias}")

    def _run(self, network: str) -> None:
        with step(f"Starting the Kubernetes node {self.node} on {network} "
                  f"(API: https://{self.alias}:{API_SERVER_PORT_IN_NETWORK}, host: https://127.0.0.1:{self.api_port})"):
            node_name = re.sub(r"[^a-z0-9.-]", "-", self.node.lower())
            cmd = ["run", "-d", "--name", self.node, "--hostname", node_name,
                   "--label", f"{NODE_LABEL}=offline", "--label", f"{PROJECT_LABEL}={self.settings.project}",
                   "--network", network, "--network-alias", self.alias,
                   *NODE_RUN_FLAGS,
                   "-v", f"{self.volume}:/var/lib/containerd",
                   "-e", f"NODE_NAME={node_name}", "-e", f"API_SANS={self.alias},{self.node}",
                   "-p", f"127.0.0.1:{self.api_port}:{API_SERVER_PORT_IN_NETWORK}",
                   NODE_IMAGE]
            res = docker(*cmd)
            if res.returncode != 0:
                docker("rm", "-f", self.node)
                hint = (f" Port {self.api_port} is taken: set K8S_API_PORT in .env."
                        if "port is already allocated" in res.stderr or "address already in use" in res.stderr else "")
                raise ClusterError(f"could not start the Kubernetes node:{hint}\n{res.stderr[-2000:]}")

    def stop(self) -> None:
        if docker("container", "inspect", self.node).returncode == 0:
            docker("stop", "--time", "10", self.node, check=True)

    def delete(self) -> None:
        data = self._inspect()
        if data is not None:
            if not self._ours(data):
                raise ClusterError(f"refusing to remove {self.node}: it is not a sandbox node")
            docker("rm", "-f", "-v", self.node, check=True)
        if docker("volume", "inspect", self.volume).returncode == 0:
            docker("volume", "rm", self.volume, check=True)

    def is_running(self) -> bool:
        data = self._inspect()
        return bool(data and self._ours(data) and data["State"]["Running"])

    def exec(self, *args: str, input: str | bytes | None = None, check: bool = True,
             timeout: float | None = None) -> subprocess.CompletedProcess:
        return docker("exec", *(["-i"] if input is not None else []), self.node, *args,
                      input=input, check=check, timeout=timeout)

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        """kubectl inside the node, as cluster admin."""
        return self.exec("kubectl", *args, input=input, check=check)

    # --- images into containerd ------------------------------------------------------------------
    def load_images(self, tags: list[str]) -> list[str]:
        return load_into_containerd(self.node, tags)

    # --- kubeconfigs -----------------------------------------------------------------------------
    def _pki(self) -> tuple[str, str, str]:
        """The node's CA, admin certificate and key; NotYet while the node has not written them."""
        res = self.exec("sh", "-c", f"cat {PKI}/ca.crt; echo '-----SPLIT-----'; cat {PKI}/admin.crt; "
                                    f"echo '-----SPLIT-----'; cat {PKI}/admin.key", check=False, timeout=30)
        parts = res.stdout.split("-----SPLIT-----\n")
        if res.returncode != 0 or len(parts) != 3 or "BEGIN CERTIFICATE" not in parts[0]:
            said = res.stderr.strip()[-500:]
            raise NotYet(f"the node {self.node} has no PKI yet (is it running?){': ' + said if said else ''}")
        return parts[0], parts[1], parts[2]

    def _pki_when_ready(self, timeout: float = 60) -> tuple[str, str, str]:
        return wait_until(self._pki, timeout=timeout, interval=0.5, what=f"the PKI of the Kubernetes node {self.node}",
                          error=ClusterError)

    def internal_kubeconfig(self) -> dict:
        ca, cert, key = self._pki_when_ready()
        return kc.make_kubeconfig(f"https://{self.alias}:{API_SERVER_PORT_IN_NETWORK}", ca, cert, key,
                                  cluster=self.node)

    def host_kubeconfig(self) -> dict:
        ca, cert, key = self._pki_when_ready()
        return kc.make_kubeconfig(f"https://127.0.0.1:{self.api_port}", ca, cert, key, cluster=self.node)

    def ready_since(self):
        data = self._inspect()
        return kc.parse_time(data["State"]["StartedAt"]) if data else None

    def wait_ready(self, timeout: float = 180) -> float:
        data = self._inspect()
        if not data or not data["State"]["Running"]:
            raise ClusterError(f"the Kubernetes node {self.node} is not running; "
                               f"`docker logs {self.node}` says:\n{self._docker_log_tail()}")
        try:
            return super().wait_ready(timeout)
        except ClusterError as exc:
            raise ClusterError(f"{exc}\nlast node log lines:\n{self._docker_log_tail()}") from exc

    def _docker_log_tail(self, lines: int = 30) -> str:
        res = docker("logs", "--tail", str(lines), self.node)
        return (res.stdout + res.stderr).strip()

    # --- diagnostics ---------------------------------------------------------------------------
    def collect_logs(self, dest_dir: str | Path) -> list[Path]:
        dest = Path(dest_dir)
        dest.mkdir(parents=True, exist_ok=True)
        written = []
        if self._inspect() is None:
            return written
        res = docker("logs", self.node)
        (dest / "node.log").write_text(res.stdout + res.stderr)
        written.append(dest / "node.log")
        if docker("cp", f"{self.node}:/var/log/kubernetes", str(dest / "components")).returncode == 0:
            written.append(dest / "components")
        if self.is_running():
            state = []
            for args in (["get", "nodes", "-o", "wide"], ["get", "pods", "-A", "-o", "wide"],
                         ["get", "events", "-A", "--sort-by=.lastTimestamp"]):
                r = self.kubectl(*args, check=False)
                state.append(f"$ kubectl {' '.join(args)}\n{r.stdout}{r.stderr}")
            r = self.exec("ctr", "-n", "k8s.io", "images", "ls", "-q", check=False)
            state.append(f"$ ctr -n k8s.io images ls -q\n{r.stdout}{r.stderr}")
            (dest / "cluster-state.txt").write_text("\n".join(state))
            written.append(dest / "cluster-state.txt")
        return written

