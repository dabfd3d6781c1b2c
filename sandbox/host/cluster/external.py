"""The external provider: any cluster you already have, from a kubeconfig file
(setting K8S_EXTERNAL_KUBECONFIG). Nothing is created or deleted.

Containers cannot use a kubeconfig that points at 127.0.0.1/localhost (minikube, Docker Desktop,
a kind cluster made by hand): the internal kubeconfig addresses such a server as
K8S_EXTERNAL_HOST (default host.docker.internal; compose services need
`extra_hosts: ["host.docker.internal:host-gateway"]`) and keeps TLS verified with
`tls-server-name` set to the original host. The API server must then listen on an address the
host gateway reaches (not only on 127.0.0.1); otherwise set K8S_EXTERNAL_SERVER to a URL that
containers can reach and that the server certificate names.
"""
from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from sandbox.core import kubeconfig as kc
from sandbox.core.progress import info
from sandbox.host.cluster.base import ClusterError, ClusterProvider
from sandbox.host.settings import Settings


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

    def provision(self, network: str) -> None:
        self._doc()
        info(f"external cluster: nothing to create; containers on {network} use "
             f"{self.internal_kubeconfig()['clusters'][0]['cluster']['server']}")

    def delete(self) -> None:
        info("external cluster: not ours, nothing deleted")

    def load_images(self, tags: list[str]) -> list[str]:
        if tags:
            info("external cluster: local images cannot be loaded into it; push these to a registry it "
                 f"pulls from (pods using them fail with ErrImagePull otherwise): {', '.join(tags)}")
        return []

    def internal_kubeconfig(self) -> dict:
        return internal_from_external(self._doc(), Path(self.path).expanduser().parent, self.host, self.server)

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
