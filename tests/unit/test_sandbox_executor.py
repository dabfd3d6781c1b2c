"""The executor's test for a stale report from a deferring task's process (airflow/config/sandbox_executor.py),
checked without Airflow: the module's Airflow imports are stood in for."""
from __future__ import annotations

import enum
import importlib.util
import sys
import types

import pytest

from sandbox.host.settings import ROOT

pytestmark = pytest.mark.unit


class State(str, enum.Enum):  # Airflow's TaskInstanceState is a str enum too
    SUCCESS = "success"
    FAILED = "failed"
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    RUNNING = "running"
    DEFERRED = "deferred"


@pytest.fixture(scope="module")
def executor_module():
    stand_ins = {
        "airflow": types.ModuleType("airflow"),
        "airflow.executors": types.ModuleType("airflow.executors"),
        "airflow.executors.local_executor": types.SimpleNamespace(LocalExecutor=object),
        "airflow.models": types.ModuleType("airflow.models"),
        "airflow.models.taskinstancekey": types.SimpleNamespace(TaskInstanceKey=tuple),
        "airflow.utils": types.ModuleType("airflow.utils"),
        "airflow.utils.state": types.SimpleNamespace(TaskInstanceState=State),
    }
    saved = {name: sys.modules.get(name) for name in stand_ins}
    sys.modules.update(stand_ins)
    try:
        spec = importlib.util.spec_from_file_location("sandbox_executor", ROOT / "airflow/config/sandbox_executor.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        for name, old in saved.items():
            if old is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = old


@pytest.mark.parametrize("ti_state", ["scheduled", "queued", "running"])
def test_success_of_the_same_try_of_a_resumed_task_is_the_deferring_exit(executor_module, ti_state):
    assert executor_module.is_stale_defer_exit(State.SUCCESS, 1, State(ti_state), 1, "execute_complete")


@pytest.mark.parametrize("event, ti_state, ti_try, next_method", [
    (State.SUCCESS, State.RUNNING, 1, None),         # not resumed from deferral: a real mismatch
    (State.FAILED, State.RUNNING, 1, "execute_complete"),  # a failure is never dropped
    (State.SUCCESS, State.RUNNING, 2, "execute_complete"),  # another try
    (State.SUCCESS, State.DEFERRED, 1, "execute_complete"),  # still deferred: Airflow handles it
    (State.SUCCESS, State.SUCCESS, 1, None),         # the resumed process's own end
])
def test_other_reports_reach_the_scheduler(executor_module, event, ti_state, ti_try, next_method):
    assert not executor_module.is_stale_defer_exit(event, 1, ti_state, ti_try, next_method)


def test_idle_workers_are_ended_only_after_a_quiet_minute(executor_module):
    surplus = executor_module.surplus_workers
    keep, quiet = executor_module.KEEP_WORKERS, executor_module.IDLE_SECONDS
    assert surplus(32, True, 100.0, 1000.0) == (0, None)            # busy: the clock restarts
    assert surplus(32, False, None, 1000.0) == (0, 1000.0)          # idle from now
    assert surplus(32, False, 1000.0, 1000.0 + quiet - 1) == (0, 1000.0)
    assert surplus(32, False, 1000.0, 1000.0 + quiet) == (32 - keep, 1000.0)
    assert surplus(keep, False, 1000.0, 5000.0) == (0, 1000.0)      # nothing beyond the kept ones
    assert surplus(32, False, float("inf"), 9999.0) == (0, float("inf"))  # ended once per quiet spell
