# The sandbox's commands. Everything runs through the `sandbox` package in a local venv.
.DEFAULT_GOAL := help
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: help up down stop start status logs test test-unit test-e2e test-versions bench report export drift validate parse packages clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# The checkout is installed in the venv (editable) so its pytest plugin (pytest11 entry point)
# reaches a project's tests.
$(VENV)/.installed: requirements-dev.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || { echo "error: '$(PYTHON) -m venv' failed; install python3-venv" >&2; exit 1; }
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

up: $(VENV)/.installed  ## set up Docker if needed, build images, start and seed the sandbox
	$(PY) -m sandbox up

down: $(VENV)/.installed  ## remove the sandbox: containers, volumes (Airflow history, S3 data), ECS task containers
	$(PY) -m sandbox down

stop: $(VENV)/.installed  ## stop the sandbox and keep everything; `make up` (or `make start`) resumes it
	$(PY) -m sandbox stop

start: up  ## resume a stopped sandbox (the same as `make up`)

status: $(VENV)/.installed  ## services, health, URLs
	$(PY) -m sandbox status

logs:  ## follow the services' logs (SERVICE=name for one)
	docker compose logs --follow --tail 100 $(SERVICE)

validate: $(VENV)/.installed  ## check the project (SANDBOX_PROJECT): layout, sandbox.yaml, airflow_settings.yaml
	$(PY) -m sandbox validate

parse: $(VENV)/.installed  ## import the project's DAG files in its Airflow image; list import errors (file:line)
	$(PY) -m sandbox parse

packages: $(VENV)/.installed  ## the Airflow image's Python packages against its MWAA bill of materials (or lock); additions named
	$(PY) -m sandbox packages

test: $(VENV)/.installed  ## unit + e2e tests; with SANDBOX_PROJECT, that project's tests/ (brings the sandbox up, or reuses it)
	$(PY) -m sandbox test $(PYTEST_ARGS)

test-unit: $(VENV)/.installed  ## unit tests only (no Docker)
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

test-e2e: $(VENV)/.installed  ## end-to-end tests only
	$(PY) -m pytest tests/e2e $(PYTEST_ARGS)

# Each switched over the running sandbox, as a user switches; the sandbox's own Airflow is in `make test`.
VERSIONS ?= mwaa-2.10.3 mwaa-2.11.2 mwaa-3.0.6
test-versions: $(VENV)/.installed  ## examples/genomics' tests on each Airflow of VERSIONS (default: every MWAA version); leaves the sandbox up
	@set -e; for version in $(VERSIONS); do \
	  echo "=== examples/genomics on $$version"; \
	  SANDBOX_KEEP=1 AIRFLOW_VERSION=$$version SANDBOX_PROJECT=examples/genomics $(PY) -m sandbox test $(PYTEST_ARGS); \
	done

bench: $(VENV)/.installed  ## measure cold/warm make up, cluster and DAG times (BENCH_ARGS=--skip-cold); writes bench/results/
	$(PY) -m sandbox.host.bench $(BENCH_ARGS)

drift: $(VENV)/.installed  ## what the emulator holds against sandbox.yaml and its stacks: statements added by hand, revisions, undeclared objects
	$(PY) -m sandbox drift

export: $(VENV)/.installed  ## sandbox.yaml's AWS objects as a CloudFormation template: .build/export/<project>.cfn.yaml (cfn-lint clean)
	$(PY) -m sandbox export

report: $(VENV)/.installed  ## cost reports under reports/: newest run of every DAG, or DAG=… [RUN=…]; backends side by side
	$(PY) -m sandbox report $(if $(DAG),--dag '$(DAG)') $(if $(RUN),--run '$(RUN)')

clean: down  ## stop everything and remove the venv and build files
	rm -rf $(VENV) .build
