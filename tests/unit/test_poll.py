"""wait_until: the one wait loop (no Docker, no network)."""
from __future__ import annotations

import pytest

from sandbox.core.poll import NotYet, wait_until

pytestmark = pytest.mark.unit


def answers(*values):
    """A probe giving `values` one per call (an exception instance is raised)."""
    pending = list(values)

    def probe():
        value = pending.pop(0)
        if isinstance(value, BaseException):
            raise value
        return value
    return probe


def never(reason: str):
    """A probe that is never done, for `reason`."""
    def probe():
        raise NotYet(reason)
    return probe


def test_returns_the_first_truthy_value():
    done = {"state": "done"}
    assert wait_until(answers(None, False, [], done), timeout=5, interval=0, what="x") is done


def test_not_yet_reasons_are_waited_through():
    assert wait_until(answers(NotYet("starting"), NotYet("still starting"), "up"), timeout=5, interval=0,
                      what="x") == "up"


def test_times_out_with_what_and_the_last_reason():
    with pytest.raises(TimeoutError) as exc:
        wait_until(never("HTTP 503"), timeout=0.01, interval=0.001, what="service healthy")
    assert str(exc.value) == "service healthy: not within 0s: HTTP 503"


def test_a_falsy_answer_leaves_no_reason():
    with pytest.raises(TimeoutError, match=r"^node ready: not within 0s$"):
        wait_until(lambda: None, timeout=0.01, interval=0.001, what="node ready")


def test_honours_the_error_type_or_factory():
    class SeedError(RuntimeError):
        pass

    with pytest.raises(SeedError, match="token filled: not within 0s"):
        wait_until(lambda: "", timeout=0, interval=0, what="token filled", error=SeedError)
    with pytest.raises(SeedError, match=r"^run finished: not within 0s: still running; tasks: \{\}$"):
        wait_until(never("still running"), timeout=0, interval=0, what="run finished",
                   error=lambda message: SeedError(f"{message}; tasks: {{}}"))


def test_other_exceptions_from_the_probe_propagate_at_once():
    probe = answers(KeyError("state"), "never reached")
    with pytest.raises(KeyError):
        wait_until(probe, timeout=60, interval=0, what="x")
    assert probe() == "never reached"
