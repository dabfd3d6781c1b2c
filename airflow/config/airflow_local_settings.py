"""The sandbox's Airflow local settings; every Airflow process imports this from $AIRFLOW_HOME/config.

With SANDBOX_PRELOAD_DAG_IMPORTS=true (set on the scheduler only) the `airflow.*` modules the DAG
files import are imported here, before the LocalExecutor forks its workers. Each task process is
a fork of a worker, so it starts with the providers already loaded instead of importing them again:
about a CPU-second per task, most of what a 32-case fan-out costs Airflow on a 2-core machine. The
dag-processor does the same before parsing ([dag_processor] parsing_pre_import_modules).
"""
from __future__ import annotations

import importlib
import logging
import os
from pathlib import Path

__all__: list[str] = []  # Airflow copies public names from here into airflow.settings


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
