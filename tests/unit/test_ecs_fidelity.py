"""Unit tests of the ECS fidelity patch's translation functions (no Docker)."""

import importlib.util
import pathlib

import pytest

pytestmark = pytest.mark.unit

_PATH = pathlib.Path(__file__).resolve().parents[2] / "localstack" / "ecs_fidelity.py"
_spec = importlib.util.spec_from_file_location("ecs_fidelity", _PATH)
fidelity = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fidelity)

GIB = 1_000_000_000


def test_entrypoint_workdir_user_are_passed_to_docker():
    cdef = {"name": "app", "entryPoint": ["/bin/sh", "-c"],
            "command": ["echo $HOME"], "workingDirectory": "/srv",
            "user": 1000}
    opts = fidelity.docker_run_options(cdef, {})
    assert opts == {"entrypoint": ["/bin/sh", "-c"], "working_dir": "/srv",
                    "user": "1000"}


def test_definition_without_extras_adds_nothing():
    assert fidelity.docker_run_options({"name": "app", "image": "x"}, {}) == {}


def test_container_memory_is_hard_limit_without_swap():
    opts = fidelity.docker_run_options(
        {"name": "a", "memory": 256, "memoryReservation": 128}, {"memory": "1024"})
    assert opts["mem_limit"] == "256m"
    assert opts["memswap_limit"] == "256m"
    assert opts["mem_reservation"] == "128m"


def test_max_swap_extends_the_swap_limit():
    opts = fidelity.docker_run_options(
        {"name": "a", "memory": 256, "linuxParameters": {"maxSwap": 64}}, {})
    assert opts["memswap_limit"] == "320m"


@pytest.mark.parametrize("task_memory, expected", [
    ("512", "512m"), (768, "768m"), ("1 GB", "1024m"), ("2GB", "2048m")])
def test_task_memory_limits_a_container_without_its_own(task_memory, expected):
    opts = fidelity.docker_run_options(
        {"name": "a", "memoryReservation": 64}, {"memory": task_memory})
    assert opts["mem_limit"] == expected
    assert opts["mem_reservation"] == "64m"


def test_container_cpu_units_become_cpu_shares():
    assert fidelity.docker_run_options({"name": "a", "cpu": 512}, {})["cpu_shares"] == 512
    # Docker's minimum weight.
    assert fidelity.docker_run_options({"name": "a", "cpu": 1}, {})["cpu_shares"] == 2
    assert "cpu_shares" not in fidelity.docker_run_options({"name": "a", "cpu": 0}, {})


@pytest.mark.parametrize("task_cpu, nano", [
    ("256", GIB // 4), (512, GIB // 2), ("1 vCPU", GIB), ("0.5 vcpu", GIB // 2)])
def test_task_cpu_is_a_ceiling(task_cpu, nano):
    opts = fidelity.docker_run_options({"name": "a"}, {"cpu": task_cpu}, host_cpus=4)
    assert opts["nano_cpus"] == nano


def test_task_cpu_at_or_above_host_cpus_is_not_a_limit():
    # Docker refuses more CPUs than the host has; the whole host is no limit.
    assert "nano_cpus" not in fidelity.docker_run_options(
        {"name": "a"}, {"cpu": "4096"}, host_cpus=2)
    assert "nano_cpus" not in fidelity.docker_run_options(
        {"name": "a"}, {"cpu": "2048"}, host_cpus=2)


def test_health_check_seconds_become_nanoseconds():
    opts = fidelity.docker_run_options({"name": "a", "healthCheck": {
        "command": ["CMD-SHELL", "test -f /ready"], "interval": 5,
        "timeout": 2, "retries": 4, "startPeriod": 10}}, {})
    assert opts["healthcheck"] == {
        "test": ["CMD-SHELL", "test -f /ready"], "interval": 5 * GIB,
        "timeout": 2 * GIB, "retries": 4, "start_period": 10 * GIB}


def test_health_check_defaults_are_ecs_defaults():
    hc = fidelity.healthcheck_options({"command": ["CMD", "true"]})
    assert (hc["interval"], hc["timeout"], hc["retries"], hc["start_period"]) == (
        30 * GIB, 5 * GIB, 3, 0)
    assert fidelity.healthcheck_options({}) is None


def test_init_process_enabled_runs_an_init():
    opts = fidelity.docker_run_options(
        {"name": "a", "linuxParameters": {"initProcessEnabled": True}}, {})
    assert opts["init"] is True


@pytest.mark.parametrize("cdef, seconds", [
    ({}, 30), ({"stopTimeout": 2}, 2), ({"stopTimeout": 0}, 0),
    ({"stopTimeout": 600}, 120)])
def test_stop_timeout_default_and_max(cdef, seconds):
    assert fidelity.stop_timeout(cdef) == seconds


def test_start_timeout_default():
    assert fidelity.start_timeout({}) == 180
    assert fidelity.start_timeout({"startTimeout": 7}) == 7


def test_essential_defaults_to_true():
    assert fidelity.is_essential({})
    assert fidelity.is_essential({"essential": True})
    assert not fidelity.is_essential({"essential": False})


def _c(name, *deps):
    return {"name": name, "dependsOn": [
        {"containerName": d, "condition": "START"} for d in deps]}


def test_start_order_puts_dependencies_first_and_keeps_definition_order():
    cdefs = [_c("app", "init", "proxy"), _c("proxy"), _c("init"), _c("other")]
    order = [cdefs[i]["name"] for i in fidelity.start_order(cdefs)]
    assert order == ["proxy", "init", "app", "other"]


def test_start_order_chain_and_unknown_dependency():
    cdefs = [_c("c", "b"), _c("b", "a"), _c("a", "not-in-task")]
    assert [cdefs[i]["name"] for i in fidelity.start_order(cdefs)] == ["a", "b", "c"]


def test_start_order_rejects_a_cycle():
    with pytest.raises(ValueError, match="cycle"):
        fidelity.start_order([_c("a", "b"), _c("b", "a"), _c("free")])


RUNNING = {"Status": "running", "ExitCode": 0}
EXITED_0 = {"Status": "exited", "ExitCode": 0}
EXITED_1 = {"Status": "exited", "ExitCode": 1}
STARTING = {"Status": "running", "Health": {"Status": "starting"}}
HEALTHY = {"Status": "running", "Health": {"Status": "healthy"}}
UNHEALTHY = {"Status": "running", "Health": {"Status": "unhealthy"}}


@pytest.mark.parametrize("condition, state, verdict", [
    ("START", RUNNING, "MET"),
    ("START", EXITED_1, "MET"),
    ("COMPLETE", RUNNING, "WAIT"),
    ("COMPLETE", EXITED_1, "MET"),
    ("SUCCESS", RUNNING, "WAIT"),
    ("SUCCESS", EXITED_0, "MET"),
    ("SUCCESS", EXITED_1, "FAILED"),
    ("HEALTHY", STARTING, "WAIT"),
    ("HEALTHY", UNHEALTHY, "WAIT"),    # may still recover before startTimeout
    ("HEALTHY", HEALTHY, "MET"),
    ("HEALTHY", RUNNING, "WAIT"),      # no health check: never healthy
    ("HEALTHY", EXITED_0, "FAILED"),
    ("SUCCESS", None, "FAILED"),       # the dependency never started
])
def test_dependency_conditions(condition, state, verdict):
    assert fidelity.dependency_state(condition, state) == verdict


def test_unknown_condition_is_an_error():
    with pytest.raises(ValueError):
        fidelity.dependency_state("READY", RUNNING)


def test_dependency_failure_reason_names_both_containers():
    reason = fidelity.dependency_failure_reason("init", "app", "SUCCESS")
    assert reason.startswith("CannotStartContainerError: dependency graph:")
    assert "[init]" in reason and "[app]" in reason
    assert "did not exit successfully" in reason


def test_oom_kill_is_reported_as_ecs_does():
    assert fidelity.container_outcome(
        {"Status": "exited", "ExitCode": 137, "OOMKilled": True}) == (
        137, "OutOfMemoryError: Container killed due to memory usage")
    assert fidelity.container_outcome({"Status": "exited", "ExitCode": 143}) == (143, None)


def test_health_status_mapping():
    assert fidelity.health_status(HEALTHY) == "HEALTHY"
    assert fidelity.health_status(UNHEALTHY) == "UNHEALTHY"
    assert fidelity.health_status(STARTING) == "UNKNOWN"
    assert fidelity.health_status(RUNNING) == "UNKNOWN"


def test_task_health_from_essential_containers():
    assert fidelity.task_health_status([]) == "UNKNOWN"
    assert fidelity.task_health_status(["HEALTHY", "HEALTHY"]) == "HEALTHY"
    assert fidelity.task_health_status(["HEALTHY", "UNKNOWN"]) == "UNKNOWN"
    assert fidelity.task_health_status(["HEALTHY", "UNHEALTHY"]) == "UNHEALTHY"


def test_pull_failure_reason_uses_the_daemon_explanation():
    class APIError(Exception):
        explanation = 'Get "https://registry-1.docker.io/v2/": no such host'

    assert fidelity.pull_failure_reason(APIError("500 Server Error")) == (
        'Error response from daemon: Get "https://registry-1.docker.io/v2/": no such host')


def test_version_guard_names_the_pin_and_this_patch():
    fidelity.check_version("1.5.33")
    with pytest.raises(RuntimeError) as err:
        fidelity.check_version("1.5.34")
    assert "ministack==1.5.33" in str(err.value)
    assert "ecs_fidelity.py" in str(err.value)
    assert "1.5.34" in str(err.value)


def fargate_td(**extra):
    td = {"family": "f", "requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc", "cpu": "256",
          "memory": "512", "containerDefinitions": [{"name": "app", "image": "x"}]}
    td.update(extra)
    return td


def test_a_valid_fargate_definition_is_accepted():
    assert fidelity.refusal(fargate_td()) is None
    assert fidelity.refusal(fargate_td(), "FARGATE") is None
    # As MiniStack stores a registered definition: unset modes are empty strings.
    assert fidelity.refusal(fargate_td(pidMode="", ipcMode="", volumes=[]), "FARGATE") is None


@pytest.mark.parametrize("extra, words", [
    ({"networkMode": "bridge"}, "Fargate only supports network mode 'awsvpc'."),
    ({"pidMode": "host"}, "do not support pidMode 'host'"),
    ({"ipcMode": "task"}, "do not support ipcMode."),
    ({"memory": "3000"}, "No Fargate configuration exists for given values: 256 CPU, 3000 memory."),
    ({"volumes": [{"name": "root", "host": {"sourcePath": "/"}}]}, "volume 'root' mounts the host path '/'"),
    ({"containerDefinitions": [{"name": "app", "image": "x", "privileged": True}]}, "container 'app' is privileged"),
    ({"containerDefinitions": [{"name": "app", "image": "x", "linuxParameters": {
        "capabilities": {"add": ["SYS_PTRACE", "NET_ADMIN"]}}}]}, "adds NET_ADMIN"),
])
def test_fargate_refuses_what_fargate_refuses(extra, words):
    assert words in fidelity.refusal(fargate_td(**extra))


def test_host_access_is_refused_on_any_launch_type_unless_allowed(monkeypatch):
    td = {"family": "ec2", "requiresCompatibilities": ["EC2"], "networkMode": "bridge",
          "containerDefinitions": [{"name": "app", "image": "x", "privileged": True}]}
    assert fidelity.refusal(td) is None  # EC2 definitions may ask for it ...
    monkeypatch.delenv("ECS_ALLOW_HOST_ACCESS", raising=False)
    assert "set ECS_ALLOW_HOST_ACCESS=true" in fidelity.refusal(td, "EC2")  # ... but this emulator runs none
    monkeypatch.setenv("ECS_ALLOW_HOST_ACCESS", "true")
    assert fidelity.refusal(td, "EC2") is None
