"""`make test` in a second checkout tests that checkout, never the sandbox another one left running.

The reproduction: with this checkout's sandbox up, a copy of the checkout whose poc_ecs_operator
prints BROKEN-IN-CLONE instead of counting runs `make test`'s code path (`python -m sandbox test`).
It must replace the running sandbox with its own and fail on its own DAG (the copy's output in the
failing run says so). This checkout's sandbox is brought back afterwards, so the rest of the session
still has it. (An unchanged copy's run passing was checked too until it cost CI two minutes: it is
the same code path as this checkout's own `make test`.)
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.host import stack
from sandbox.host.settings import ROOT

# Runs last (tests/conftest.py): it takes this checkout's sandbox down and brings it back.
pytestmark = [pytest.mark.e2e, pytest.mark.replaces_sandbox]

SELECTION = "returns_the_count"


def copy_checkout(dest: Path) -> Path:
    """This checkout's files as git sees them (committed or not, ignored files left out), plus .env."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip(f"not a git checkout: {listed.stderr.strip()}")
    for rel in filter(None, listed.stdout.split("\0")):
        if (ROOT / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest / rel)
    if (ROOT / ".env").exists():  # same COMPOSE_PROJECT_NAME and ports: the clash under test
        shutil.copy2(ROOT / ".env", dest / ".env")
    return dest


def make_test(checkout: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "SANDBOX_KEEP" and not k.startswith("PYTEST_")}
    res = subprocess.run([sys.executable, "-m", "sandbox", "test", "-k", SELECTION], cwd=checkout, env=env,
                         capture_output=True, text=True, timeout=1500)
    print(f"--- make test in {checkout} (exit {res.returncode}) ---\n{res.stdout[-4000:]}\n{res.stderr[-2000:]}")
    return res


@pytest.fixture
def restores_this_sandbox(sandbox):
    yield
    stack.up(sandbox.settings)  # the next test checks what it measures after this


def test_a_second_checkout_tests_its_own_dags(tmp_path, restores_this_sandbox):
    broken = copy_checkout(tmp_path / "broken")
    dag = broken / "dags" / "poc_ecs_operator.py"
    source = dag.read_text()
    counting = "seq -s, 0 {{ params.count_to }}"
    assert counting in source
    dag.write_text(source.replace(counting, "echo BROKEN-IN-CLONE"))

    res = make_test(broken)
    assert res.returncode != 0, "the broken copy's tests passed: they ran against another checkout's sandbox"
    assert f"started from {ROOT}" in res.stdout and "replacing it with this checkout's" in res.stdout
    assert "BROKEN-IN-CLONE" in res.stdout  # the failing XCom/log shows the copy's own DAG ran


CASES = 8


def test_after_another_checkout_took_the_sandbox_down_every_case_is_measured(sandbox, airflow_api):
    """Issue 17's sequence: the copy above replaced this sandbox with its own and took it down; the
    fixture brought this one up again (a new cluster node, a new CA). The cost reports must measure
    every case task on both backends, and the Backends comparison must have them all."""
    from sandbox.host.report import MetricsService
    metrics = MetricsService(sandbox.settings.metrics_url)
    runs = {backend: airflow_api.run_dag("import_vcf", {"backend": backend, "max_cases": CASES},
                                         timeout=600).assert_success() for backend in ("ecs", "k8s")}
    for backend, run in runs.items():
        task_id = f"{backend}_case"
        report = metrics.final_report(run.dag_id, run.run_id, {task_id})
        cases = [t for t in report["tasks"] if t["task_id"] == task_id]
        assert len(cases) == CASES and all(t["measured"] for t in cases), (
            [(t["map_index"], t.get("reason")) for t in cases if not t["measured"]], report["sampler"])
    comparison = metrics.get("compare/import_vcf", runs=",".join(runs[b].run_id for b in ("ecs", "k8s")),
                             format="json").json()
    for label in ("ecs", "k8s"):
        assert comparison["totals"][label]["cases"] == CASES and not comparison["totals"][label]["not_measured"]
