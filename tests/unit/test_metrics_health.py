"""health.py: a watch's record of when it did not work (for /healthz and the reports), and how
`make status` (stack.summary) shows a metrics service that is up but failing. No Docker, no network."""
from __future__ import annotations

import pytest
import requests

from sandbox.host import stack
from sandbox.host.settings import Settings
from sandbox.metrics.health import WatchHealth, health_json

pytestmark = pytest.mark.unit

T0 = 1_700_000_000.0            # 2023-11-14T22:13:20Z
TLS = "the cluster's certificate did not verify (CERTIFICATE_VERIFY_FAILED)"


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock(T0)


def test_one_period_per_stretch_of_failing_with_each_reason_once(clock):
    health = WatchHealth("pod watch", ("k8s",), clock=clock)
    assert health.failed(TLS) is True                   # news: log it
    clock.now = T0 + 2
    assert health.failed(TLS) is False                  # the same failure again: not news
    clock.now = T0 + 4
    assert health.failed("the API server is not reachable ([Errno 111] Connection refused)") is True
    clock.now = T0 + 39
    health.succeeded("the kubeconfig written at 22:13:58 UTC was loaded at 22:13:59 UTC")
    assert health.periods == [{"state": "failing", "since": T0, "until": T0 + 39,
                               "reasons": [TLS, "the API server is not reachable ([Errno 111] Connection refused)"],
                               "detail": None,
                               "ended_by": "the kubeconfig written at 22:13:58 UTC was loaded at 22:13:59 UTC"}]
    assert (health.state, health.since, health.last_success, health.failure) == ("ok", T0 + 39, T0 + 39, None)
    assert health.problem() is None


def test_during_gives_the_periods_that_overlap_a_run(clock):
    health = WatchHealth("pod watch", ("k8s",), clock=clock)
    health.off("no kubeconfig: no cluster is configured (/kube/admin.yaml is absent)")
    clock.now = T0 + 10
    health.succeeded()
    clock.now = T0 + 100
    health.failed(TLS)
    assert health.during(T0 + 20, T0 + 90) == []                        # a run between the two
    assert [p["state"] for p in health.during(T0 + 5, T0 + 50)] == ["off"]
    [still] = health.during(T0 + 200, T0 + 300)                          # failing since, not ended
    assert (still["what"], still["backends"], still["until"]) == ("pod watch", ["k8s"], None)


def test_health_json_lists_problems_and_keeps_each_watchs_record(clock):
    pods = WatchHealth("pod watch", ("k8s",), clock=clock)
    ecs = WatchHealth("ECS task lookup", ("ecs",), clock=clock)
    pods.failed(TLS, "kubeconfig /kube/admin.yaml written 22:00:00 UTC, loaded 22:00:01 UTC")
    pods.set_detail("kubeconfig", {"path": "/kube/admin.yaml", "loaded_at": T0 - 1})
    ecs.succeeded()
    body = health_json({"pods": pods, "ecs_lookup": ecs})
    assert body["problems"] == [f"pod watch failing since 22:13:20 UTC: {TLS}"]
    assert body["watches"]["pods"]["state"] == "failing"
    assert body["watches"]["pods"]["failure"] == TLS
    assert body["watches"]["pods"]["failure_detail"].startswith("kubeconfig /kube/admin.yaml written")
    assert body["watches"]["pods"]["kubeconfig"] == {"path": "/kube/admin.yaml", "loaded_at": T0 - 1}
    assert body["watches"]["pods"]["recent_failures"][0]["since"] == T0
    assert body["watches"]["ecs_lookup"]["state"] == "ok" and body["watches"]["ecs_lookup"]["last_success"] == T0


# ── `make status` ─────────────────────────────────────────────────────────
class Answer:
    def __init__(self, body):
        self.body = body

    def json(self):
        return self.body


@pytest.fixture
def status(monkeypatch):
    monkeypatch.setattr(stack, "services", lambda: [
        {"Service": "metrics", "State": "running", "Health": "healthy"},
        {"Service": "postgres", "State": "running", "Health": "healthy"}])
    monkeypatch.setattr(stack, "recorded_cluster", lambda: {})
    asked = []

    def answer_with(response):
        def get(url, timeout):
            asked.append((url, timeout))
            if isinstance(response, Exception):
                raise response
            return response
        monkeypatch.setattr(requests, "get", get)
        lines = stack.summary(Settings({"METRICS_PORT": "18125"})).splitlines()
        return [line for line in lines if line.strip().startswith(("metrics", "postgres"))], asked
    return answer_with


def test_status_shows_a_metrics_service_that_is_up_but_failing(status):
    problem = f"pod watch failing since 05:46:12 UTC: {TLS}"
    lines, asked = status(Answer({"rounds": 3, "problems": [problem]}))
    assert lines == [f"  metrics                 running healthy — {problem}",
                     "  postgres                running healthy"]
    assert asked == [("http://127.0.0.1:18125/healthz", 2)]


@pytest.mark.parametrize("response", [requests.ConnectionError("refused"), Answer({"rounds": 3, "problems": []}),
                                      Answer(["not", "an", "object"])])
def test_status_adds_nothing_when_all_is_well_or_the_service_does_not_answer(status, response):
    lines, _ = status(response)
    assert lines == ["  metrics                 running healthy", "  postgres                running healthy"]
