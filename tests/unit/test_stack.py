"""`make down`'s order and the cluster record, without Docker."""
from __future__ import annotations

import json

import pytest

from sandbox.host import stack
from sandbox.host.settings import Settings

pytestmark = pytest.mark.unit


@pytest.fixture
def calls(tmp_path, monkeypatch):
    kube = tmp_path / "kube"
    kube.mkdir()
    monkeypatch.setattr(stack, "KUBE_DIR", kube)
    # down() forgets the checkout's record of its sandbox: a tmp one, never the real .build/stack.json.
    from sandbox.host import provenance
    monkeypatch.setattr(provenance, "RECORD", tmp_path / "stack.json")
    monkeypatch.setattr(stack, "CLUSTER_RECORD", kube / "cluster.json")
    monkeypatch.setattr(stack, "HOST_KUBECONFIG", kube / "host.yaml")
    monkeypatch.setattr(stack, "ADMIN_KUBECONFIG", kube / "admin.yaml")
    made = []

    class Provider:
        def __init__(self, name):
            self.name = name

        def delete(self):
            made.append(f"delete {self.name} cluster")

    import sandbox.host.cluster
    monkeypatch.setattr(sandbox.host.cluster, "make_provider", lambda name, settings: Provider(name))
    monkeypatch.setattr(stack, "cluster_provider", lambda settings: (Provider("selected"), "probed"))
    monkeypatch.setattr(stack, "remove_task_containers", lambda settings: made.append("remove task containers"))
    monkeypatch.setattr(stack, "compose", lambda *args, **kw: made.append("compose " + " ".join(args)))
    return made


def test_down_removes_what_is_on_the_network_before_compose_down(calls):
    stack.ADMIN_KUBECONFIG.write_text("x")
    stack.HOST_KUBECONFIG.write_text("x")
    stack.CLUSTER_RECORD.write_text(json.dumps({"provider": "offline", "server": "https://127.0.0.1:6443"}))
    stack.down(Settings({}))
    assert calls == ["remove task containers", "delete offline cluster",
                     "compose down --remove-orphans --timeout 10 --volumes"]
    assert list(stack.KUBE_DIR.iterdir()) == []


def test_down_without_a_record_asks_the_configured_provider(calls):
    stack.down(Settings({}), volumes=False)
    assert calls == ["remove task containers", "delete selected cluster", "compose down --remove-orphans --timeout 10"]


def test_a_broken_record_counts_as_none(calls):
    stack.CLUSTER_RECORD.write_text("{not json")
    assert stack.recorded_cluster() == {}


def test_the_sdk_configs_give_airflow_no_keys_and_the_host_the_root(tmp_path, monkeypatch):
    import configparser

    from sandbox.host.settings import Settings
    from sandbox.seeding.config import load_config
    monkeypatch.setattr(stack, "SDK_CONFIG", tmp_path / "aws" / "config")
    monkeypatch.setattr(stack, "HOST_SDK_CONFIG", tmp_path / "host-aws" / "config")
    settings = Settings({"SANDBOX_ROOT_ACCESS_KEY_ID": "AKIAROOT", "SANDBOX_ROOT_SECRET_ACCESS_KEY": "s",
                         "LOCALSTACK_PORT": "4599"})
    stack.write_sdk_config(load_config(stack.ROOT / "sandbox.yaml"), settings)
    parsed = configparser.ConfigParser()
    parsed.read(stack.SDK_CONFIG)
    # Airflow's containers: no keys, no role to assume (the credentials endpoint gives aws.airflow_role).
    assert dict(parsed["default"]) == {"region": "us-east-1", "retry_mode": "standard", "max_attempts": "10"}
    assert parsed.sections() == ["default"]
    host = configparser.ConfigParser()
    host.read(stack.HOST_SDK_CONFIG)
    assert dict(host["profile sandbox"]) == {"region": "us-east-1", "endpoint_url": "http://127.0.0.1:4599",
                                             "aws_access_key_id": "AKIAROOT", "aws_secret_access_key": "s"}
    assert stack.HOST_SDK_CONFIG.stat().st_mode & 0o077 == 0  # the root's keys: the owner's only
    assert not stack.HOST_SDK_CONFIG.is_relative_to(stack.SDK_CONFIG.parent)  # not in Airflow's mount


def engine_with(monkeypatch, networks: list[dict], port: int):
    import subprocess
    config = {"networks": {"default": {"ipam": {"config": [{"subnet": "169.254.170.0/24"}]}}},
              "services": {"airflow-apiserver": {"ports": [{"host_ip": "127.0.0.1", "published": str(port)}]}}}

    def docker(*args, **kw):
        out = "\n".join(n["Id"] for n in networks) if args[:2] == ("network", "ls") else json.dumps(networks)
        return subprocess.CompletedProcess(args, 0, out, "")

    monkeypatch.setattr(stack, "compose", lambda *a, **kw: subprocess.CompletedProcess(a, 0, json.dumps(config), ""))
    monkeypatch.setattr(stack, "docker", docker)


def free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_second_sandbox_on_the_engine_is_refused_with_what_to_do(monkeypatch):
    other = {"Id": "n1", "Name": "team-b_default", "Labels": {"com.docker.compose.project": "team-b"},
             "IPAM": {"Config": [{"Subnet": "169.254.170.0/24"}]}}
    engine_with(monkeypatch, [other], free_port())
    with pytest.raises(stack.StackError) as refused:
        stack.check_engine_is_free(Settings({"COMPOSE_PROJECT_NAME": "team-a"}))
    assert "'team-b_default' (compose project team-b)" in str(refused.value)
    assert "docker compose -p team-b down" in str(refused.value)
    # The network of this very project (left by a half-finished run) is not another sandbox.
    stack.check_engine_is_free(Settings({"COMPOSE_PROJECT_NAME": "team-b"}))


def test_a_taken_port_is_refused_before_anything_starts(monkeypatch):
    import socket
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        engine_with(monkeypatch, [], taken.getsockname()[1])
        with pytest.raises(stack.StackError, match="is in use by another program; set AIRFLOW_PORT"):
            stack.check_engine_is_free(Settings({}))


def test_iam_switch_takes_true_or_false_and_names_a_bad_value():
    from sandbox.host.settings import Settings, SettingsError
    assert Settings({}).iam_enforced is True
    assert Settings({"AWS_IAM_ENFORCED": "False"}).iam_enforced is False
    with pytest.raises(SettingsError, match="AWS_IAM_ENFORCED='yes': expected true or false"):
        Settings({"AWS_IAM_ENFORCED": "yes"}).iam_enforced


@pytest.mark.parametrize("value", ["often", "-1"])
def test_state_save_interval_takes_seconds_and_names_a_bad_value(value):
    from sandbox.host.settings import Settings, SettingsError
    assert Settings({}).state_save_seconds == 3
    assert Settings({"AWS_STATE_SAVE_SECONDS": "0"}).state_save_seconds == 0
    with pytest.raises(SettingsError, match=f"AWS_STATE_SAVE_SECONDS='{value}': expected a number of seconds, 0 or more"):
        Settings({"AWS_STATE_SAVE_SECONDS": value}).state_save_seconds


class _Config:
    def __init__(self, kubernetes: bool):
        self.kubernetes = {"namespace": "airflow-tasks"} if kubernetes else {}


@pytest.fixture
def running_sandbox(calls, monkeypatch):
    """A sandbox whose compose services are listed as given (the reseeder running unless changed)."""
    listed = [{"Service": "reseeder", "State": "running"}, {"Service": "bootstrap", "State": "exited", "ExitCode": 0}]
    monkeypatch.setattr(stack, "services", lambda: listed)
    return listed


def test_a_stopped_reseeder_sends_make_up_down_the_full_path(running_sandbox):
    running_sandbox[0]["State"] = "exited"
    assert stack.not_reusable(Settings(values={}), _Config(kubernetes=False)) == "the reseeder is not running"


def test_no_cluster_wanted_and_none_recorded_is_reusable(running_sandbox, monkeypatch):
    monkeypatch.setattr(stack, "cluster_provider", lambda settings: (None, "K8S_PROVIDER=none"))
    assert stack.not_reusable(Settings(values={}), _Config(kubernetes=True)) is None


def test_another_provider_than_the_recorded_one_is_named(running_sandbox):
    stack.CLUSTER_RECORD.write_text(json.dumps({"provider": "offline", "server": "https://127.0.0.1:6443"}))
    reason = stack.not_reusable(Settings(values={}), _Config(kubernetes=True))
    assert reason == "the cluster provider is now selected (was offline)"


def test_a_cluster_that_does_not_answer_with_the_recorded_kubeconfig_is_named(running_sandbox):
    stack.CLUSTER_RECORD.write_text(json.dumps({"provider": "selected", "server": "https://127.0.0.1:6443"}))
    # No kubeconfig written (a `make down` by another checkout removed it): not the recorded cluster.
    reason = stack.not_reusable(Settings(values={}), _Config(kubernetes=True))
    assert reason == "the selected cluster does not answer as recorded (FileNotFoundError)"


def test_the_breakdown_shows_steps_side_by_side_with_when_they_began(monkeypatch):
    from sandbox.core import progress
    clock = iter([100.0, 101.0, 102.0, 112.0, 113.0, 150.0])
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(progress, "_timings", [])
    with progress.step("a short one"):  # 100 -> 101
        pass
    with pytest.raises(RuntimeError):
        with progress.step("a failed one"):  # 102 -> 112
            raise RuntimeError
    with progress.step("a long one"):  # 113 -> 150
        pass
    assert progress.breakdown(100.0, minimum=2) == [
        "     2.0s    10.0s  a failed one  (failed)",
        "    13.0s    37.0s  a long one"]


def test_background_work_is_labelled_and_its_failure_is_raised_in_the_caller(capsys):
    from sandbox.core.progress import Background, info
    work = Background("cluster")

    def build(what):
        info(f"building {what}")
        raise RuntimeError(f"{what} failed")

    work.start(build, "the node image")
    with pytest.raises(RuntimeError, match="the node image failed"):
        work.result()
    info("the main thread's line")
    assert capsys.readouterr().out.splitlines() == ["    [cluster] building the node image",
                                                    "    the main thread's line"]


@pytest.fixture
def failing_down(calls, monkeypatch):
    """`compose down` fails on the network; `network inspect` and `compose ps` say what is left."""
    import subprocess
    from sandbox.host.docker import DockerError
    left = {"attached": "0", "containers": ""}

    def compose(*args, **kw):
        if args[0] == "down":
            calls.append("compose down")
            raise DockerError(["docker", "compose", *args], 1, "")
        return subprocess.CompletedProcess(args, 0, left["containers"], "")

    monkeypatch.setattr(stack, "compose", compose)
    monkeypatch.setattr(stack, "docker", lambda *args, **kw: subprocess.CompletedProcess(args, 0, left["attached"] + "\n", ""))
    return left


def test_a_network_the_engine_keeps_with_nothing_attached_does_not_fail_down(failing_down, capsys):
    stack.down(Settings({"COMPOSE_PROJECT_NAME": "airflow-sandbox"}))
    assert "Docker kept the network airflow-sandbox_default" in capsys.readouterr().out


@pytest.mark.parametrize("left", [{"attached": "1", "containers": ""}, {"attached": "0", "containers": "abc123\n"}])
def test_down_fails_when_a_container_is_left(failing_down, left):
    from sandbox.host.docker import DockerError
    failing_down.update(left)
    with pytest.raises(DockerError):
        stack.down(Settings({"COMPOSE_PROJECT_NAME": "airflow-sandbox"}))
