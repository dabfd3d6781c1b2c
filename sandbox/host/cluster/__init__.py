"""Kubernetes cluster providers: where KubernetesPodOperator's pods run.

    from sandbox.host.cluster import select_provider
    provider, reason = select_provider(settings)    # K8S_PROVIDER=auto|kind|offline|external
    provider.provision("airflow-sandbox_default")   # idempotent
    provider.wait_ready(timeout=300)
    provider.load_images(["sandbox/task:1.0"])
    kubeconfig = provider.internal_kubeconfig()     # dict, for Airflow's kubernetes_default

`auto` picks kind when its CLI is installed and the engine runs privileged containers, else the
offline cluster (kind/offline/: Kubernetes 1.20.2 built from Debian's source package).
"""
from __future__ import annotations

from typing import Callable

from sandbox.host.cluster.base import ClusterError, ClusterProvider
from sandbox.host.settings import Settings

PROVIDERS = ("kind", "offline", "external")


def _factories() -> dict[str, Callable[[Settings], ClusterProvider]]:
    from sandbox.host.cluster.external import ExternalProvider
    from sandbox.host.cluster.kind import KindProvider
    from sandbox.host.cluster.offline import OfflineProvider
    return {"kind": KindProvider, "offline": OfflineProvider, "external": ExternalProvider}


def make_provider(name: str, settings: Settings,
                  factories: dict[str, Callable[[Settings], ClusterProvider]] | None = None) -> ClusterProvider:
    factories = factories or _factories()
    if name not in factories:
        raise ClusterError(f"unknown Kubernetes provider {name!r}; choose one of auto, {', '.join(PROVIDERS)}")
    return factories[name](settings)


def select_provider(settings: Settings,
                    factories: dict[str, Callable[[Settings], ClusterProvider]] | None = None
                    ) -> tuple[ClusterProvider, str]:
    """The provider K8S_PROVIDER asks for, and a sentence saying which one and why.

    An explicit provider that cannot work here raises ClusterError with its reason; `auto` takes
    kind if it is usable, else offline (and raises if neither is)."""
    requested = (settings.get("K8S_PROVIDER", "auto") or "auto").strip().lower()
    if requested != "auto":
        provider = make_provider(requested, settings, factories)
        ok, why = provider.available()
        if not ok:
            raise ClusterError(f"K8S_PROVIDER={requested} cannot be used here: {why}")
        return provider, f"Kubernetes provider {requested} (K8S_PROVIDER={requested}): {why}"
    kind = make_provider("kind", settings, factories)
    kind_ok, kind_why = kind.available()
    if kind_ok:
        return kind, f"Kubernetes provider kind (K8S_PROVIDER=auto): {kind_why}"
    offline = make_provider("offline", settings, factories)
    offline_ok, offline_why = offline.available()
    if offline_ok:
        return offline, f"Kubernetes provider offline (K8S_PROVIDER=auto; kind not used: {kind_why}): {offline_why}"
    raise ClusterError(f"no Kubernetes provider can be used: kind: {kind_why}; offline: {offline_why}. "
                       "Set K8S_PROVIDER=external and K8S_EXTERNAL_KUBECONFIG to use a cluster you have.")


__all__ = ["ClusterError", "ClusterProvider", "PROVIDERS", "make_provider", "select_provider"]
