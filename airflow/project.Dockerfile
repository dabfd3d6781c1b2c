# The sandbox's Airflow with a project's requirements.txt on top, installed under Airflow's
# constraints (the lock the base image was built from): a package that conflicts with them fails
# the build, and pip's message names both versions. Built from a context holding only that file,
# so nothing else in the project invalidates the layer.
ARG AIRFLOW_IMAGE=sandbox/airflow:3.3.2
FROM ${AIRFLOW_IMAGE}
COPY requirements.txt /opt/sandbox/project-requirements.txt
USER root
RUN PIP_CERT=/opt/sandbox/ca-bundle.crt pip install -r /opt/sandbox/project-requirements.txt \
      --constraint /opt/sandbox/airflow-requirements.txt \
 && pip check
USER airflow
