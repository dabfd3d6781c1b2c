"""The kind provider: kind's CLI and its node image (kindest/node), where both can be had and the
engine allows privileged containers. It is the upstream way; the offline provider mirrors it."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import yaml

from sandbox.core import kubeconfig as kc
from sandbox.core.progress import info, step
from sandbox.host.cluster.base import ClusterError, ClusterProvider, docker_engine_ok
from sandbox.host.docker import docker
from sandbox.host.settings import ROOT, Settings

CONFIG = ROOT / "kind" / "cluster.yaml"


def kind_config(api_port: int, path: Path = CONFIG) -> dict:
    """kind/cluster.yaml with the host port of the API server set."""
    config = yaml.safe_load(path.read_text())
    config.setdefault("networking", {})["apiServerPort"] = int(api_port)
    return config


def privileged_containers_work(images: list[str]) -> tuple[bool, str]:
    """Runs `true` in a privileged container from the first local image in `images` (never pulls)."""
    for image in images:
        if image and docker("image", "inspect", image).returncode == 0:
            res = docker("run", "--rm", "--privileged", "--network", "none", "--entrypoint", "true", image,
                         timeout=60)
            if res.returncode == 0:
                return True, "privileged containers work"
            first = (res.stderr.strip().splitlines() or ["?"])[-1]
            return False, f"the engine refuses privileged containers ({first[:200]})"
    return False, "no local image to probe privileged containers with"


class KindProvider(ClusterProvider):
    name = "kind"

    def __init__(self, settings: Settings, *, cluster_name: str | None = None, api_port: int | str | None = None):
        self.settings = settings
        self.cluster = cluster_name or settings.get("K8S_KIND_CLUSTER") or settings.project
        self.node = f"{self.cluster}-control-plane"
        self.api_port = int(api_port or settings.get("K8S_API_PORT", "6443") or 6443)
        self.node_image = settings.get("K8S_KIND_NODE_IMAGE")  # empty: kind's default for its version

    def _kind(self, *args: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
        res = subprocess.run(["kind", *args], capture_output=True, text=True, **kw)
        if check and res.returncode != 0:
            raise ClusterError(f"kind {' '.join(args)} failed:\n{res.stderr[-3000:]}")
        return res

    def available(self) -> tuple[bool, str]:
        if shutil.which("kind") is None:
            return False, "the kind CLI is not installed"
        ok, engine = docker_engine_ok()
        if not ok:
            return False, engine
        from sandbox.host.images import LOCAL_DEBIAN_BASE
        probe_images = [self.node_image, self.settings.get("DEBIAN_BASE_IMAGE", "debian:bookworm-slim"),
                        LOCAL_DEBIAN_BASE]
        ok, why = privileged_containers_work(probe_images)
        if not ok:
            return False, why
        version = self._kind("version", check=False).stdout.strip()
        return True, f"{version or 'kind'} found and {why}"

    def _exists(self) -> bool:
        return self.cluster in self._kind("get", "clusters", check=False).stdout.split()

    def provision(self, network: str) -> None:
        if not self._exists():
            with step(f"Creating kind cluster {self.cluster}"), tempfile.NamedTemporaryFile(
                    "w", suffix=".yaml", prefix="kind-") as cfg:
                yaml.safe_dump(kind_config(self.api_port), cfg)
                cfg.flush()
                args = ["create", "cluster", "--name", self.cluster, "--config", cfg.name]
                if self.node_image:
                    args += ["--image", self.node_image]
                self._kind(*args)
        else:
            info(f"reusing kind cluster {self.cluster}")
            state = docker("inspect", "--format", "{{.State.Running}}", self.node).stdout.strip()
            if state == "false":
                docker("start", self.node, check=True)
        networks = docker("inspect", "--format", "{{json .NetworkSettings.Networks}}", self.node, check=True).stdout
        if f'"{network}"' not in networks:
            docker("network", "connect", "--alias", self.alias, network, self.node, check=True)
            info(f"connected {self.node} to {network} as {self.alias}")

    def stop(self) -> None:
        if docker("container", "inspect", self.node).returncode == 0:
            docker("stop", "--time", "10", self.node, check=True)

    def delete(self) -> None:
        if self._exists():
            self._kind("delete", "cluster", "--name", self.cluster)

    def load_images(self, tags: list[str]) -> list[str]:
        # kind compares image IDs itself and skips images the node already has.
        for tag in tags:
            with step(f"Loading {tag} into kind cluster {self.cluster}"):
                self._kind("load", "docker-image", "--name", self.cluster, tag)
        return list(tags)

    def internal_kubeconfig(self) -> dict:
        """kind's --internal kubeconfig: server https://<name>-control-plane:6443, which resolves
        on every network the node is connected to; kind's certificate names it."""
        doc = kc.load(self._kind("get", "kubeconfig", "--internal", "--name", self.cluster).stdout)
        kc.check_verified(doc)
        return doc

    def host_kubeconfig(self) -> dict:
        return kc.load(self._kind("get", "kubeconfig", "--name", self.cluster).stdout)

    def collect_logs(self, dest_dir: str | Path) -> list[Path]:
        dest = Path(dest_dir)
        dest.mkdir(parents=True, exist_ok=True)
        if self._exists():
            self._kind("export", "logs", str(dest), "--name", self.cluster, check=False)
        return [dest]
