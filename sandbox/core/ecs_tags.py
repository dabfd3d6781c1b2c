"""The tags that tie an ECS task to the Airflow task try that started it.

Written by the Airflow side (airflow/config/airflow_local_settings.py, which the Airflow image gets
this file next to) and read back by the metrics service (sandbox/metrics/identity.py): one
definition for both. Standard library only: the Airflow image has no `sandbox` package.
"""
ECS_TAG_PREFIX = "airflow:"
TASK_TRY_FIELDS = ("dag_id", "run_id", "task_id", "map_index", "try_number")
