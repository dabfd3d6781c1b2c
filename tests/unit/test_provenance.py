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


def test_a_context_with_an_allow_list_sends_only_what_it_allows(tmp_path):
    (tmp_path / "app").mkdir()
    assert provenance.context_paths(tmp_path) == [tmp_path]
    (tmp_path / ".dockerignore").write_text("*\n!app/\n!gone.txt\n")
    assert provenance.context_paths(tmp_path) == [tmp_path / "app", tmp_path / "gone.txt"]


def test_inputs_follow_the_project_and_every_file_its_images_are_built_from(tmp_path, monkeypatch):
    project = tmp_path / "project"
    (project / "images" / "qc" / "__pycache__").mkdir(parents=True)
    (project / "images" / "qc" / "Dockerfile").write_text("FROM python:3.12-slim-bookworm\n")
    (project / "images" / "qc" / "__pycache__" / "m.pyc").write_text("noise")
    (project / "sandbox.yaml").write_text("images:\n  - {tag: team/qc:1.0, context: images/qc}\n")
    (tmp_path / "images.yaml").write_text("images: []\n")
    (tmp_path / "compose.yaml").write_text("services: {}\n")
    monkeypatch.setattr(provenance, "SERVICE_IMAGES", tmp_path / "images.yaml")
    monkeypatch.setattr(provenance, "COMPOSE_FILE", tmp_path / "compose.yaml")
    settings = Settings({"SANDBOX_PROJECT": str(project)})
    before = provenance.inputs(settings)
    assert before["project"] == str(project) and before["requirements.txt"] == "missing"
    (project / "images" / "qc" / "__pycache__" / "m.pyc").write_text("other noise")
    assert provenance.inputs(settings) == before
    (project / "images" / "qc" / "Dockerfile").write_text("FROM debian:bookworm-slim\n")
    (project / "requirements.txt").write_text("humanize==4.13.0\n")
    after = provenance.inputs(settings)
    assert sorted(k for k in after if after[k] != before[k]) == [
        f"image input {project / 'images' / 'qc'}/", "requirements.txt"]
    other = Settings({"SANDBOX_PROJECT": str(project), "AIRFLOW_PORT": "9090"})
    changed = provenance.inputs(other)
    assert sorted(k for k in changed if changed[k] != after.get(k)) == ["setting AIRFLOW_PORT"]


def test_a_stacks_template_is_an_input(tmp_path, monkeypatch):
    project = tmp_path / "project"
    (project / "infra").mkdir(parents=True)
    (project / "sandbox.yaml").write_text("aws:\n  stacks:\n    - {name: s, template: infra/s.cfn.yaml}\n")
    (project / "infra" / "s.cfn.yaml").write_text("Resources: {}\n")
    (tmp_path / "images.yaml").write_text("images: []\n")
    (tmp_path / "compose.yaml").write_text("services: {}\n")
    monkeypatch.setattr(provenance, "SERVICE_IMAGES", tmp_path / "images.yaml")
    monkeypatch.setattr(provenance, "COMPOSE_FILE", tmp_path / "compose.yaml")
    settings = Settings({"SANDBOX_PROJECT": str(project)})
    before = provenance.inputs(settings)
    (project / "infra" / "s.cfn.yaml").write_text("Resources: {B: {Type: AWS::S3::Bucket}}\n")
    after = provenance.inputs(settings)
    assert sorted(k for k in after if after[k] != before[k]) == ["template infra/s.cfn.yaml"]


def test_a_compose_variable_set_only_in_the_environment_is_an_input(tmp_path, monkeypatch):
    (tmp_path / "compose.yaml").write_text("services: {m: {environment: {I: ${SANDBOX_METRICS_INTERVAL:-0.25}}}}\n")
    monkeypatch.setattr(provenance, "COMPOSE_FILE", tmp_path / "compose.yaml")
    monkeypatch.delenv("SANDBOX_METRICS_INTERVAL", raising=False)
    settings = Settings({"SANDBOX_PROJECT": ""})
    assert "setting SANDBOX_METRICS_INTERVAL" not in provenance.inputs(settings)
    monkeypatch.setenv("SANDBOX_METRICS_INTERVAL", "1")
    assert "setting SANDBOX_METRICS_INTERVAL" in provenance.inputs(settings)
