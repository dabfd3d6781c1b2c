"""Another project's tools against the real engine, beside the running sandbox: `make parse` names the
file and line of a broken DAG, and a requirement that conflicts with Airflow's constraints (or, on
MWAA's Airflow, with MWAA's) fails the Airflow image build with the package's name and both versions."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.core.airflow_versions import pins
from sandbox.host import images, stack
from sandbox.host.project import load_project
from sandbox.host.settings import ROOT, load_settings

pytestmark = pytest.mark.e2e

MINIMAL_CONFIG = 'aws:\n  region: us-east-1\n  account_id: "000000000000"\n'


def make_project(root: Path, dags: dict[str, str], requirements: str | None = None) -> Path:
    (root / "dags").mkdir(parents=True)
    for name, text in dags.items():
        (root / "dags" / name).write_text(text)
    (root / "sandbox.yaml").write_text(MINIMAL_CONFIG)
    if requirements is not None:
        (root / "requirements.txt").write_text(requirements)
    for path in [root, *root.rglob("*")]:  # tmp_path is private; Airflow's user must read the mount
        path.chmod(0o755 if path.is_dir() else 0o644)
    return root


def sandbox_cli(*args: str, project: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "SANDBOX_PROJECT": str(project)}
    return subprocess.run([sys.executable, "-m", "sandbox", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=900)


def test_parse_lists_each_broken_dag_file_with_its_line(sandbox, tmp_path):
    good = ("from airflow.sdk import dag\n\n@dag(schedule=None)\ndef fine():\n    pass\n\nfine()\n")
    broken = ("from airflow.sdk import dag\nimport json\nfrom include.missing import nothing  # no such module\n"
              "\n@dag(schedule=None)\ndef broken():\n    pass\n")
    project = make_project(tmp_path / "team", {"fine.py": good, "broken.py": broken})
    res = sandbox_cli("parse", project=project)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "1 DAG(s) from 1 file(s): fine" in res.stdout
    assert "ERROR dags/broken.py:3: ModuleNotFoundError: No module named 'include.missing'" in res.stdout


def test_a_requirement_against_airflows_constraints_fails_the_build_naming_it(sandbox, tmp_path, monkeypatch):
    project_dir = make_project(tmp_path / "conflict", {}, requirements="boto3==1.20.0\n")
    monkeypatch.setenv("SANDBOX_PROJECT", str(project_dir))
    project = load_project(load_settings())
    with pytest.raises(images.ImageError) as failed:
        stack.build_project_airflow(project)
    message = str(failed.value)
    locked = pins((ROOT / "airflow" / "versions" / "apache-3.3.2" / "requirements.lock").read_text())["boto3"]
    assert "boto3==1.20.0" in message and f"boto3=={locked}" in message, message


def test_a_requirement_against_mwaas_constraints_fails_the_build_naming_both_versions(sandbox, tmp_path, monkeypatch):
    # humanize is in MWAA 2.10.3's image at 4.11.0 and in the Airflow constraints MWAA applies.
    project_dir = make_project(tmp_path / "on-mwaa", {}, requirements="humanize==4.13.0\n")
    (project_dir / "sandbox.yaml").write_text(MINIMAL_CONFIG + 'airflow: {version: "2.10.3", flavour: mwaa}\n')
    monkeypatch.setenv("SANDBOX_PROJECT", str(project_dir))
    project = load_project(load_settings())
    version = project.airflow_version()
    images.build_declared(images.airflow_image(version), images.resolve_bases(load_settings()))
    with pytest.raises(images.ImageError) as failed:
        stack.build_project_airflow(project)
    message = str(failed.value)
    assert "humanize==4.13.0" in message and "humanize==4.11.0" in message, message
