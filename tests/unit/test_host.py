"""Host preflight pieces that can be checked without touching the machine."""
from __future__ import annotations

import subprocess

import pytest

from sandbox import host

pytestmark = pytest.mark.unit


def test_only_bridges_no_network_owns_are_removed(tmp_path, monkeypatch):
    for name in ("br-aaaaaaaaaaaa", "br-bbbbbbbbbbbb", "br-lan", "docker0"):
        (tmp_path / name).mkdir()
    calls = []

    def fake_run(cmd, **kw):
        calls.append(cmd)
        owned = "aaaaaaaaaaaa" + "0" * 52 + "\n"  # a full network id whose bridge is br-aaaaaaaaaaaa
        return subprocess.CompletedProcess(cmd, 0, owned if cmd[:2] == ["docker", "network"] else "", "")

    monkeypatch.setattr(host, "_run", fake_run)
    monkeypatch.setattr(host.shutil, "which", lambda name: f"/usr/bin/{name}")
    host.remove_stale_bridges(tmp_path)
    assert [c for c in calls if c[0] == "ip"] == [["ip", "link", "delete", "br-bbbbbbbbbbbb"]]


def test_nothing_is_removed_when_the_engine_does_not_answer(tmp_path, monkeypatch):
    (tmp_path / "br-bbbbbbbbbbbb").mkdir()
    calls = []
    monkeypatch.setattr(host, "_run", lambda cmd, **kw: calls.append(cmd) or subprocess.CompletedProcess(cmd, 1, "", "x"))
    host.remove_stale_bridges(tmp_path)
    assert all(c[0] != "ip" for c in calls)
