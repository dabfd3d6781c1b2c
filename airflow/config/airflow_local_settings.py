"""The sandbox's Airflow local settings; every Airflow process imports this from $AIRFLOW_HOME/config.

With SANDBOX_PRELOAD_DAG_IMPORTS=true (set on the scheduler only) the `airflow.*` modules the DAG
files import are imported here, before the LocalExecutor forks its workers. Each task process is
a fork of a worker, so it starts with the providers already loaded instead of importing them again:
about a CPU-second per task, most of what a 32-case fan-out costs Airflow on a 2-core machine. The
dag-processor does the same before parsing ([dag_processor] parsing_pre_import_modules).

Two more costs of every task process that talks to AWS go with it (profiled with py-spy in a 64-task
fan-out; the amazon provider behaves the same, only cheaper):
- `AwsGenericHook` names the operator that created it in its user agent by calling
  `inspect.stack()`, which reads the source of every frame and looks each one up among all loaded
  modules (python/cpython#92041): 30-60 % of an EcsRunTaskOperator process's CPU, more with the
  providers preloaded. `_find_operator_class_name` and `_find_executor_class_name` walk the frames
  instead, with the same answer.
- Each boto3 session parses botocore's JSON models again. Every session of the process shares one
  loader, filled in the scheduler for the services the sandbox's operators call before it forks.

With SANDBOX_WARM_EXECUTION_API=true (the triggerer, Airflow 3) the triggerer's in-process Execution
API, through which its trigger runner gets connections and variables, is built in a thread once the
runner has started, instead of on the first trigger's first request: Cadwyn builds its versioned routes
then, about 3 CPU-seconds, which made the first deferred ECS task after `make up` wait 7 s longer.
The triggerer's two forks (its log server, its trigger runner) are made with the garbage collector's
objects frozen, as Airflow's LocalExecutor and dag-processor make theirs: the children's collections
then leave the parent's pages shared (the log server 83 -> 56 MB of its own, the runner 90 -> 64; the
triggerer 386 -> 365 MiB idle).

`task_policy` makes every EcsRunTaskOperator tag the ECS task it starts with the Airflow task try it
belongs to (as KubernetesPodOperator labels its pods), so the metrics service can tie what the task
used to the DAG run, task, map index and try (sandbox/metrics/sampler.py).
"""
from __future__ import annotations

import functools
import gc
import importlib
import inspect
import logging
import os
import sys
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


def find_operator_class_name(target_function_name: str) -> str | None:
    """AwsGenericHook._find_operator_class_name by walking frames: the class of `self` in the innermost
    frame of a function so named (KeyError without one, as the provider's)."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == target_function_name:
            return frame.f_locals["self"].__class__.__name__
        frame = frame.f_back
    return None


def find_executor_class_name() -> str | None:
    """AwsGenericHook._find_executor_class_name by walking frames: the last class named in the globals of
    the innermost frame whose module has BaseExecutor."""
    frame = sys._getframe(1)
    while frame is not None:
        classes = [name for name, obj in frame.f_globals.items() if inspect.isclass(obj)]
        if "BaseExecutor" in classes:
            return classes[-1]
        frame = frame.f_back
    return None


def _cheap_aws_caller_lookup() -> None:
    base_aws = sys.modules.get("airflow.providers.amazon.aws.hooks.base_aws")
    hook = getattr(base_aws, "AwsGenericHook", None)
    if hook is None or not hasattr(hook, "_find_operator_class_name") or not hasattr(hook, "_find_executor_class_name"):
        return  # a provider without them (or none): nothing to make cheaper
    hook._find_operator_class_name = staticmethod(find_operator_class_name)
    hook._find_executor_class_name = staticmethod(find_executor_class_name)


WARM_AWS_SERVICES = ("ecs", "logs", "s3", "sts")


def _share_botocore_loader() -> None:
    try:
        import boto3
        import botocore.session
        from botocore import UNSIGNED
        from botocore.config import Config
    except ImportError:
        return
    if getattr(botocore.session.create_loader, "sandbox_shared", False):
        return
    create_loader, loaders = botocore.session.create_loader, {}

    def shared_loader(search_path_string=None):
        if search_path_string not in loaders:
            loaders[search_path_string] = create_loader(search_path_string)
        return loaders[search_path_string]

    shared_loader.sandbox_shared = True
    botocore.session.create_loader = shared_loader
    # Creating a client reads its models, endpoints and retry rules; unsigned, it looks for no credentials
    # (Airflow's role may not exist yet when the scheduler starts).
    for service in WARM_AWS_SERVICES:
        try:  # a broken AWS config file is the tasks' to report, not the scheduler's start
            boto3.session.Session(region_name="us-east-1").client(service, config=Config(signature_version=UNSIGNED))
        except Exception as error:
            logging.getLogger(__name__).warning("Not preloading botocore's %s model: %s", service, error)


IN_PROCESS_API_URL = "http://in-process.invalid./"  # the triggerer's own client's base URL (make_client)


def _warm_triggerer_execution_api() -> None:
    from importlib.metadata import version

    if int(version("apache-airflow").split(".")[0]) < 3:
        return  # Airflow 2's triggerer reads the database itself
    import concurrent.futures
    import threading

    from airflow.jobs import triggerer_job_runner as runner

    supervisor, make_api = runner.TriggerRunnerSupervisor, runner.in_process_api_server
    warmed: concurrent.futures.Future = concurrent.futures.Future()

    def warm() -> None:
        try:
            import httpx

            api = make_api()
            httpx.Client(transport=api.transport, base_url=IN_PROCESS_API_URL).get("health").raise_for_status()
            warmed.set_result(api)
            logging.getLogger(__name__).info("sandbox: the triggerer's in-process Execution API is built")
        except Exception as error:
            logging.getLogger(__name__).warning("Not warming the in-process Execution API: %s", error)
            warmed.set_exception(error)

    def in_process_api_server():
        try:  # waits only when a trigger asks before the warm-up ends
            return warmed.result(timeout=120)
        except Exception:
            return make_api()

    start = supervisor.start.__func__

    def start_then_warm(cls, *args, **kwargs):
        # Frozen across the fork, as the LocalExecutor and the dag-processor do before theirs.
        gc.freeze()
        try:
            proc = start(cls, *args, **kwargs)
        finally:
            gc.unfreeze()
        # After the fork: the trigger runner must not inherit the API's event-loop thread.
        threading.Thread(target=warm, name="sandbox-warm-execution-api", daemon=True).start()
        return proc

    supervisor.start = classmethod(start_then_warm)
    runner.in_process_api_server = in_process_api_server
    # The log server is forked next (multiprocessing, before the runner): frozen until the runner's fork.
    gc.freeze()


if os.environ.get("SANDBOX_PRELOAD_DAG_IMPORTS", "").lower() == "true":
    _preload_dag_imports()
    _cheap_aws_caller_lookup()
    _share_botocore_loader()
if os.environ.get("SANDBOX_WARM_EXECUTION_API", "").lower() == "true":
    _warm_triggerer_execution_api()
