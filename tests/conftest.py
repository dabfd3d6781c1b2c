"""The sandbox's own tests use the fixtures of its pytest plugin (sandbox/testing/plugin.py):
`sandbox`, `airflow_api`, `aws_session`, `kube_client`. The plugin reuses a running sandbox, or
brings it up (`make up`'s code path) and takes it down again at the end of the session, including
any ECS task containers, so no containers are left behind. SANDBOX_KEEP=1 leaves a sandbox the
tests started running, for debugging.
"""
from __future__ import annotations

import pytest

from sandbox.host.settings import load_settings
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


FAULT_FIGURES = pytest.StashKey[list]()


@pytest.fixture
def fault_figure(pytestconfig, request):
    """Records a figure of a fault test (what was measured, the value) for the session's summary."""
    figures = pytestconfig.stash.setdefault(FAULT_FIGURES, [])
    return lambda what, value: figures.append((request.node.name, what, value))


def pytest_terminal_summary(terminalreporter, config):
    figures = config.stash.get(FAULT_FIGURES, [])
    if figures:
        terminalreporter.section("Fault figures")
        for test, what, value in figures:
            terminalreporter.write_line(f"{what:<68} {value}")
