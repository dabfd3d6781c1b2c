"""The cluster provider interface, modelled on kind's provider interface: one object per way of
having a Kubernetes cluster (kind, offline, external) with the same verbs.

    provider.available()            -> (bool, reason)
    provider.prepare()              build what the cluster needs (may take minutes, once)
    provider.provision(network)     create/start the cluster, reachable on that Docker network
    provider.wait_ready(timeout)    until a node is Ready and pods can be created
    provider.load_images(tags)      make local Docker images runnable in the cluster
    provider.internal_kubeconfig()  admin kubeconfig for containers on `network` (TLS verified)
    provider.host_kubeconfig()      admin kubeconfig for the host
    provider.collect_logs(dest)     node/component logs and cluster state, for failed runs
    provider.delete()               remove what provision created
"""
from __future__ import annotations

import abc
import time
from datetime import datetime
from pathlib import Path

from sandbox.core import kubeconfig as kc
from sandbox.core.poll import NotYet, wait_until
from sandbox.core.progress import info
from sandbox.host.docker import DockerError, docker

NETWORK_ALIAS = "kubernetes"  # the API server's name on the Docker network
API_SERVER_PORT_IN_NETWORK = 6443


class ClusterError(RuntimeError):
    pass


def docker_engine_ok() -> tuple[bool, str]:
    try:
        res = docker("info", "--format", "{{.ServerVersion}} {{.CgroupVersion}}", timeout=30)
    except FileNotFoundError:
        return False, "no docker CLI"
    if res.returncode != 0:
        return False, "the Docker engine does not answer (`docker info` failed)"
    return True, res.stdout.strip()


class ClusterProvider(abc.ABC):
    name: str = ""
    alias: str = NETWORK_ALIAS

    @abc.abstractmethod
    def available(self) -> tuple[bool, str]:
        """Whether this provider can work on this machine, and why (or why not)."""

    def prepare(self) -> None:
        """Builds or fetches what provision needs, before anything starts. Nothing by default."""

    @abc.abstractmethod
    def provision(self, network: str) -> None:
        """Creates or starts the cluster and attaches it to `network` under `alias`. Idempotent."""

    @abc.abstractmethod
    def delete(self) -> None:
        """Removes what provision created (never anything it did not create)."""

    def stop(self) -> None:
        """Stops what provision started, keeping it (images, PKI, state) for the next provision.
        A cluster the sandbox did not create is left alone."""

    @abc.abstractmethod
    def load_images(self, tags: list[str]) -> list[str]:
        """Makes local Docker images available to the cluster's runtime; returns the tags loaded
        (images already present with the same ID are skipped)."""

    @abc.abstractmethod
    def internal_kubeconfig(self) -> dict:
        """Admin kubeconfig valid from containers on the provisioned network, TLS verified."""

    @abc.abstractmethod
    def host_kubeconfig(self) -> dict:
        """Admin kubeconfig valid from the host."""

    @abc.abstractmethod
    def collect_logs(self, dest_dir: str | Path) -> list[Path]:
        """Writes logs and cluster state under dest_dir; returns the files/dirs written."""

    def ready_since(self) -> datetime | None:
        """A Ready condition older than this does not count (the node's last start), if known."""
        return None

    def wait_ready(self, timeout: float = 180) -> float:
        """Polls the API (host kubeconfig) until a node is Ready and the `default` service account
        exists (pods cannot be created before it). Returns the seconds waited."""
        started = time.monotonic()
        reported = ""

        def ready() -> bool:
            nonlocal reported
            try:
                last = self._not_ready_reason()
            except (ClusterError, DockerError):
                raise
            except Exception as exc:  # connection refused / reset while the API server starts
                last = f"API server not answering yet ({type(exc).__name__})"
            if last is None:
                return True
            if last != reported:
                info(last)
                reported = last
            raise NotYet(last)

        wait_until(ready, timeout=timeout, interval=1, what=f"{self.name} cluster ready", error=ClusterError)
        return time.monotonic() - started

    def _not_ready_reason(self) -> str | None:
        return not_ready_reason(self.host_kubeconfig(), since=self.ready_since())


def not_ready_reason(kubeconfig: dict, since: datetime | None = None) -> str | None:
    """None when the cluster a kubeconfig names has a Ready node and pods can be created in it, else
    what is missing. Connection and TLS errors are raised (a cluster with another CA fails here)."""
    with kc.ApiClient(kubeconfig, timeout=5) as api:
        status, nodes = api.get("/api/v1/nodes")
        if status != 200:
            return f"GET /api/v1/nodes: HTTP {status}"
        ready, last = kc.node_ready(nodes, since=since)
        if not ready:
            return last
        sa_status, _ = api.get("/api/v1/namespaces/default/serviceaccounts/default")
        return None if sa_status == 200 else "node Ready; waiting for the default service account"
