"""Which running sandbox a checkout may reuse (provenance.judge), and what its inputs digest covers."""
from __future__ import annotations

import pytest

from sandbox.host import provenance
from sandbox.host.settings import Settings

pytestmark = pytest.mark.unit

INPUTS = {"compose.yaml": "a1", "sandbox.yaml": "b2", "image input airflow/": "c3"}
OURS = {"containers": {"postgres": "id-pg", "localstack": "id-ls"}, "inputs": INPUTS}


def running(**ids):
    return {svc: {"ID": cid, "working_dir": "/elsewhere/checkout"} for svc, cid in ids.items()}


def test_nothing_running_is_started():
    assert provenance.judge({}, False, OURS, INPUTS).action == "start"


def test_our_containers_with_the_same_inputs_are_reused():
    verdict = provenance.judge(running(postgres="id-pg", localstack="id-ls"), True, OURS, INPUTS)
    assert verdict.action == "reuse"


def test_a_fresh_clone_never_reuses_what_it_did_not_start():
    verdict = provenance.judge(running(postgres="id-pg", localstack="id-ls"), True, {}, INPUTS)
    assert verdict.action == "replace"
    assert "/elsewhere/checkout" in verdict.reason and "no record" in verdict.reason


def test_containers_of_another_checkout_are_replaced_and_named():
    verdict = provenance.judge(running(postgres="id-pg", localstack="other"), True, OURS, INPUTS)
    assert verdict.action == "replace"
    assert "localstack" in verdict.reason


def test_changed_inputs_update_our_sandbox_and_say_what_changed():
    changed = {**INPUTS, "sandbox.yaml": "zz", "image input airflow/": "yy"}
    verdict = provenance.judge(running(postgres="id-pg", localstack="id-ls"), True, OURS, changed)
    assert verdict.action == "update"
    assert "sandbox.yaml" in verdict.reason and "image input airflow/" in verdict.reason
    assert "compose.yaml" not in verdict.reason


def test_our_unhealthy_sandbox_is_updated_not_reused():
    assert provenance.judge(running(postgres="id-pg", localstack="id-ls"), False, OURS, INPUTS).action == "update"


def test_inputs_follow_every_file_the_images_are_built_from(tmp_path, monkeypatch):
    root = tmp_path
    (root / "airflow").mkdir()
    (root / "airflow" / "Dockerfile").write_text("FROM x\n")
    (root / "airflow" / "__pycache__").mkdir()
    (root / "airflow" / "__pycache__" / "m.pyc").write_text("noise")
    (root / ".dockerignore").write_text("*\n!airflow/\n!gone/\n")
    (root / "compose.yaml").write_text("services: {}\n")
    (root / "sandbox.yaml").write_text("aws: {}\n")
    for name, value in (("ROOT", root), ("COMPOSE_FILE", root / "compose.yaml"),
                        ("CONFIG_FILE", root / "sandbox.yaml"), ("DOCKERIGNORE", root / ".dockerignore")):
        monkeypatch.setattr(provenance, name, value)
    settings = Settings({"AIRFLOW_PORT": "8080"})
    before = provenance.inputs(settings)
    assert before["image input gone"] == "missing"
    (root / "airflow" / "__pycache__" / "m.pyc").write_text("other noise")
    assert provenance.inputs(settings) == before
    (root / "airflow" / "Dockerfile").write_text("FROM y\n")
    after = provenance.inputs(settings)
    assert [k for k in after if after[k] != before[k]] == ["image input airflow/"]
    assert provenance.inputs(Settings({"AIRFLOW_PORT": "9090"}))["settings (.env)"] != before["settings (.env)"]
