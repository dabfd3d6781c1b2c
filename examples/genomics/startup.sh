#!/usr/bin/env bash
# MWAA's startup script (the environment's "startup script file" on S3): run before Airflow starts in
# every Airflow container; what it exports reaches the DAGs' tasks. The sandbox runs it the same way.
export GENOMICS_STAGE=sandbox
