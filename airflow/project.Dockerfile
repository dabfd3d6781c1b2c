# The Airflow image the project names (sandbox.yaml `airflow:`) with its requirements.txt on top, built
# from the context sandbox/host/project_requirements.py writes: requirements.txt there names the
# constraints of the flavour (apache: the image's own pins; mwaa: MWAA's, as MWAA applies them) and
# includes the project's file, and every constraint file they refer to is in the context too, so pip
# fetches packages and nothing else. A package that conflicts with a constraint fails the build, and
# pip's message names both versions. Nothing else in the project is in the context, so nothing else
# invalidates the layer.
ARG AIRFLOW_IMAGE=sandbox/airflow:apache-3.3.2
FROM ${AIRFLOW_IMAGE}
COPY . /opt/sandbox/project-requirements/
USER root
RUN PIP_CERT=/opt/sandbox/ca-bundle.crt pip install -r /opt/sandbox/project-requirements/requirements.txt \
 && pip check
USER airflow
