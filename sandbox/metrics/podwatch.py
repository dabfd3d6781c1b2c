"""Every pod's state from the Kubernetes API, followed through the cluster being recreated.

`make up` writes the cluster's kubeconfig (.build/kube/admin.yaml, mounted at /kube) and writes it
again whenever it (re)creates the cluster, with a new CA and client certificates when the node is
new; `make down` and K8S_PROVIDER=none remove it. A kubeconfig loaded once fails TLS against a new
node for as long as the service runs, so the watch reads the file again before every connection and
between watch events, and connects with what it holds now. What happened is kept in a `WatchHealth`.

    pods = PodWatch(KubeconfigFile("/kube/admin.yaml"))
    threading.Thread(target=pods.run, args=(stop,), daemon=True).start()
    pods.get(uid)              # the pod's latest state (deleted pods stay)
    pods.health.problem()      # "pod watch failing since 05:46:12 UTC: the cluster's certificate …"
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import threading
import time
from pathlib import Path
from typing import Any, Callable

import requests

from sandbox.core.kubeconfig import ApiClient, current, load
from sandbox.core.poll import wait_until
from sandbox.metrics.health import FAILING, OFF, WatchHealth
from sandbox.metrics.times import utc_clock

log = logging.getLogger("sandbox.metrics")

# The API server ends each watch after this long, and the next one starts at once with the file as
# it is then: this bounds how long a kubeconfig rewritten while no pod changes (no watch event to
# look at the file after) goes unnoticed. A list of the sandbox's pods every 10 s costs little.
WATCH_SECONDS = 10
# A node removed mid-watch sends nothing, not even a reset: no byte for this long ends the watch
# (short, so that the pods of the recreated cluster's first run are seen before they are deleted).
READ_TIMEOUT = WATCH_SECONDS + 10
RETRY_SECONDS = 2.0
_CHECK_SECONDS = 1.0  # between watch events, how often the kubeconfig file is looked at


class KubeconfigMissing(Exception):
    """No kubeconfig file: no cluster is configured (or `make down` removed it)."""


class KubeconfigUnusable(Exception):
    """The file is there but is no kubeconfig a client can be made from (e.g. read half-written)."""


class ApiRefused(Exception):
    """The API server answered, but not with what was asked for."""

    def __init__(self, status: int, doing: str):
        self.status = status
        if status == 401:
            message = "the API server refused the kubeconfig's credentials (HTTP 401 Unauthorized)"
        elif status == 403:
            message = f"the kubeconfig's user may not be {doing} (HTTP 403 Forbidden)"
        else:
            message = f"{doing}: HTTP {status}"
        super().__init__(message)


def _api_client(kubeconfig: dict) -> ApiClient:
    return ApiClient(kubeconfig, timeout=READ_TIMEOUT)


class KubeconfigFile:
    """The kubeconfig at `path` as an API client for what the file holds now.

    `client()` reads the file each time and makes a new client only when its content changed (each
    `make up` rewrites the file, mostly with the same content: that is no reason to reconnect).
    `changed()` is the cheap check between watch events: it hashes the file only once its mtime or
    size differ from what was loaded. `client_factory` makes the client from the parsed kubeconfig
    (tests pass a fake)."""

    def __init__(self, path: str | Path, client_factory: Callable[[dict], Any] = _api_client,
                 clock: Callable[[], float] = time.time):
        self.path = Path(path)
        self.client_factory, self.clock = client_factory, clock
        self._client: Any = None
        self.loads = 0                         # how many times a client was made from the file
        self.loaded_at: float | None = None    # when it last was
        self.written_at: float | None = None   # the mtime of the content loaded then
        self.server: str | None = None
        self._digest: str | None = None
        self._stat: tuple[int, int] | None = None   # (mtime_ns, size) when that content was read

    def _read(self):
        # stat before reading: a rewrite in between leaves an older mtime with newer content, which
        # the next changed() hashes again (the other order would remember new mtime, old content).
        try:
            stat = self.path.stat()
            return stat, self.path.read_bytes()
        except FileNotFoundError:
            return None

    def client(self) -> Any:
        """Raises KubeconfigMissing or KubeconfigUnusable when there is nothing to connect with."""
        found = self._read()
        if found is None:
            self.forget()
            raise KubeconfigMissing(f"no kubeconfig: no cluster is configured ({self.path} is absent)")
        stat, data = found
        digest = hashlib.sha256(data).hexdigest()
        if self._client is not None and digest == self._digest:
            self._stat = (stat.st_mtime_ns, stat.st_size)
            return self._client
        self.forget()
        try:
            kubeconfig = load(data.decode())
            server = current(kubeconfig)[2].get("server")
            client = self.client_factory(kubeconfig)
        except Exception as error:  # YAML, base64, a missing field: all say the same to the user
            first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise KubeconfigUnusable(f"{self.path} is not a usable kubeconfig ({first_line})") from error
        self._client, self.server, self.loads = client, server, self.loads + 1
        self._digest, self._stat = digest, (stat.st_mtime_ns, stat.st_size)
        self.loaded_at, self.written_at = self.clock(), stat.st_mtime
        return client

    def changed(self) -> bool:
        """Whether the file is not what the current client was made from (gone, or other content)."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return self._client is not None
        if self._client is None:
            return True
        if (stat.st_mtime_ns, stat.st_size) == self._stat:
            return False
        try:
            digest = hashlib.sha256(self.path.read_bytes()).hexdigest()
        except FileNotFoundError:
            return True
        if digest == self._digest:
            self._stat = (stat.st_mtime_ns, stat.st_size)  # rewritten unchanged: stop hashing it
        return digest != self._digest

    def forget(self) -> None:
        """Closes the client; the next client() loads the file again."""
        if self._client is not None:
            self._client.close()
        self._client, self._digest, self._stat = None, None, None

    def as_json(self) -> dict:
        return {"path": str(self.path), "present": self.path.exists(), "loaded_at": self.loaded_at,
                "written_at": self.written_at, "server": self.server, "loads": self.loads}


_CAUSE = re.compile(r"\[(?:Errno -?\d+|SSL: [A-Z_]+)\][^'\")]*")


def describe_failure(error: BaseException, server: str | None = None) -> str:
    """A failed call to the API server as the sentence a user acts on (urllib3's messages bury the
    cause in a chain of wrappers)."""
    text = str(error)
    cause = _CAUSE.search(text)
    short = cause.group(0).strip() if cause else (text.strip().splitlines() or [type(error).__name__])[0][:200]
    at = f" at {server}" if server else ""
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return "the cluster's certificate did not verify (CERTIFICATE_VERIFY_FAILED)"
    if isinstance(error, (ApiRefused, KubeconfigMissing, KubeconfigUnusable)):
        return text
    if isinstance(error, requests.exceptions.SSLError):
        return f"TLS with the API server{at} failed ({short})"
    if isinstance(error, requests.exceptions.ReadTimeout):
        return f"the API server{at} stopped answering (nothing for {READ_TIMEOUT} s)"
    if isinstance(error, requests.exceptions.ConnectionError):
        return f"the API server{at} is not reachable ({short})"
    return f"{type(error).__name__}: {short}"


def _refused_credentials(error: BaseException) -> bool:
    return "CERTIFICATE_VERIFY_FAILED" in str(error) or (isinstance(error, ApiRefused) and error.status == 401)


class PodWatch:
    """Every pod's latest state by uid, kept from a watch on the Kubernetes API (deleted pods stay:
    a pod gone right after its task ended must still be named)."""

    def __init__(self, kubeconfig: KubeconfigFile, health: WatchHealth | None = None, *,
                 retry_seconds: float = RETRY_SECONDS, watch_seconds: int = WATCH_SECONDS):
        self.kubeconfig = kubeconfig
        self.health = health or WatchHealth("pod watch", ("k8s",))
        self.retry_seconds, self.watch_seconds = retry_seconds, watch_seconds
        self._pods: dict[str, dict] = {}
        self._lock = threading.Lock()
        self._loads_logged = 0

    def get(self, uid: str) -> dict | None:
        with self._lock:
            return self._pods.get(uid)

    def _keep(self, pod: dict) -> None:
        uid = pod.get("metadata", {}).get("uid")
        if uid:
            with self._lock:
                self._pods[uid] = pod

    # ── the loop ───────────────────────────────────────────────────────────
    def run(self, stop: threading.Event) -> None:
        """Follows the pods for as long as the service runs: a new connection after each watch the
        server ended, after a changed kubeconfig at once, after a failure in `retry_seconds`."""
        while not stop.is_set():
            if self.watch_once(stop):
                continue
            if self.health.state == OFF:
                # No deadline: a sandbox without a cluster never gets one, and that is fine.
                wait_until(lambda: stop.is_set() or self.kubeconfig.path.exists(), timeout=math.inf,
                           interval=self.retry_seconds, what=f"a kubeconfig at {self.kubeconfig.path}")
            else:
                stop.wait(self.retry_seconds)

    def watch_once(self, stop: threading.Event) -> bool:
        """One connection with the kubeconfig as the file holds it now: lists every pod, then follows
        changes until the server ends the watch, the file changes or `stop`. Records the outcome
        in `health`; True when it worked."""
        try:
            api = self.kubeconfig.client()
        except KubeconfigMissing as missing:
            self._note_kubeconfig()
            if self.health.off(str(missing)):
                log.warning("no pod watch: %s", missing)
            return False
        except KubeconfigUnusable as error:
            self._failed(error)  # read while `make up` was writing it, say: the next try reads it again
            return False
        self._note_kubeconfig()
        try:
            self._list_and_watch(api, stop)
        except Exception as error:
            self._failed(error)
            return False
        return True

    def _list_and_watch(self, api: Any, stop: threading.Event) -> None:
        status, listing = api.get("/api/v1/pods")
        if status != 200 or not listing:
            raise ApiRefused(status, "listing pods")
        for pod in listing.get("items", []):
            self._keep(pod)
        self._succeeded()
        version = listing["metadata"]["resourceVersion"]
        with api.request("GET", f"/api/v1/pods?watch=1&resourceVersion={version}&allowWatchBookmarks=true"
                                f"&timeoutSeconds={self.watch_seconds}", stream=True) as res:
            if res.status_code != 200:
                raise ApiRefused(res.status_code, "watching pods")
            next_check = time.monotonic() + _CHECK_SECONDS
            for line in res.iter_lines():
                if stop.is_set():
                    return
                if line:
                    event = json.loads(line)
                    if event.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                        self._keep(event["object"])
                    elif event.get("type") == "ERROR":
                        return  # e.g. 410 Gone: the version is too old to watch from; list again
                    self.health.succeeded()
                if time.monotonic() >= next_check:
                    if self.kubeconfig.changed():
                        log.info("the kubeconfig %s changed: connecting again with it", self.kubeconfig.path)
                        return
                    next_check = time.monotonic() + _CHECK_SECONDS
        self._succeeded()

    # ── what the health record says ────────────────────────────────────────
    def _note_kubeconfig(self) -> None:
        k = self.kubeconfig
        self.health.set_detail("kubeconfig", k.as_json())
        if k.loads != self._loads_logged:
            self._loads_logged = k.loads
            log.info("loaded the kubeconfig %s (written %s; API server %s)", k.path, utc_clock(k.written_at), k.server)

    def _succeeded(self) -> None:
        k = self.kubeconfig
        how = None
        if self.health.state in (FAILING, OFF):
            if k.loaded_at is not None and k.loaded_at >= self.health.since:
                how = f"the kubeconfig written at {utc_clock(k.written_at)} was loaded at {utc_clock(k.loaded_at)}"
            log.info("pod watch working again" + (f": {how}" if how else ""))
        self.health.succeeded(how)

    def _failed(self, error: BaseException) -> None:
        k = self.kubeconfig
        reason = describe_failure(error, k.server)
        detail = None
        if isinstance(error, KubeconfigUnusable):
            detail = f"it is read again every {self.retry_seconds:g} s"
        elif k.changed():
            detail = "the kubeconfig was rewritten after this service loaded it; the next try loads it"
        elif k.loaded_at is not None:
            detail = f"kubeconfig {k.path} written {utc_clock(k.written_at)}, loaded {utc_clock(k.loaded_at)}"
            if _refused_credentials(error):
                detail += ("; if the cluster was recreated since, `make up` writes its new kubeconfig, "
                           "which this service loads as soon as it changes")
        if self.health.failed(reason, detail):
            log.warning("pod watch failing: %s (%s)", reason, detail)
