"""The local settings' cheaper AwsGenericHook caller lookups give the provider's answers (its
inspect.stack() versions are copied here as the reference), and botocore sessions share one loader."""
from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
SETTINGS = Path(__file__).resolve().parents[2] / "airflow" / "config" / "airflow_local_settings.py"


@pytest.fixture(scope="module")
def local_settings():
    spec = importlib.util.spec_from_file_location("airflow_local_settings_aws_costs", SETTINGS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def provider_find_operator_class_name(target_function_name):  # apache-airflow-providers-amazon 9.39.0
    stack = inspect.stack()
    target_frames = [frame for frame in stack if frame.function == target_function_name]
    if target_frames:
        target_frame = target_frames[0][0]
    else:
        return None
    return target_frame.f_locals["self"].__class__.__name__


def provider_find_executor_class_name():
    for frame in inspect.stack():
        classes = [name for name, obj in frame[0].f_globals.items() if inspect.isclass(obj)]
        if "BaseExecutor" in classes:
            return classes[-1]
    return None


class Sensor:
    def poke(self, find):
        return find("poke"), find("execute")


class Operator:
    def execute(self, find):
        return find("execute"), Sensor().poke(find)


def no_self_execute(find):  # a function named `execute` without a `self`
    def execute():
        return find("execute")
    return execute()


@pytest.mark.parametrize("call", [lambda find: Operator().execute(find), lambda find: find("execute"),
                                  lambda find: Sensor().poke(find)])
def test_the_operator_found_is_the_providers(local_settings, call):
    assert call(local_settings.find_operator_class_name) == call(provider_find_operator_class_name)


def test_a_frame_without_self_fails_as_the_providers_does(local_settings):
    with pytest.raises(KeyError):
        no_self_execute(provider_find_operator_class_name)
    with pytest.raises(KeyError):
        no_self_execute(local_settings.find_operator_class_name)


def test_the_executor_found_is_the_providers(local_settings):
    ns = {"BaseExecutor": type("BaseExecutor", (), {}), "LocalExecutor": type("LocalExecutor", (), {})}
    exec("def run(find):\n    return find()\n", ns)  # a frame whose module names BaseExecutor
    assert ns["run"](local_settings.find_executor_class_name) == ns["run"](provider_find_executor_class_name) \
        == "LocalExecutor"
    assert local_settings.find_executor_class_name() == provider_find_executor_class_name() is None


def test_botocore_sessions_share_one_loader_warmed_without_credentials(local_settings, monkeypatch, caplog):
    botocore_session = pytest.importorskip("botocore.session")
    monkeypatch.setattr(local_settings, "WARM_AWS_SERVICES", ("sts", "ecs"))
    monkeypatch.setattr(botocore_session, "create_loader", botocore_session.create_loader)
    # as in the scheduler: credentials from an endpoint that cannot give them yet
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:9/v2/credentials/airflow")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    local_settings._share_botocore_loader()
    assert "Not preloading" not in caplog.text
    first, second = botocore_session.get_session(), botocore_session.get_session()
    loader = first.get_component("data_loader")
    assert loader is second.get_component("data_loader")
    assert any("ecs" in str(key) for key in getattr(loader, "_cache", {})), "the ecs model was not loaded"
