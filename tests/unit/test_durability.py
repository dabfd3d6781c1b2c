"""Unit tests of the emulator's crash-durability patch (no MiniStack needed)."""

import importlib.util
import pathlib

import pytest

pytestmark = pytest.mark.unit

_PATH = pathlib.Path(__file__).resolve().parents[2] / "localstack" / "durability.py"
_spec = importlib.util.spec_from_file_location("durability", _PATH)
durability = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(durability)


def test_tasks_that_had_not_stopped_come_back_stopped_by_the_restart():
    tasks = {
        "a": {"lastStatus": "RUNNING", "desiredStatus": "RUNNING",
              "containers": [{"name": "c", "lastStatus": "RUNNING"}]},
        "b": {"lastStatus": "STOPPED", "stoppedReason": "Essential container in task exited",
              "containers": [{"name": "c", "lastStatus": "STOPPED", "exitCode": 0}]},
    }
    durability.stop_interrupted(tasks, "2026-11-25T00:00:00Z")
    a, b = tasks["a"], tasks["b"]
    assert (a["desiredStatus"], a["stopCode"], a["stoppedAt"]) == ("STOPPED", "TerminationNotice",
                                                                   "2026-11-25T00:00:00Z")
    assert a["stoppedReason"].startswith("The AWS emulator restarted while this task ran")
    # No exit code: a waiting EcsRunTaskOperator fails instead of taking it for a success.
    assert a["containers"] == [{"name": "c", "lastStatus": "STOPPED", "exitCode": None,
                                "reason": durability.RESTART_REASON}]
    assert b == {"lastStatus": "STOPPED", "stoppedReason": "Essential container in task exited",
                 "containers": [{"name": "c", "lastStatus": "STOPPED", "exitCode": 0}]}


def test_only_changed_state_is_written(monkeypatch):
    monkeypatch.setattr(durability, "_written", {})
    state = {"s3": {"buckets": ["a"]}, "sqs": {"queues": []}}
    written = []

    def save(name, data):
        written.append(name)
    services = {name: (lambda name=name: state[name]) for name in state}
    assert durability.save_changed(services, save, str) == ["s3", "sqs"]
    assert durability.save_changed(services, save, str) == []
    state["s3"] = {"buckets": ["a", "b"]}
    assert durability.save_changed(services, save, str) == ["s3"]


def test_one_failing_service_does_not_stop_the_others(monkeypatch):
    monkeypatch.setattr(durability, "_written", {})

    def broken():
        raise RuntimeError("boom")
    saved = durability.save_changed({"bad": broken, "good": lambda: {"x": 1}}, lambda n, d: None, str)
    assert saved == ["good"]


def test_sts_sessions_are_written_before_the_caller_gets_them(monkeypatch):
    events = []
    monkeypatch.setitem(durability._original, "sts.register_session", lambda key, s: events.append(("issued", key)))
    monkeypatch.setattr(durability, "_save", lambda names=None: events.append(("saved", names)))
    monkeypatch.setattr(durability, "_saver", None)
    durability._register_session("ASIA1", {})  # before the saved state is back: not written over it
    monkeypatch.setattr(durability, "_saver", object())
    durability._register_session("ASIA2", {})
    assert events == [("issued", "ASIA1"), ("issued", "ASIA2"), ("saved", {"sts"})]


def test_a_slow_service_is_written_at_most_every_so_often(monkeypatch):
    monkeypatch.setattr(durability, "_written", {})
    monkeypatch.setattr(durability, "_written_at", {})
    monkeypatch.setattr(durability, "SLOW_SAVE_SECONDS", {"big": 30})
    state = {"big": {"points": [1]}, "small": {"x": [1]}}
    services = {name: (lambda name=name: state[name]) for name in state}
    save = lambda name, data: None  # noqa: E731
    assert durability.save_changed(services, save, str, now=100) == ["big", "small"]
    state["big"]["points"].append(2)
    state["small"]["x"].append(2)
    assert durability.save_changed(services, save, str, now=110) == ["small"]
    assert durability.save_changed(services, save, str, now=131) == ["big"]


def test_cloudwatch_is_fingerprinted_by_its_sizes_not_serialised():
    class Scoped:
        def __init__(self, data):
            self._data = data

    class CloudWatch:
        _metrics = Scoped({("000000000000", "us-east-1", "k"): [{"Value": 1}]})
        _alarms = Scoped({})

    before = durability._cloudwatch_fingerprint(CloudWatch)
    CloudWatch._metrics._data[("000000000000", "us-east-1", "k")].append({"Value": 2})
    after = durability._cloudwatch_fingerprint(CloudWatch)
    CloudWatch._alarms._data["a"] = {"StateValue": "ALARM"}
    assert len({before, after, durability._cloudwatch_fingerprint(CloudWatch)}) == 3
