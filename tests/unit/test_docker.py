"""The docker CLI wrapper, against a fake `docker` executable on PATH."""
from __future__ import annotations

import os
import sys

import pytest

from sandbox.host.docker import DockerError, docker, docker_pipe, docker_stream

pytestmark = pytest.mark.unit

FAKE_DOCKER = """#!/bin/sh
case "$1" in
  fail) echo "Error response from daemon: No such image: $3" >&2; exit 3 ;;
  cat) cat ;;
  count) i=1; while [ $i -le $2 ]; do echo "line $i"; i=$((i + 1)); done; exit $3 ;;
  *) echo "ran: $*" ;;
esac
"""


@pytest.fixture(autouse=True)
def fake_docker(tmp_path, monkeypatch):
    path = tmp_path / "docker"
    path.write_text(FAKE_DOCKER)
    path.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")


def test_runs_docker_and_returns_its_output():
    res = docker("image", "inspect", "sandbox/task:1.0")
    assert res.returncode == 0 and res.stdout == "ran: image inspect sandbox/task:1.0\n"


def test_a_failure_is_returned_unless_checked():
    assert docker("fail", "inspect", "nope:1").returncode == 3
    with pytest.raises(DockerError) as exc:
        docker("fail", "inspect", "nope:1", check=True)
    assert str(exc.value) == ("docker fail inspect nope:1 failed (exit 3):\n"
                              "Error response from daemon: No such image: nope:1")
    assert exc.value.returncode == 3 and exc.value.command == ["docker", "fail", "inspect", "nope:1"]


def test_a_long_command_is_shortened_in_the_message():
    with pytest.raises(DockerError) as exc:
        docker("fail", "run", "x", *["--flag"] * 200, check=True)
    assert str(exc.value).startswith("docker fail run x --flag") and " ... failed (exit 3)" in str(exc.value)


def test_bytes_in_means_bytes_out():
    assert docker("cat", input=b"\x00\xff").stdout == b"\x00\xff"
    assert docker("cat", input="text").stdout == "text"


def test_stream_yields_lines_and_raises_with_the_last_ones():
    assert list(docker_stream("count", "3", "0")) == ["line 1\n", "line 2\n", "line 3\n"]
    seen = []
    with pytest.raises(DockerError) as exc:
        for line in docker_stream("count", "50", "1", keep=2):
            seen.append(line)
    assert len(seen) == 50
    assert exc.value.output == "line 49\nline 50" and "docker count 50 1 failed (exit 1)" in str(exc.value)


def test_pipe_feeds_the_source_into_docker():
    assert docker_pipe([sys.executable, "-c", "print('image bytes')"], "cat").stdout == "image bytes\n"


def test_pipe_names_the_side_that_failed():
    with pytest.raises(DockerError, match=r"^docker fail import x failed \(exit 3\)"):
        docker_pipe([sys.executable, "-c", "print('x')"], "fail", "import", "x")
    with pytest.raises(DockerError, match=r"-c raise SystemExit\(2\) failed \(exit 2\)$"):
        docker_pipe([sys.executable, "-c", "raise SystemExit(2)"], "cat")
