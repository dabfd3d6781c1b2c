"""DAG runs as test results: trigger a run, wait for it to finish, then read that one run's task
states, XComs and task logs. Built on sandbox.core.airflow_api.AirflowClient, the sandbox's one
REST client.

Mapped task instances are named `task_id[map_index]` in `task_states` (an unmapped task, or a
mapped task that was skipped before it expanded, keeps its plain `task_id`), so the dict stays flat
and prints the way the Airflow UI lists them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# How much of a failed task's log a failed assertion shows.
LOG_TAIL_LINES = 40


def index_of(ti: dict) -> int:
    """A task instance's map_index: -1 unless it is one instance of a mapped task."""
    index = ti.get("map_index")
    return -1 if index is None else index


def ti_name(ti: dict) -> str:
    """A task instance's name in DagRun.task_states: `task_id`, or `task_id[map_index]` when mapped."""
    return ti["task_id"] if index_of(ti) < 0 else f"{ti['task_id']}[{index_of(ti)}]"


def _order(ti: dict) -> tuple[str, int]:
    return ti["task_id"], index_of(ti)


@dataclass
class DagRun:
    """One finished DAG run. `client` is what reads it (an AirflowClient); `task_instances` are the
    run's task instances as the REST API returned them when the run finished (with start_date,
    end_date, try_number, map_index, …)."""

    client: Any
    dag_id: str
    run_id: str
    state: str
    seconds: float
    conf: dict = field(default_factory=dict)
    task_instances: list[dict] = field(default_factory=list)

    def __repr__(self) -> str:
        failed = [name for name, state in self.task_states.items() if state == "failed"]
        return (f"DagRun(dag_id={self.dag_id!r}, run_id={self.run_id!r}, state={self.state!r}, "
                f"seconds={self.seconds:.1f}" + (f", failed={failed}" if failed else "") + ")")

    # --- states ----------------------------------------------------------------------------
    @property
    def task_states(self) -> dict[str, str | None]:
        """{"task_id": state} for unmapped tasks, {"task_id[0]": state, …} for mapped ones."""
        return {ti_name(ti): ti.get("state") for ti in sorted(self.task_instances, key=_order)}

    def instances_of(self, task_id: str) -> list[dict]:
        """The task's instances in this run, by map_index (one for an unmapped task)."""
        found = sorted((ti for ti in self.task_instances if ti["task_id"] == task_id), key=_order)
        if not found:
            raise ValueError(f"{self.dag_id} run {self.run_id} has no task {task_id!r}; "
                             f"its tasks: {sorted({ti['task_id'] for ti in self.task_instances})}")
        return found

    def states_of(self, task_id: str) -> list[str | None]:
        """The states of the task's instances, by map_index: ["success"] for an unmapped task."""
        return [ti.get("state") for ti in self.instances_of(task_id)]

    def map_indexes(self, task_id: str) -> list[int]:
        """The map indexes of a mapped task's instances; [] for an unmapped (or unexpanded) task."""
        return [index_of(ti) for ti in self.instances_of(task_id) if index_of(ti) >= 0]

    # --- XComs and logs -------------------------------------------------------------------
    def xcom(self, task_id: str, key: str = "return_value", map_index: int | None = None) -> Any:
        """The task's XCom `key` in this run. For a mapped task without `map_index`: the list of every
        instance's value, by map_index (as `ti.xcom_pull(task_ids=...)` gives it in a DAG)."""
        indexes = self.map_indexes(task_id)
        if map_index is None and indexes:
            return [self.client.xcom(self.dag_id, self.run_id, task_id, key, map_index=i) for i in indexes]
        return self.client.xcom(self.dag_id, self.run_id, task_id, key,
                                map_index=-1 if map_index is None else map_index)

    def _instance(self, task_id: str, index: int | None) -> dict:
        wanted = -1 if index is None else index
        for ti in self.instances_of(task_id):
            if index_of(ti) == wanted:
                return ti
        indexes = self.map_indexes(task_id)
        if index is None and indexes:
            raise ValueError(f"{task_id} is mapped in {self.dag_id} run {self.run_id}: pass map_index= one of "
                             f"{indexes}")
        raise ValueError(f"{task_id} has no instance with map_index {wanted} in {self.dag_id} run "
                         f"{self.run_id}; its map indexes: {indexes or 'none (not mapped)'}")

    def log(self, task_id: str, map_index: int | None = None, try_number: int | None = None) -> str:
        """The task's log as text, by default of its last try. A mapped task needs `map_index`."""
        ti = self._instance(task_id, map_index)
        if try_number is None:
            try_number = max(1, ti.get("try_number") or 0)
        return self.client.task_log(self.dag_id, self.run_id, task_id, try_number=try_number,
                                    map_index=-1 if map_index is None else map_index)

    # --- diagnosis ------------------------------------------------------------------------
    def failure_report(self, lines: int = LOG_TAIL_LINES) -> str:
        """What went wrong, as a failed test should print it: the run, every task's state, and the
        last `lines` lines of each failed task instance's log."""
        report = [f"{self.dag_id} run {self.run_id} ended {self.state!r} after {self.seconds:.1f}s "
                  f"(conf {self.conf}); task states: {self.task_states}"]
        failed = [ti for ti in sorted(self.task_instances, key=_order) if ti.get("state") == "failed"]
        if not failed:
            report.append("no task instance failed (see the task states above)")
        for ti in failed:
            index = index_of(ti)
            try:
                text = self.log(ti["task_id"], map_index=None if index < 0 else index)
            except Exception as exc:  # the report must not hide the failure it reports
                report.append(f"--- {ti_name(ti)} failed; its log could not be read: {exc}")
                continue
            tail = text.splitlines()[-lines:]
            report.append(f"--- {ti_name(ti)} failed; the last {len(tail)} lines of its log "
                          f"(try {max(1, ti.get('try_number') or 0)}):")
            report += tail
        return "\n".join(report)

    def assert_success(self, log_lines: int = LOG_TAIL_LINES) -> DagRun:
        """Raises AssertionError with failure_report() unless the run succeeded; returns the run."""
        if self.state != "success":
            raise AssertionError(self.failure_report(log_lines))
        return self


class AirflowApi:
    """The `airflow_api` fixture: an AirflowClient (`.client`) whose run_dag returns a DagRun.
    Everything else is the client's (get_connection, get_variable, trigger_dag, wait_for_dags,
    import_errors, …), reached through this object."""

    def __init__(self, client: Any, timings: list[tuple[str, str, str, float]] | None = None):
        self.client = client
        # (dag_id, conf, state, seconds) of every run, for the session's "DAG runs" summary.
        self.timings = timings

    def run_dag(self, dag_id: str, conf: dict | None = None, timeout: float = 300) -> DagRun:
        """Triggers `dag_id` with `conf`, waits up to `timeout` seconds for the run to finish
        (AirflowApiError if it does not), and returns it whatever its state."""
        run_id, state, seconds = self.client.run_dag(dag_id, conf, timeout)
        if self.timings is not None:
            self.timings.append((dag_id, str(conf or {}), state, seconds))
        return DagRun(self.client, dag_id, run_id, state, seconds, dict(conf or {}),
                      self.client.task_instances(dag_id, run_id))

    def __getattr__(self, name: str) -> Any:
        if name == "client":  # not set yet (copy, pickle): no recursion
            raise AttributeError(name)
        return getattr(self.client, name)
