"""Progress lines for long operations: what is happening, and how long it took."""
from __future__ import annotations

import contextlib
import sys
import time


def info(message: str) -> None:
    print(f"    {message}", flush=True)


@contextlib.contextmanager
def step(title: str):
    started = time.monotonic()
    print(f"==> {title} ...", flush=True)
    try:
        yield
    except BaseException:
        print(f"    failed after {time.monotonic() - started:.1f}s: {title}", file=sys.stderr, flush=True)
        raise
    print(f"    done in {time.monotonic() - started:.1f}s", flush=True)
