"""Host preflight pieces that can be checked without touching the machine."""
from __future__ import annotations

import subprocess

import pytest

from sandbox.host import preflight

pytestmark = pytest.mark.unit


def test_only_bridges_no_network_owns_are_removed(tmp_path, monkeypatch):
    for name in ("br-aaaaaaaaaaaa", "br-bbbbbbbbbbbb", "br-lan", "docker0"):
        (tmp_path / name).mkdir()
    calls = []
    owned = "aaaaaaaaaaaa" + "0" * 52 + "\n"  # a full network id whose bridge is br-aaaaaaaaaaaa
    monkeypatch.setattr(preflight, "docker", lambda *args: subprocess.CompletedProcess(args, 0, owned, ""))
    monkeypatch.setattr(preflight, "_run",
                        lambda cmd, **kw: calls.append(cmd) or subprocess.CompletedProcess(cmd, 0, "", ""))
    monkeypatch.setattr(preflight.shutil, "which", lambda name: f"/usr/bin/{name}")
    preflight.remove_stale_bridges(tmp_path)
    assert calls == [["ip", "link", "delete", "br-bbbbbbbbbbbb"]]


def test_nothing_is_removed_when_the_engine_does_not_answer(tmp_path, monkeypatch):
    (tmp_path / "br-bbbbbbbbbbbb").mkdir()
    calls = []
    monkeypatch.setattr(preflight, "docker", lambda *args: subprocess.CompletedProcess(args, 1, "", "x"))
    monkeypatch.setattr(preflight, "_run",
                        lambda cmd, **kw: calls.append(cmd) or subprocess.CompletedProcess(cmd, 1, "", "x"))
    preflight.remove_stale_bridges(tmp_path)
    assert calls == []
