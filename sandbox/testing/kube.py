"""The sandbox's Kubernetes cluster for tests, through the official `kubernetes` client.

`make up` writes an admin kubeconfig for the host (.build/kube/host.yaml) and records the cluster
and the namespace pods run in (.build/kube/cluster.json); with K8S_PROVIDER=none it writes neither.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


class NoCluster(Exception):
    """The sandbox has no Kubernetes cluster: why, and what to do."""


@dataclass
class KubeClient:
    """`api_client` (kubernetes.client.ApiClient, TLS verified against the cluster's CA), the task
    namespace, and a CoreV1Api on that client. Close it (or use it as a context manager)."""

    api_client: Any
    namespace: str
    core_v1: Any
    server: str = ""
    provider: str = ""

    def close(self) -> None:
        self.api_client.close()

    def __enter__(self) -> KubeClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_kube_client(kubeconfig: Path, namespace: str, *, server: str = "", provider: str = "") -> KubeClient:
    try:
        from kubernetes import client, config
    except ImportError as exc:
        raise RuntimeError("the kube_client fixture needs the `kubernetes` package: "
                           "pip install kubernetes (requirements-dev.txt pins it)") from exc
    # persist_config=False: never write refreshed credentials back into the sandbox's kubeconfig.
    api_client = config.new_client_from_config(config_file=str(kubeconfig), persist_config=False)
    return KubeClient(api_client, namespace, client.CoreV1Api(api_client), server=server, provider=provider)


def open_recorded_cluster(record: dict, kubeconfig: Path, provider_setting: str = "") -> KubeClient:
    """A client for the cluster `make up` recorded (stack.recorded_cluster()), or NoCluster."""
    if not record.get("server"):
        setting = f"K8S_PROVIDER={provider_setting}" if provider_setting else "K8S_PROVIDER"
        raise NoCluster(f"the sandbox has no Kubernetes cluster ({setting}; `make up` recorded none): "
                        "set K8S_PROVIDER in .env to auto, kind, offline or external, then `make up`")
    if not kubeconfig.exists():
        raise NoCluster(f"the {record.get('provider')} cluster's host kubeconfig {kubeconfig} is missing; "
                        "`make up` writes it")
    return open_kube_client(kubeconfig, record.get("namespace") or "default", server=record["server"],
                            provider=record.get("provider", ""))
