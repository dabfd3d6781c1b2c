"""`python -m sandbox COMMAND`: what the Makefile targets run."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys

from sandbox.core.airflow_api import AirflowApiError
from sandbox.core.ecs_rules import HOST_ACCESS_SETTING
from sandbox.host import airflow_packages, drift, export, images, preflight, report, stack
from sandbox.host.cluster import ClusterError
from sandbox.host.docker import DockerError
from sandbox.host.project import ProjectError, load_project
from sandbox.host.settings import ROOT, SettingsError, load_settings
from sandbox.seeding.config import ConfigError


def run_tests(settings, pytest_args: list[str]) -> int:
    """The sandbox's own project: unit tests first (no Docker), then the e2e suite. Another project
    (SANDBOX_PROJECT): its DAG files parsed, then its tests/. Either runs against the running sandbox
    if it is this checkout's and current, or one brought up here and taken down afterwards
    (stack.running); the tests get the sandbox's pytest plugin (sandbox.testing.plugin)."""
    pytest = [sys.executable, "-m", "pytest"]
    project = load_project(settings)
    if not project.is_default:
        if project.tests is None:
            raise ProjectError(f"{project.root / 'tests'}: missing; `make test` runs a project's tests/ "
                               "(see examples/genomics/tests for tests using the sandbox's fixtures)")
        with stack.running(settings):
            parsed = stack.parse_dags(settings)
            if parsed != 0:
                return parsed
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(project.root),
                                                                             os.environ.get("PYTHONPATH")]))}
            return subprocess.run([*pytest, str(project.tests), *pytest_args], cwd=project.root, env=env).returncode
    unit = subprocess.run([*pytest, "tests/unit", *pytest_args], cwd=ROOT)
    if unit.returncode not in (0, 5):  # 5: the selection matched no unit test
        return unit.returncode
    with stack.running(settings):
        # The slowest e2e tests listed: what CI's run time goes to (pytest_args can override it).
        e2e = subprocess.run([*pytest, "tests/e2e", "--durations=30", "--durations-min=20", *pytest_args], cwd=ROOT)
    if e2e.returncode == 5 and unit.returncode == 0:
        return 0
    return e2e.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="set up the host, build images, start and seed the sandbox")
    sub.add_parser("stop", help="stop the sandbox, keeping everything; `up` resumes it")
    sub.add_parser("down", help="stop the sandbox and remove its containers and volumes")
    sub.add_parser("status", help="show the services and their health")
    sub.add_parser("build", help="build the images only")
    sub.add_parser("host", help="install/start Docker and Compose v2 where missing")
    sub.add_parser("validate", help="check the project: its layout, sandbox.yaml and airflow_settings.yaml")
    sub.add_parser("parse", help="import the project's DAG files in its Airflow image and list import errors")
    rep = sub.add_parser("report", help="write DAG runs' cost reports (JSON and HTML) under reports/")
    rep.add_argument("--dag", help="one DAG (default: every DAG's newest finished run)")
    rep.add_argument("--run", help="one run of --dag (default: its newest finished run)")
    sub.add_parser("drift", help="what the emulator holds against sandbox.yaml and its stacks (exit 1 on drift)")
    sub.add_parser("export", help="write sandbox.yaml's AWS objects as a CloudFormation template (cfn-lint clean)")
    sub.add_parser("packages", help="the Python packages in the project's Airflow image, against MWAA's bill of materials")
    sub.add_parser("test", help="unit tests, then the e2e tests against the sandbox (extra args go to pytest)")
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "test":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    settings = load_settings()
    # sandbox.yaml's validation reads this (sandbox/seeding runs in containers too, without .env).
    os.environ[HOST_ACCESS_SETTING] = settings.get(HOST_ACCESS_SETTING, "false")
    try:
        if args.command == "validate":
            project = load_project(settings)
            stack.seed_config(project)
            print(f"{project.name}: valid; it runs {project.airflow_version()}")
            for notice in project.notices():
                print(f"  note: {notice}")
        elif args.command == "parse":
            preflight.preflight()
            project = load_project(settings)
            stack.build_images(settings, project)
            return stack.parse_dags(settings)
        elif args.command == "host":
            preflight.preflight()
        elif args.command == "build":
            preflight.preflight()
            project = load_project(settings)
            stack.build_images(settings, project)
        elif args.command == "packages":
            preflight.preflight()
            project = load_project(settings)
            stack.build_images(settings, project)
            print(airflow_packages.describe(airflow_packages.compare(project)))
        elif args.command == "up":
            stack.up_with_summary(settings)
        elif args.command == "test":
            return run_tests(settings, extra)
        elif args.command == "report":
            if not report.write(settings, args.dag or None, args.run or None):
                print("No finished DAG run to report on yet: trigger a DAG, then `make report`.")
        elif args.command == "drift":
            return drift.drift(settings)
        elif args.command == "export":
            export.export(settings)
        elif args.command == "down":
            stack.down(settings)
        elif args.command == "stop":
            stack.stop(settings)
        elif args.command == "status":
            print(stack.summary(settings) if stack.is_up(settings) else
                  "The sandbox is not (fully) up:\n" + stack.summary(settings))
            print(f"\n  {stack.judge_running(settings).reason}")
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (preflight.HostError, images.ImageError, stack.StackError, AirflowApiError, ClusterError,
            DockerError, ProjectError, SettingsError, report.ReportError, export.ExportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
