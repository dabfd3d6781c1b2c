"""The one way the sandbox waits: ask a real signal again and again until it holds, or time out.

    token = wait_until(read_token, timeout=60, what="secret ns/sa-token filled", error=SeedError)

The probe returns a truthy value when done (wait_until returns it), or says "not yet" by returning
something falsy or by raising NotYet("why"); the last such reason ends the timeout's message.
Any other exception from the probe propagates at once.
"""
from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")


class NotYet(Exception):
    """Raised by a probe: the awaited state does not hold yet, and why (kept for the timeout message)."""


def wait_until(probe: Callable[[], T], *, timeout: float, interval: float = 1.0, what: str,
               error: Callable[[str], BaseException] = TimeoutError) -> T:
    """Calls `probe` every `interval` seconds until it returns something truthy, and returns that.
    After `timeout` seconds raises `error(f"{what}: not within {timeout:.0f}s: <last reason>")`;
    `error` is an exception class or any callable that makes one from that message."""
    deadline = time.monotonic() + timeout
    reason = ""
    while True:
        try:
            value = probe()
        except NotYet as exc:
            value, reason = None, str(exc)
        if value:
            return value
        if time.monotonic() > deadline:
            raise error(f"{what}: not within {timeout:.0f}s" + (f": {reason}" if reason else ""))
        time.sleep(interval)
