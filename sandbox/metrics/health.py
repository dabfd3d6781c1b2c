"""What the metrics service could not see, and when: one record per thing its figures depend on.

A task try goes unmeasured when something the sampler needs was not working while it ran: the pod
watch (a pod's labels name its Airflow task), the emulator's ECS API (an ECS task's tags do), or the
host's cgroup tree (every figure). Each keeps a `WatchHealth`: its state now, for /healthz and
`make status`, and the periods it was failing or off, so that a report says why its tries were not
measured instead of guessing.

    health = WatchHealth("pod watch", ("k8s",))
    health.failed("the cluster's certificate did not verify (CERTIFICATE_VERIFY_FAILED)")
    health.problem()   # "pod watch failing since 05:46:12 UTC: the cluster's certificate did not verify …"
    health.succeeded("the kubeconfig rewritten at 05:46:50 UTC was loaded")
"""
from __future__ import annotations

import copy
import threading
import time
from typing import Callable

from sandbox.metrics.times import utc_clock

OK, FAILING, OFF, STARTING = "ok", "failing", "off", "starting"
# Enough for days of a flapping dependency; a report only asks about its own run's hours.
_KEPT_PERIODS = 200
_KEPT_REASONS = 5


class WatchHealth:
    """Thread-safe: the watching thread records, the HTTP server's threads read."""

    def __init__(self, what: str, backends: tuple[str, ...], *, clock: Callable[[], float] = time.time):
        self.what = what            # as a sentence names it: "pod watch"
        self.backends = backends    # whose task tries go unmeasured while it is not working
        self.clock = clock
        self.state = STARTING
        self.since = clock()        # in the current state since
        self.last_success: float | None = None
        self.failure: str | None = None
        self.failure_detail: str | None = None
        self.details: dict = {}     # what the watcher adds to /healthz (the pod watch: its kubeconfig)
        # Periods of not working: {"state", "since", "until" (None: still), "reasons", "detail", "ended_by"}
        self.periods: list[dict] = []
        self._lock = threading.Lock()

    def succeeded(self, how: str | None = None) -> None:
        """It works now. `how` says what ended a failure, for the reports of runs during it."""
        with self._lock:
            now = self.clock()
            self.last_success = now
            if self.state == OK:
                return
            self._end_period(now, how)
            self.state, self.since, self.failure, self.failure_detail = OK, now, None, None

    def failed(self, reason: str, detail: str | None = None) -> bool:
        """It does not work, for `reason` (short: `make status` shows it), with `detail` (what the
        user can check or do). True when this is news (another state or reason): log it once."""
        return self._not_working(FAILING, reason, detail)

    def off(self, reason: str) -> bool:
        """It is not meant to work now (no cluster is configured): not a failure, but nothing is seen."""
        return self._not_working(OFF, reason, None)

    def _not_working(self, state: str, reason: str, detail: str | None) -> bool:
        with self._lock:
            now = self.clock()
            news = (state, reason) != (self.state, self.failure)
            if state == self.state:  # still not working, maybe for another reason: the same period
                period = self.periods[-1]
                if reason not in period["reasons"] and len(period["reasons"]) < _KEPT_REASONS:
                    period["reasons"].append(reason)
                period["detail"] = detail
            else:
                self._end_period(now, None)
                self.periods.append({"state": state, "since": now, "until": None, "reasons": [reason],
                                     "detail": detail, "ended_by": None})
                del self.periods[:-_KEPT_PERIODS]
                self.state, self.since = state, now
            self.failure, self.failure_detail = reason, detail
            return news

    def _end_period(self, now: float, ended_by: str | None) -> None:
        if self.periods and self.periods[-1]["until"] is None:
            self.periods[-1].update(until=now, ended_by=ended_by)

    def set_detail(self, name: str, value) -> None:
        """Adds `name` to this watch's /healthz record (the pod watch: which kubeconfig it loaded when)."""
        with self._lock:
            self.details[name] = value

    def problem(self) -> str | None:
        """One line for `make status`, or None while it works (or has not tried yet)."""
        with self._lock:
            if self.state == FAILING:
                return f"{self.what} failing since {utc_clock(self.since)}: {self.failure}"
            if self.state == OFF:
                return f"{self.what} off: {self.failure}"
            return None

    def during(self, start: float, end: float) -> list[dict]:
        """The periods of not working that overlap [start, end], each with `what` and `backends`."""
        with self._lock:
            return [{**copy.deepcopy(p), "what": self.what, "backends": list(self.backends)} for p in self.periods
                    if p["since"] <= end and (p["until"] is None or p["until"] >= start)]

    def as_json(self) -> dict:
        with self._lock:
            return {"what": self.what, "state": self.state, "since": self.since, "last_success": self.last_success,
                    "failure": self.failure, "failure_detail": self.failure_detail, **copy.deepcopy(self.details),
                    "recent_failures": copy.deepcopy(self.periods[-5:])}


def health_json(watches: dict[str, WatchHealth]) -> dict:
    """The part of /healthz that says what the service cannot see: each watch's record, and the
    one-line problems `make status` prints after the service's state. The service stays healthy
    (serving) while a watch fails: compose's healthcheck means "up", these say "up but blind to …"."""
    return {"watches": {name: watch.as_json() for name, watch in watches.items()},
            "problems": [p for p in (watch.problem() for watch in watches.values()) if p]}
