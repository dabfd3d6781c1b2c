"""Airflow's LocalExecutor without a race that fails resumed deferrable tasks (Airflow 3.0 to 3.3.2),
and without a gigabyte of idle workers.

A deferrable task's first process exits when it defers, and the executor reports SUCCESS for that
try. When the trigger fires at once (an ECS task that has already stopped), the task is queued and
running again before the scheduler reads that report; the scheduler then takes it for a task killed
behind its back and fails it, and the resumed process gets HTTP 409 "TI was not in the running state"
when it finishes. Airflow 3.3 ignores such a report only while the task is SCHEDULED (apache/airflow
#66431; 3.0 not even then); QUEUED and RUNNING are apache/airflow #67287 and #72716, fixed upstream in
#68741 and #72767. Airflow 2 runs the plain LocalExecutor.

The report is recognised as upstream's fix does: SUCCESS for the same try of a task instance that is
queued or running again with `next_method` set, which only a resume from deferral sets. Such a
report is dropped before the scheduler sees it. Remove this module (and AIRFLOW__CORE__EXECUTOR's
reference to it in compose.yaml) once the Airflow the sandbox runs has that fix.

Idle workers: Airflow 3.3's LocalExecutor forks `parallelism` (32) workers when it starts (3.0 one per
task as they come) and keeps every one for good, each holding about 30 MB of its own: a gigabyte of
the scheduler's memory while nothing runs. Once no task has been queued or running for IDLE_SECONDS,
the executor ends all but KEEP_WORKERS with the pool's own shutdown message (None); the LocalExecutor
forks them again as tasks come, as it does after a worker dies.
"""
from __future__ import annotations

import logging
import time

from airflow.executors.local_executor import LocalExecutor
from airflow.models.taskinstancekey import TaskInstanceKey
from airflow.utils.state import TaskInstanceState

log = logging.getLogger(__name__)

RESUMED_STATES = {TaskInstanceState.SCHEDULED, TaskInstanceState.QUEUED, TaskInstanceState.RUNNING}
IDLE_SECONDS = 60
KEEP_WORKERS = 2


def surplus_workers(alive: int, busy: bool, idle_since: float | None, now: float) -> tuple[int, float | None]:
    """How many idle workers to end now, and since when the executor has been idle (None: busy)."""
    if busy:
        return 0, None
    if idle_since is None:
        return 0, now
    if now - idle_since < IDLE_SECONDS:
        return 0, idle_since
    return max(0, alive - KEEP_WORKERS), idle_since


def is_stale_defer_exit(event_state, event_try_number: int, ti_state, ti_try_number: int, ti_next_method) -> bool:
    """Whether an executor event is the deferring process's exit, read after the task resumed."""
    return (event_state == TaskInstanceState.SUCCESS and ti_state in RESUMED_STATES
            and ti_try_number == event_try_number and ti_next_method is not None)


class SandboxLocalExecutor(LocalExecutor):
    _idle_since: float | None = None

    def _check_workers(self):
        super()._check_workers()
        with self._unread_messages:
            unread = self._unread_messages.value
        busy = bool(self.running or self.queued_tasks or unread > 0 or not self.activity_queue.empty())
        alive = sum(1 for proc in self.workers.values() if proc.is_alive())
        surplus, self._idle_since = surplus_workers(alive, busy, self._idle_since, time.monotonic())
        if surplus:
            log.info("No task for %ds: ending %d of the %d idle LocalExecutor workers", IDLE_SECONDS, surplus, alive)
            for _ in range(surplus):
                self.activity_queue.put(None)
            self._idle_since = float("inf")  # not again until the executor has been busy

    def get_event_buffer(self, dag_ids=None):
        events = super().get_event_buffer(dag_ids)
        candidates = [key for key, (state, _) in events.items()
                      if isinstance(key, TaskInstanceKey) and state == TaskInstanceState.SUCCESS]
        if candidates:
            for key in self._stale_defer_exits(candidates):
                log.info("Ignoring the executor's success for %s: it is the exit of the process that deferred, "
                         "and the task has resumed since", key)
                events.pop(key, None)
        return events

    @staticmethod
    def _stale_defer_exits(keys: list[TaskInstanceKey]) -> list[TaskInstanceKey]:
        from sqlalchemy import select, tuple_

        from airflow.models.taskinstance import TaskInstance as TI
        from airflow.utils.session import create_session

        wanted = {key.primary: key for key in keys}
        with create_session() as session:
            rows = session.execute(
                select(TI.dag_id, TI.task_id, TI.run_id, TI.map_index, TI.state, TI.try_number, TI.next_method)
                .where(tuple_(TI.dag_id, TI.task_id, TI.run_id, TI.map_index).in_(list(wanted)))
            ).all()
        found = [(wanted[(r.dag_id, r.task_id, r.run_id, r.map_index)], r) for r in rows]
        return [key for key, r in found
                if is_stale_defer_exit(TaskInstanceState.SUCCESS, key.try_number, r.state, r.try_number, r.next_method)]
