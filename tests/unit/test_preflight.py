"""Host preflight pieces that can be checked without touching the machine."""
from __future__ import annotations

import re
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


def test_secrets_are_generated_into_env_once_per_checkout(tmp_path):
    import base64

    from sandbox.host.settings import LEGACY_FERNET_KEY, load_settings
    (tmp_path / ".env.example").write_text("AIRFLOW_PORT=8080\nAIRFLOW_FERNET_KEY=\nAIRFLOW_JWT_SECRET=\n")
    first = load_settings(tmp_path)
    assert len(base64.urlsafe_b64decode(first["AIRFLOW_FERNET_KEY"])) == 32  # a valid Fernet key
    assert len(first["AIRFLOW_JWT_SECRET"]) >= 32
    # The emulator's account root and Airflow's credentials token: AWS-shaped, per checkout.
    assert re.fullmatch(r"AKIA[A-Z2-7]{16}", first["SANDBOX_ROOT_ACCESS_KEY_ID"])
    assert first.root_keys == {"aws_access_key_id": first["SANDBOX_ROOT_ACCESS_KEY_ID"],
                               "aws_secret_access_key": first["SANDBOX_ROOT_SECRET_ACCESS_KEY"]}
    assert len(first["SANDBOX_ROOT_SECRET_ACCESS_KEY"]) >= 40 and len(first["SANDBOX_AIRFLOW_CREDENTIALS_TOKEN"]) >= 32
    assert load_settings(tmp_path).values == first.values  # kept, not made again
    assert (tmp_path / ".env").stat().st_mode & 0o077 == 0
    other = tmp_path / "other"
    other.mkdir()
    (other / ".env.example").write_text((tmp_path / ".env.example").read_text())
    assert load_settings(other)["AIRFLOW_FERNET_KEY"] != first["AIRFLOW_FERNET_KEY"]
    assert load_settings(other)["SANDBOX_ROOT_ACCESS_KEY_ID"] != first["SANDBOX_ROOT_ACCESS_KEY_ID"]
    # A checkout whose sandbox predates generated keys keeps the old key to decrypt with.
    (other / ".env").write_text("AIRFLOW_FERNET_KEY=\n")
    (other / ".build").mkdir()
    (other / ".build" / "stack.json").write_text("{}")
    assert load_settings(other)["AIRFLOW_FERNET_KEY"].endswith("," + LEGACY_FERNET_KEY)


def test_only_masquerade_rules_of_networks_the_engine_no_longer_has_are_stale():
    rules = ("-P POSTROUTING ACCEPT\n"
             "-A POSTROUTING -s 169.254.170.0/24 ! -o br-94366728d818 -j MASQUERADE\n"
             "-A POSTROUTING -s 169.254.170.0/24 ! -o br-9b307123e763 -j MASQUERADE\n"
             "-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE\n"
             "-A POSTROUTING -s 169.254.170.2/32 -d 169.254.170.2/32 -p tcp -m tcp --dport 4566 -j MASQUERADE\n")
    assert preflight.stale_nat_rules(rules, {"94366728d818"}) == [
        ["-t", "nat", "-D", "POSTROUTING", "-s", "169.254.170.0/24", "!", "-o", "br-9b307123e763", "-j", "MASQUERADE"]]
    assert preflight.stale_nat_rules(rules, {"94366728d818", "9b307123e763"}) == []
