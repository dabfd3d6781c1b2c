"""Kubeconfig documents as plain dicts: made from PEM material, rewritten for use from containers,
and a tiny API client (requests + client certificates or a token) for readiness checks.

Everything here except `ApiClient` is a pure function, so the unit tests cover it without Docker.
"""
from __future__ import annotations

import base64
import copy
import ipaddress
import os
import re
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import yaml

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "0.0.0.0"}


class KubeconfigError(ValueError):
    pass


def b64(data: str | bytes) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def make_kubeconfig(server: str, ca_pem: str, cert_pem: str, key_pem: str, *,
                    cluster: str = "sandbox", user: str = "kubernetes-admin") -> dict:
    """A one-context kubeconfig with everything embedded (no file paths), TLS verified against ca_pem."""
    if "BEGIN CERTIFICATE" not in ca_pem:
        raise KubeconfigError("the cluster CA is not a PEM certificate")
    context = f"{user}@{cluster}"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster, "cluster": {"server": server, "certificate-authority-data": b64(ca_pem)}}],
        "users": [{"name": user, "user": {"client-certificate-data": b64(cert_pem), "client-key-data": b64(key_pem)}}],
        "contexts": [{"name": context, "context": {"cluster": cluster, "user": user}}],
        "current-context": context,
        "preferences": {},
    }


def dump(kubeconfig: dict) -> str:
    return yaml.safe_dump(kubeconfig, sort_keys=False, default_flow_style=False)


def load(text: str) -> dict:
    doc = yaml.safe_load(text)
    if not isinstance(doc, dict) or not doc.get("clusters"):
        raise KubeconfigError("not a kubeconfig: no clusters")
    return doc


def _named(items: list[dict] | None, name: str, what: str) -> dict:
    for item in items or []:
        if item.get("name") == name:
            return item
    raise KubeconfigError(f"kubeconfig has no {what} named {name!r}")


def current(kubeconfig: dict, context: str | None = None) -> tuple[str, dict, dict, dict]:
    """(context name, context, cluster, user) of the given or the current context."""
    name = context or kubeconfig.get("current-context")
    if not name:
        contexts = kubeconfig.get("contexts") or []
        if len(contexts) != 1:
            raise KubeconfigError("kubeconfig has no current-context")
        name = contexts[0]["name"]
    ctx = _named(kubeconfig.get("contexts"), name, "context")["context"]
    cluster = _named(kubeconfig.get("clusters"), ctx["cluster"], "cluster")["cluster"]
    user = _named(kubeconfig.get("users"), ctx["user"], "user")["user"] if ctx.get("user") else {}
    return name, ctx, cluster, user


def minify(kubeconfig: dict, context: str | None = None) -> dict:
    """Only the (current) context with its cluster and user, as `kubectl config view --minify` does."""
    name, ctx, cluster, user = current(kubeconfig, context)
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": ctx["cluster"], "cluster": copy.deepcopy(cluster)}],
        "users": [{"name": ctx.get("user", "user"), "user": copy.deepcopy(user)}],
        "contexts": [{"name": name, "context": copy.deepcopy(ctx)}],
        "current-context": name,
        "preferences": {},
    }


_FILE_FIELDS = {  # section, path field, embedded field
    ("cluster", "certificate-authority", "certificate-authority-data"),
    ("user", "client-certificate", "client-certificate-data"),
    ("user", "client-key", "client-key-data"),
}


def inline_files(kubeconfig: dict, base_dir: str | Path) -> dict:
    """Replaces certificate/key file paths by their contents: paths on the host mean nothing in a container."""
    doc = copy.deepcopy(kubeconfig)
    sections = {"cluster": [c["cluster"] for c in doc.get("clusters") or []],
                "user": [u["user"] for u in doc.get("users") or []]}
    for section, path_field, data_field in _FILE_FIELDS:
        for entry in sections[section]:
            if entry.get(path_field):
                path = Path(entry[path_field]).expanduser()
                if not path.is_absolute():
                    path = Path(base_dir) / path  # kubeconfig paths are relative to the kubeconfig file
                try:
                    entry[data_field] = b64(path.read_bytes())
                except OSError as exc:
                    raise KubeconfigError(f"kubeconfig refers to {path}, which cannot be read: {exc}") from exc
                del entry[path_field]
    return doc


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_unspecified


def rewrite_server_for_containers(kubeconfig: dict, host: str = "host.docker.internal") -> dict:
    """A copy whose loopback API servers (127.0.0.1, localhost, ::1) are addressed as `host`, which
    containers resolve to the Docker host (compose: `extra_hosts: ["host.docker.internal:host-gateway"]`).

    TLS stays verified: `tls-server-name` keeps the name the certificate was issued for (the original
    host). A kubeconfig that disables verification is refused, not passed on.
    """
    doc = copy.deepcopy(kubeconfig)
    for entry in doc.get("clusters") or []:
        cluster = entry["cluster"]
        if cluster.get("insecure-skip-tls-verify"):
            raise KubeconfigError(f"cluster {entry.get('name')!r} sets insecure-skip-tls-verify; "
                                  "give it its CA (certificate-authority-data) instead")
        parts = urlsplit(cluster["server"])
        original = parts.hostname or ""
        if not is_loopback(original):
            continue
        netloc = host if ":" not in host else f"[{host}]"
        if parts.port:
            netloc += f":{parts.port}"
        cluster["server"] = urlunsplit(parts._replace(netloc=netloc))
        if parts.scheme == "https" and not cluster.get("tls-server-name"):
            cluster["tls-server-name"] = "localhost" if original in ("0.0.0.0", "::") else original
    return doc


def check_verified(kubeconfig: dict) -> None:
    """Raises unless every cluster is https with embedded CA data and no insecure flag."""
    for entry in kubeconfig.get("clusters") or []:
        cluster = entry["cluster"]
        if cluster.get("insecure-skip-tls-verify"):
            raise KubeconfigError(f"cluster {entry.get('name')!r}: insecure-skip-tls-verify is set")
        if not cluster.get("server", "").startswith("https://"):
            raise KubeconfigError(f"cluster {entry.get('name')!r}: server is not https")
        if not cluster.get("certificate-authority-data"):
            raise KubeconfigError(f"cluster {entry.get('name')!r}: no certificate-authority-data")


class ApiClient:
    """GETs against a kubeconfig's API server with `requests` (client certificate or bearer token),
    TLS verified. Use as a context manager: PEM data is written to a private temporary directory."""

    def __init__(self, kubeconfig: dict, context: str | None = None, timeout: float = 10):
        import requests
        _, _, cluster, user = current(kubeconfig, context)
        self.server = cluster["server"].rstrip("/")
        self.timeout = timeout
        self._tmp = tempfile.TemporaryDirectory(prefix="sandbox-kube-")
        self.session = requests.Session()

        def pem(data_field: str, path_field: str, section: dict, name: str) -> str | None:
            if section.get(data_field):
                path = os.path.join(self._tmp.name, name)
                with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as fh:
                    fh.write(base64.b64decode(section[data_field]))
                return path
            return section.get(path_field)

        ca = pem("certificate-authority-data", "certificate-authority", cluster, "ca.crt")
        if cluster.get("insecure-skip-tls-verify"):
            raise KubeconfigError("refusing a kubeconfig with insecure-skip-tls-verify")
        self.session.verify = ca if ca else True
        cert = pem("client-certificate-data", "client-certificate", user, "client.crt")
        key = pem("client-key-data", "client-key", user, "client.key")
        if cert and key:
            self.session.cert = (cert, key)
        if user.get("token"):
            self.session.headers["Authorization"] = f"Bearer {user['token']}"

    def request(self, method: str, path: str, **kw):
        # verify/cert per request: requests lets REQUESTS_CA_BUNDLE override a session's `verify`.
        return self.session.request(method, self.server + path, timeout=self.timeout,
                                    verify=self.session.verify, cert=self.session.cert, **kw)

    def get_text(self, path: str) -> tuple[int, str]:
        res = self.request("GET", path)
        return res.status_code, res.text

    def get(self, path: str) -> tuple[int, dict | None]:
        res = self.request("GET", path)
        try:
            body = res.json()
        except ValueError:
            body = None
        return res.status_code, body

    def close(self) -> None:
        self.session.close()
        self._tmp.cleanup()

    def __enter__(self) -> "ApiClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def parse_time(value: str) -> datetime:
    """RFC 3339 as Kubernetes and Docker write it (Docker adds nanoseconds), to whole seconds, UTC."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)", value.strip())
    if not m:
        raise ValueError(f"not an RFC 3339 time: {value!r}")
    offset = "+00:00" if m.group(2) == "Z" else m.group(2)
    return datetime.fromisoformat(m.group(1) + offset).astimezone(timezone.utc)


def node_ready(nodes_list: dict | None, since: datetime | None = None) -> tuple[bool, str]:
    """(any node Ready, a one-line description) from a GET /api/v1/nodes body. With `since`, a
    Ready condition only counts if the kubelet reported it at or after that time (a restarted
    node's object still says Ready from before the restart)."""
    items = (nodes_list or {}).get("items") or []
    if not items:
        return False, "no node registered yet"
    states = []
    ready = False
    for node in items:
        conditions = {c["type"]: c for c in node.get("status", {}).get("conditions", [])}
        cond = conditions.get("Ready", {})
        this_ready = cond.get("status") == "True"
        stale = (this_ready and since is not None and cond.get("lastHeartbeatTime")
                 and parse_time(cond["lastHeartbeatTime"]) < since.replace(microsecond=0))
        if stale:
            states.append(f"{node['metadata']['name']}: waiting for the kubelet's first status since the start")
        else:
            states.append(f"{node['metadata']['name']}: Ready={cond.get('status', '?')}"
                          + (f" ({cond.get('message')})" if not this_ready and cond.get("message") else ""))
        ready = ready or (this_ready and not stale)
    return ready, "; ".join(states)
