"""Progress lines for long operations: what is happening, and how long it took."""
from __future__ import annotations

import concurrent.futures
import contextlib
import sys
import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Timing:
    """One finished step: when it started (monotonic), how long it took, and whether it failed."""

    title: str
    started: float
    seconds: float
    ok: bool


_timings: list[Timing] = []
_lock = threading.Lock()  # steps run in threads too (the cluster's, beside the services')


_thread = threading.local()


@contextlib.contextmanager
def labelled(label: str):
    """Lines printed by this thread inside the block start with [label]: work running beside the
    main thread's (the cluster's build) stays readable where their lines interleave."""
    _thread.label = label
    try:
        yield
    finally:
        _thread.label = None


def _label() -> str:
    label = getattr(_thread, "label", None)
    return f"[{label}] " if label else ""


def _say(line: str, file=None) -> None:
    """One write per line: print() writes the text and its newline apart, and lines of threads
    running side by side (the cluster's beside the services') ran into each other."""
    file = file or sys.stdout
    file.write(line + "\n")
    file.flush()


def info(message: str) -> None:
    _say(f"    {_label()}{message}")


@contextlib.contextmanager
def step(title: str):
    title = _label() + title
    started = time.monotonic()
    _say(f"==> {title} ...")
    try:
        yield
    except BaseException:
        seconds = time.monotonic() - started
        _say(f"    failed after {seconds:.1f}s: {title}", sys.stderr)
        _record(Timing(title, started, seconds, ok=False))
        raise
    seconds = time.monotonic() - started
    _say(f"    {_label()}done in {seconds:.1f}s")
    _record(Timing(title, started, seconds, ok=True))


def _record(timing: Timing) -> None:
    with _lock:
        _timings.append(timing)


def timings_since(started: float) -> list[Timing]:
    """The steps that began at or after `started` (time.monotonic()), in the order they began."""
    with _lock:
        return sorted((t for t in _timings if t.started >= started), key=lambda t: t.started)


def breakdown(started: float, minimum: float = 1.0) -> list[str]:
    """Where the time since `started` went: each step of at least `minimum` seconds, with when it
    began, so steps that ran side by side show as overlapping."""
    lines = []
    for t in timings_since(started):
        if t.seconds >= minimum:
            lines.append(f"  {t.started - started:6.1f}s  {t.seconds:6.1f}s  {t.title}{'' if t.ok else '  (failed)'}")
    return lines


class Background:
    """One function run in a daemon thread beside the caller's work, its lines labelled. Daemon: a
    failure of the caller's own work is reported at once, not after a long build in here ends."""

    def __init__(self, label: str):
        self.label = label
        self.future: concurrent.futures.Future = concurrent.futures.Future()
        self.started = False

    def start(self, fn, *args) -> None:
        self.started = True

        def run():
            self.future.set_running_or_notify_cancel()
            try:
                with labelled(self.label):
                    self.future.set_result(fn(*args))
            except BaseException as exc:  # handed to result() in the caller's thread
                self.future.set_exception(exc)

        threading.Thread(target=run, name=self.label, daemon=True).start()

    def done(self) -> bool:
        return self.future.done()

    def result(self):
        return self.future.result()

    def result_as_step(self, what: str):
        """result(), shown as a step named `what` when it still has to be waited for."""
        if self.done():
            return self.result()
        with step(what):
            return self.result()
