"""PodWatch and KubeconfigFile over a kubeconfig file in tmp_path that the tests rewrite, remove and
half-write as `make up` and `make down` do, with a fake API client per loaded kubeconfig that checks
its CA against a fake cluster's (no cluster, no network). The watch's record (health.py) is checked
as /healthz and the cost report show it."""
from __future__ import annotations

import base64
import json
import os
import threading

import pytest
import requests

from sandbox.core import kubeconfig as kc
from sandbox.core.poll import wait_until
from sandbox.metrics import podwatch, report
from sandbox.metrics.health import WatchHealth
from sandbox.metrics.podwatch import ApiRefused, KubeconfigFile, PodWatch, describe_failure
from sandbox.metrics.pricing import DEFAULT_PRICES

pytestmark = pytest.mark.unit

T0 = 1_700_000_000.0            # 2023-11-14T22:13:20Z
SERVER = "https://sandbox-control-plane:6443"
CERT = "-----BEGIN CERTIFICATE-----\nMIIclient\n-----END CERTIFICATE-----\n"
KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIkey\n-----END RSA PRIVATE KEY-----\n"
# What requests raises when the server's certificate is not signed by the kubeconfig's CA.
VERIFY_FAILED = ("HTTPSConnectionPool(host='sandbox-control-plane', port=6443): Max retries exceeded with url: "
                 "/api/v1/pods (Caused by SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] "
                 "certificate verify failed: self-signed certificate in certificate chain (_ssl.c:1006)')))")
REFUSED = ("HTTPSConnectionPool(host='sandbox-control-plane', port=6443): Max retries exceeded with url: "
           "/api/v1/pods (Caused by NewConnectionError(\"HTTPSConnection(host='sandbox-control-plane', "
           "port=6443): Failed to establish a new connection: [Errno 111] Connection refused\"))")


def ca(name: str) -> str:
    return f"-----BEGIN CERTIFICATE-----\nMII{name}\n-----END CERTIFICATE-----\n"


def write_kubeconfig(path, ca_pem: str) -> None:
    path.write_text(kc.dump(kc.make_kubeconfig(SERVER, ca_pem, CERT, KEY)))


def pod(uid: str, name: str) -> dict:
    return {"metadata": {"uid": uid, "namespace": "airflow", "name": name}, "status": {"phase": "Running"}}


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeCluster:
    """The API server behind SERVER: its CA (a recreated node has a new one), its pods, and what a
    watch sends. `answer_with` makes it answer every request with that HTTP status."""

    def __init__(self, ca_pem: str):
        self.ca = ca_pem
        self.pods: list[dict] = []
        self.watch_events: list = []   # dicts are sent; callables run when the watch reaches them
        self.answer_with: int | None = None
        self.up = True
        self.watch_ends = threading.Event()   # a watch blocks until this (the server's timeoutSeconds)


class FakeStream:
    def __init__(self, cluster: FakeCluster, status_code: int):
        self.cluster, self.status_code = cluster, status_code

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def iter_lines(self):
        for item in list(self.cluster.watch_events):
            if callable(item):
                item()
            else:
                yield json.dumps(item).encode()
        self.cluster.watch_ends.wait(0.01)


class FakeApi:
    """An API client made from one loaded kubeconfig, as ApiClient is."""

    def __init__(self, cluster: FakeCluster, kubeconfig: dict):
        self.cluster = cluster
        self.ca = base64.b64decode(kc.current(kubeconfig)[2]["certificate-authority-data"]).decode()
        self.closed = False

    def _answer(self) -> int:
        if not self.cluster.up:
            raise requests.exceptions.ConnectionError(REFUSED)
        if self.ca != self.cluster.ca:
            raise requests.exceptions.SSLError(VERIFY_FAILED)
        return self.cluster.answer_with or 200

    def get(self, path):
        status = self._answer()
        if status != 200:
            return status, {"kind": "Status", "code": status}
        return 200, {"items": list(self.cluster.pods), "metadata": {"resourceVersion": "7"}}

    def request(self, method, path, stream=False):
        return FakeStream(self.cluster, self._answer())

    def close(self):
        self.closed = True


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setattr(podwatch, "_CHECK_SECONDS", 0.0)  # look at the file after every watch event

    class Env:
        path = tmp_path / "kube" / "admin.yaml"
        clock = Clock(T0)
        cluster = FakeCluster(ca("second-node"))
        clients: list[FakeApi] = []

        def factory(self, kubeconfig):
            client = FakeApi(self.cluster, kubeconfig)
            self.clients.append(client)
            return client

        def watch(self, retry_seconds=0.0):
            kubeconfig = KubeconfigFile(self.path, client_factory=self.factory, clock=self.clock)
            return PodWatch(kubeconfig, WatchHealth("pod watch", ("k8s",), clock=self.clock),
                            retry_seconds=retry_seconds)

    Env.path.parent.mkdir()
    return Env()


# ── the kubeconfig rewritten under a running service ──────────────────────
def test_kubeconfig_rewritten_with_a_new_ca_is_reloaded_while_the_watch_runs(env):
    # The previous cluster's kubeconfig is on disk; the node was recreated with a new CA.
    write_kubeconfig(env.path, ca("first-node"))
    env.cluster.pods = [pod("uid-1", "transform-1")]
    watch = env.watch(retry_seconds=0.01)
    stop = threading.Event()
    thread = threading.Thread(target=watch.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_until(lambda: watch.health.state == "failing", timeout=10, interval=0.01, what="the TLS failure recorded")
        assert watch.health.failure == "the cluster's certificate did not verify (CERTIFICATE_VERIFY_FAILED)"
        assert watch.get("uid-1") is None

        env.clock.now = T0 + 39
        new = env.path.with_suffix(".new")               # `make up` writes the new cluster's kubeconfig,
        write_kubeconfig(new, ca("second-node"))         # here whole at once with a known mtime
        os.utime(new, (T0 + 38, T0 + 38))
        os.replace(new, env.path)

        wait_until(lambda: watch.get("uid-1"), timeout=10, interval=0.01, what="the pod seen with the new kubeconfig")
        wait_until(lambda: watch.health.state == "ok", timeout=10, interval=0.01, what="the watch working again")
    finally:
        stop.set()
        env.cluster.watch_ends.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert env.clients[0].ca == ca("first-node") and env.clients[0].closed
    assert env.clients[-1].ca == ca("second-node") and not env.clients[-1].closed
    assert watch.kubeconfig.loads == 2          # once per content, not once per retry
    [period] = watch.health.periods
    assert (period["since"], period["until"]) == (T0, T0 + 39)
    assert period["ended_by"] == "the kubeconfig written at 22:13:58 UTC was loaded at 22:13:59 UTC"
    assert watch.health.as_json()["kubeconfig"]["loaded_at"] == T0 + 39


def test_kubeconfig_changed_during_a_working_watch_ends_it(env):
    write_kubeconfig(env.path, ca("second-node"))
    env.cluster.watch_events = [
        {"type": "ADDED", "object": pod("uid-1", "a")},
        lambda: write_kubeconfig(env.path, ca("third-node")),   # the cluster recreated meanwhile
        {"type": "ADDED", "object": pod("uid-2", "b")},         # the file is looked at after this one
        {"type": "ADDED", "object": pod("uid-3", "c")},
    ]
    watch = env.watch()
    assert watch.watch_once(threading.Event()) is True
    assert watch.get("uid-1") is not None and watch.get("uid-2") is not None
    assert watch.get("uid-3") is None           # the watch ended at the change, before reading on
    assert watch.kubeconfig.changed() is True
    watch.watch_once(threading.Event())         # the next connection uses the new file
    assert env.clients[-1].ca == ca("third-node") and env.clients[0].closed


def test_kubeconfig_rewritten_with_the_same_content_keeps_the_connection(env):
    write_kubeconfig(env.path, ca("second-node"))
    watch = env.watch()
    assert watch.watch_once(threading.Event())
    text = env.path.read_text()
    env.path.write_text("")
    env.path.write_text(text)                   # every `make up` writes it again
    os.utime(env.path, (T0 + 60, T0 + 60))      # a new mtime: the content decides
    assert watch.kubeconfig.changed() is False
    assert watch.watch_once(threading.Event())
    assert watch.kubeconfig.loads == 1 and len(env.clients) == 1 and not env.clients[0].closed


def test_half_written_kubeconfig_is_a_failure_read_again_next_time(env):
    env.path.write_text("apiVersion: v1\nclusters:\n- name: sandbox\n  cluster: {server: https://sandbox-con")
    watch = env.watch()
    assert watch.watch_once(threading.Event()) is False
    assert watch.health.state == "failing"
    assert watch.health.failure.startswith(f"{env.path} is not a usable kubeconfig (")
    write_kubeconfig(env.path, ca("second-node"))
    assert watch.watch_once(threading.Event()) is True and watch.health.state == "ok"


# ── what is recorded ──────────────────────────────────────────────────────
def test_tls_failure_is_recorded_with_its_time_and_explains_the_runs_unmeasured_pods(env):
    env.clock.now = T0 - 300
    write_kubeconfig(env.path, ca("first-node"))
    watch = env.watch()
    env.clock.now = T0
    assert watch.watch_once(threading.Event()) is False
    env.clock.now = T0 + 2
    watch.watch_once(threading.Event())         # failing still: the same period

    health = watch.health.as_json()
    assert (health["state"], health["since"], health["last_success"]) == ("failing", T0, None)
    assert health["failure"] == "the cluster's certificate did not verify (CERTIFICATE_VERIFY_FAILED)"
    assert health["failure_detail"].startswith(f"kubeconfig {env.path} written ")
    assert "`make up` writes its new kubeconfig" in health["failure_detail"]
    assert health["kubeconfig"]["server"] == SERVER
    assert watch.health.problem() == ("pod watch failing since 22:13:20 UTC: "
                                      "the cluster's certificate did not verify (CERTIFICATE_VERIFY_FAILED)")

    dag_run = {"dag_id": "import_vcf", "dag_run_id": "manual__1", "state": "success",
               "start_date": "2023-11-14T22:14:00+00:00", "end_date": "2023-11-14T22:16:00+00:00"}
    tis = [{"task_id": "call", "map_index": i, "try_number": 1, "state": "success",
            "operator": "KubernetesPodOperator"} for i in range(32)]
    built = report.build(dag_run, tis, [], DEFAULT_PRICES, interval=0.25, sampler_up=True,
                         failures=watch.health.during(T0 + 40, T0 + 160))
    note = built["sampler"]["note"]
    assert built["sampler"]["unmeasured_tasks"] == 32
    assert note.startswith("32 pod tries of this run were not measured: the pod watch was failing during this run "
                           "(from 22:13:20 UTC on, and still now): the cluster's certificate did not verify "
                           "(CERTIFICATE_VERIFY_FAILED)")
    assert "the metrics service was down" not in note


def test_missing_kubeconfig_is_recorded_as_no_cluster_and_its_return_is_loaded(env):
    watch = env.watch()
    assert watch.watch_once(threading.Event()) is False
    assert watch.health.state == "off"
    assert watch.health.failure == f"no kubeconfig: no cluster is configured ({env.path} is absent)"
    assert watch.health.problem() == f"pod watch off: no kubeconfig: no cluster is configured ({env.path} is absent)"
    assert watch.health.as_json()["kubeconfig"]["present"] is False

    env.clock.now = T0 + 10
    write_kubeconfig(env.path, ca("second-node"))   # `make up` with a cluster
    assert watch.watch_once(threading.Event()) is True and watch.health.state == "ok"

    env.clock.now = T0 + 20
    env.path.unlink()                                # `make down`, or K8S_PROVIDER=none
    assert watch.kubeconfig.changed() is True
    assert watch.watch_once(threading.Event()) is False
    assert watch.health.state == "off" and env.clients[0].closed
    assert [(p["state"], p["since"], p["until"]) for p in watch.health.periods] == [
        ("off", T0, T0 + 10), ("off", T0 + 20, None)]
    [sentence] = [report.failure_sentence(p) for p in watch.health.during(T0 + 30, T0 + 40)]
    assert sentence.startswith("there was no pod watch during this run (from 22:13:40 UTC on, and still now): "
                               "no kubeconfig: no cluster is configured")


def test_run_waits_for_the_kubeconfig_to_appear(env):
    watch = env.watch(retry_seconds=0.01)
    stop = threading.Event()
    thread = threading.Thread(target=watch.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_until(lambda: watch.health.state == "off", timeout=10, interval=0.01, what="no kubeconfig recorded")
        env.cluster.pods = [pod("uid-1", "a")]
        write_kubeconfig(env.path, ca("second-node"))
        wait_until(lambda: watch.get("uid-1"), timeout=10, interval=0.01, what="the pod seen")
    finally:
        stop.set()
        env.cluster.watch_ends.set()
        thread.join(timeout=10)
    assert not thread.is_alive()


def test_credentials_refused_is_recorded(env):
    write_kubeconfig(env.path, ca("second-node"))
    env.cluster.answer_with = 401
    watch = env.watch()
    assert watch.watch_once(threading.Event()) is False
    assert watch.health.failure == "the API server refused the kubeconfig's credentials (HTTP 401 Unauthorized)"
    assert "`make up` writes its new kubeconfig" in watch.health.failure_detail


@pytest.mark.parametrize("error, sentence", [
    (requests.exceptions.SSLError(VERIFY_FAILED),
     "the cluster's certificate did not verify (CERTIFICATE_VERIFY_FAILED)"),
    (requests.exceptions.ConnectionError(REFUSED), f"the API server at {SERVER} is not reachable "
                                                   "([Errno 111] Connection refused)"),
    (requests.exceptions.ReadTimeout("read timed out"), f"the API server at {SERVER} stopped answering "
                                                        f"(nothing for {podwatch.READ_TIMEOUT} s)"),
    (ApiRefused(403, "listing pods"), "the kubeconfig's user may not be listing pods (HTTP 403 Forbidden)"),
    (ApiRefused(500, "watching pods"), "watching pods: HTTP 500"),
    (KeyError("resourceVersion"), "KeyError: 'resourceVersion'"),
])
def test_failures_are_described_as_the_user_acts_on_them(error, sentence):
    assert describe_failure(error, SERVER) == sentence
