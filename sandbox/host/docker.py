"""The one way the host runs the docker CLI: plain commands, compose, builds and pipes into docker.

    docker("image", "inspect", tag).returncode            # check=False: the caller reads the result
    docker("network", "connect", net, node, check=True)   # raises DockerError naming the command
    for line in docker_stream("build", "-t", tag, "."): ...
    docker_pipe(["docker", "save", tag], "exec", "-i", node, "ctr", "images", "import", "-")
"""
from __future__ import annotations

import collections
import subprocess
from pathlib import Path
from typing import Iterator, Sequence

COMMAND_SHOWN = 300  # characters of the failed command in a DockerError
OUTPUT_TAIL = 3000  # characters of its stderr


class DockerError(RuntimeError):
    """A docker command (or what was piped into one) failed: the command, its exit status and the
    end of what it said are in the message and in `command`, `returncode`, `output`."""

    def __init__(self, command: Sequence[str], returncode: int, output: str = ""):
        self.command, self.returncode, self.output = list(command), returncode, output
        shown = " ".join(self.command)
        if len(shown) > COMMAND_SHOWN:
            shown = shown[:COMMAND_SHOWN] + " ..."
        super().__init__(f"{shown} failed (exit {returncode})" + (f":\n{output}" if output else ""))


def _tail(stderr: str | bytes | None) -> str:
    if isinstance(stderr, bytes):
        stderr = stderr.decode(errors="replace")
    return (stderr or "").strip()[-OUTPUT_TAIL:]


def docker(*args: str, check: bool = False, input: str | bytes | None = None, timeout: float | None = None,
           capture: bool = True, cwd: str | Path | None = None, env: dict[str, str] | None = None
           ) -> subprocess.CompletedProcess:
    """`docker *args`, text mode unless `input` is bytes. capture=False lets its output through to the
    terminal (progress of `compose up`); the error then has the exit status only."""
    text = not isinstance(input, bytes)
    res = subprocess.run(["docker", *args], capture_output=capture, text=text, input=input, timeout=timeout,
                         cwd=cwd, env=env)
    if check and res.returncode != 0:
        raise DockerError(["docker", *args], res.returncode, _tail(res.stderr))
    return res


def docker_stream(*args: str, cwd: str | Path | None = None, keep: int = 40) -> Iterator[str]:
    """Yields the lines of `docker *args` (stdout and stderr merged) as they come; if it fails,
    raises DockerError with its last `keep` lines."""
    tail: collections.deque[str] = collections.deque(maxlen=keep)
    with subprocess.Popen(["docker", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as proc:
        for line in proc.stdout:
            tail.append(line.rstrip())
            yield line
    if proc.returncode != 0:
        raise DockerError(["docker", *args], proc.returncode, "\n".join(tail))


def docker_pipe(source: Sequence[str], *args: str) -> subprocess.CompletedProcess:
    """`source | docker *args`, streamed (images do not pass through memory). Raises DockerError
    when either side fails, the docker side first: its stderr says more than a broken pipe."""
    feeder = subprocess.Popen(list(source), stdout=subprocess.PIPE)
    try:
        res = subprocess.run(["docker", *args], stdin=feeder.stdout, capture_output=True, text=True)
    finally:
        feeder.stdout.close()
        fed = feeder.wait()
    if res.returncode != 0:
        raise DockerError(["docker", *args], res.returncode, _tail(res.stderr))
    if fed != 0:
        raise DockerError(source, fed)
    return res
