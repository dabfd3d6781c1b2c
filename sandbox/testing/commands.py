"""`make <command>` as a user runs it, for tests that change the sandbox's settings: a new process
(`python -m sandbox <command>`) in the checkout, with settings in its environment (which win over
.env, for compose too)."""
from __future__ import annotations

import os
import subprocess
import sys

from sandbox.host.settings import ROOT


def sandbox_command(command: str, env: dict[str, str], timeout: float = 1800) -> subprocess.CompletedProcess:
    """Runs it and returns the finished process; fails with its output's tail when it fails."""
    res = subprocess.run([sys.executable, "-m", "sandbox", command], cwd=ROOT, env={**os.environ, **env},
                         capture_output=True, text=True, timeout=timeout)
    if res.returncode != 0:
        raise AssertionError(f"`make {command}` with {env} failed ({res.returncode}):\n"
                             f"{res.stdout[-4000:]}\n{res.stderr[-4000:]}")
    return res
