"""The sandbox's Airflow local settings; every Airflow process imports this from $AIRFLOW_HOME/config.

With SANDBOX_PRELOAD_DAG_IMPORTS=true (set on the scheduler only) the `airflow.*` modules the DAG
files import are imported here, before the LocalExecutor forks its workers. Each task process is
a fork of a worker, so it starts with the providers already loaded instead of importing them again:
about a CPU-second per task, most of what a 32-case fan-out costs Airflow on a 2-core machine. The
dag-processor does the same before parsing ([dag_processor] parsing_pre_import_modules).

`task_policy` makes every EcsRunTaskOperator tag the ECS task it starts with the Airflow task try it
belongs to (as KubernetesPodOperator labels its pods), so the metrics service can tie what the task
used to the DAG run, task, map index and try (sandbox/metrics/sampler.py).
"""
from __future__ import annotations

import functools
import importlib
import logging
import os
from pathlib import Path

__all__ = ["task_policy"]  # Airflow copies public names from here into airflow.settings

try:  # in the image, copied next to this file
    from ecs_tags import ECS_TAG_PREFIX, TASK_TRY_FIELDS
except ImportError:  # the checkout (unit tests)
    from sandbox.core.ecs_tags import ECS_TAG_PREFIX, TASK_TRY_FIELDS


def _tag_with_task_try(execute):
    # Named `execute` and passing keyword arguments on: Airflow 2 hands an `execute` its
    # "called by the task runner" token as one, and warns (or fails) without it.
    @functools.wraps(execute)
    def execute_tagged(self, context, **kwargs):
        ti = context["ti"]
        mine = {f"{ECS_TAG_PREFIX}{key}": str(getattr(ti, key))
                for key in TASK_TRY_FIELDS}
        if self.tags is None or isinstance(self.tags, dict):
            self.tags = {**mine, **(self.tags or {})}
        return execute(self, context, **kwargs)

    execute_tagged.sandbox_tags = True
    return execute_tagged


def task_policy(task) -> None:
    """Every EcsRunTaskOperator (mapped or not) tags the ECS task it starts with its task try.

    Tags are set in `execute`, from the running task instance, rather than as templates: a DAG with
    render_template_as_native_obj would turn "-1" into an int, which RunTask refuses.
    """
    operator_class = getattr(task, "operator_class", type(task))
    for cls in getattr(operator_class, "__mro__", ()):
        if cls.__name__ == "EcsRunTaskOperator":
            if not getattr(cls.execute, "sandbox_tags", False):
                cls.execute = _tag_with_task_try(cls.execute)
            return


def _preload_dag_imports() -> None:
    from airflow.configuration import conf
    from airflow.utils.file import iter_airflow_imports

    modules = sorted({module for path in Path(conf.get("core", "dags_folder")).rglob("*.py")
                      for module in iter_airflow_imports(str(path))})
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as error:  # a broken DAG file is reported by the dag-processor, not here
            logging.getLogger(__name__).warning("Not preloading %s: %s", module, error)


if os.environ.get("SANDBOX_PRELOAD_DAG_IMPORTS", "").lower() == "true":
    _preload_dag_imports()
