"""The sandbox's own tests use the fixtures of its pytest plugin (sandbox/testing/plugin.py):
`sandbox`, `airflow_api`, `aws_session`, `kube_client`. The plugin reuses a running sandbox, or
brings it up (`make up`'s code path) and takes it down again at the end of the session, including
any ECS task containers, so no containers are left behind. SANDBOX_KEEP=1 leaves a sandbox the
tests started running, for debugging.
"""
from __future__ import annotations

import shutil

import pytest

from sandbox.host.settings import ROOT, load_settings
from sandbox.testing.plugin import ensure_registered


def pytest_configure(config):
    # Installed in the venv (`pip install -e .`), the package's pytest11 entry point has loaded the
    # plugin already; registering it again would fail. Otherwise this is what loads it.
    ensure_registered(config)


@pytest.fixture(scope="session")
def settings():
    """The settings (.env) without the sandbox: for tests that run containers of their own."""
    return load_settings()


def pytest_collection_modifyitems(items):
    # Tests that take the sandbox down and bring it back run last, after the others have used it.
    items.sort(key=lambda item: item.get_closest_marker("replaces_sandbox") is not None)


@pytest.fixture
def team_project(tmp_path):
    """A copy of examples/genomics in a temporary folder: a team's project that tests may edit; at
    another path, it has a world of its own (sandbox/host/project.py `world`)."""
    team = tmp_path / "genomics-team"
    shutil.copytree(ROOT / "examples" / "genomics", team, ignore=shutil.ignore_patterns("__pycache__"))
    for path in [tmp_path, team, *team.rglob("*")]:  # tmp_path is private; Airflow's user must read the mount
        path.chmod(0o755 if path.is_dir() else 0o644)
    return team


FIGURES = pytest.StashKey[list]()  # (section, what, value) in the order they were recorded


def _figure_recorder(pytestconfig, section: str):
    figures = pytestconfig.stash.setdefault(FIGURES, [])
    return lambda what, value: figures.append((section, what, value))


@pytest.fixture
def fault_figure(pytestconfig):
    """Records a figure of a fault test (what was measured, the value) for the session's summary."""
    return _figure_recorder(pytestconfig, "Fault figures")


@pytest.fixture
def lifecycle_figure(pytestconfig):
    """Records a figure of the lifecycle tier (sequences, steps, times) for the session's summary."""
    return _figure_recorder(pytestconfig, "Lifecycle figures")


@pytest.fixture
def version_figure(pytestconfig):
    """Records a figure of switching Airflow versions (steps, times) for the session's summary."""
    return _figure_recorder(pytestconfig, "Airflow version figures")


def pytest_terminal_summary(terminalreporter, config):
    figures = config.stash.get(FIGURES, [])
    for section in dict.fromkeys(s for s, _, _ in figures):
        terminalreporter.section(section)
        for _, what, value in (f for f in figures if f[0] == section):
            terminalreporter.write_line(f"{what:<68} {value}")
