"""Unit tests of the ECS fidelity patch's translation functions (no Docker)."""

import contextlib
import importlib.util
import io
import json
import pathlib
import queue
import struct
import types
import uuid

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


def ec2_td(**container):
    return {"family": "ec2", "requiresCompatibilities": ["EC2"], "networkMode": "bridge",
            "containerDefinitions": [{"name": "app", "image": "x", "memory": 64, **container}]}


def test_host_access_is_refused_on_any_launch_type_unless_allowed(monkeypatch):
    td = ec2_td(privileged=True)
    monkeypatch.delenv("ECS_ALLOW_HOST_ACCESS", raising=False)
    for launch_type in (None, "EC2", "EXTERNAL"):  # registration (None) and RunTask alike
        assert fidelity.refusal(td, launch_type) == (
            "This sandbox's emulator does not start tasks that reach into the host: container 'app' is "
            "privileged. Set ECS_ALLOW_HOST_ACCESS=true in .env to allow it (unsafe: such a task is root on "
            "this machine).")
    monkeypatch.setenv("ECS_ALLOW_HOST_ACCESS", "true")
    assert fidelity.refusal(td) is None
    assert fidelity.refusal(td, "EC2") is None


def test_every_host_reaching_option_is_named_in_one_refusal(monkeypatch):
    monkeypatch.delenv("ECS_ALLOW_HOST_ACCESS", raising=False)
    td = {**ec2_td(linuxParameters={"capabilities": {"add": ["SYS_ADMIN"]}, "devices": [{"hostPath": "/dev/fuse"}]},
                   dockerSecurityOptions=["seccomp=unconfined"]),
          "pidMode": "host", "networkMode": "host"}
    message = fidelity.refusal(td)
    for words in ("container 'app' adds Linux capability SYS_ADMIN", "host device '/dev/fuse'",
                  "dockerSecurityOptions 'seccomp=unconfined'", "pidMode is 'host'", "networkMode is 'host'"):
        assert words in message
    assert message.count("ECS_ALLOW_HOST_ACCESS") == 1


def test_a_fargate_definition_gets_fargates_words_and_the_host_rule_for_the_rest(monkeypatch):
    monkeypatch.delenv("ECS_ALLOW_HOST_ACCESS", raising=False)
    td = fargate_td(pidMode="host", containerDefinitions=[{"name": "app", "image": "x", "linuxParameters": {
        "devices": [{"hostPath": "/dev/kmsg"}]}}])
    message = fidelity.refusal(td)
    assert message.startswith("Tasks using the Fargate launch type do not support pidMode 'host'.")
    assert "pidMode is 'host'" not in message  # Fargate's refusal already names it
    assert "host device '/dev/kmsg'" in message and "ECS_ALLOW_HOST_ACCESS=true" in message
    # Fargate lets a container add SYS_PTRACE; on this machine's kernel it is still beyond Docker's defaults.
    ptrace = fargate_td(containerDefinitions=[{"name": "app", "image": "x", "linuxParameters": {
        "capabilities": {"add": ["SYS_PTRACE"]}}}])
    assert "adds Linux capability SYS_PTRACE" in fidelity.refusal(ptrace, "FARGATE")
    monkeypatch.setenv("ECS_ALLOW_HOST_ACCESS", "true")
    assert fidelity.refusal(ptrace, "FARGATE") is None
    assert fidelity.refusal(td) == "Tasks using the Fargate launch type do not support pidMode 'host'."


@pytest.fixture
def emulator(monkeypatch):
    """ecs_fidelity's RegisterTaskDefinition and RunTask over a stand-in for MiniStack's ecs module."""
    calls = []
    fake = types.SimpleNamespace(
        _task_defs={}, _resolve_td_key=lambda ref: ref,
        error_response_json=lambda code, message, status: {"status": status, "__type": code, "message": message})
    monkeypatch.setattr(fidelity, "ecs", fake)
    monkeypatch.setitem(fidelity._original, "_register_task_definition", lambda data: calls.append(data) or "ok")
    monkeypatch.setitem(fidelity._original, "_run_task", lambda data: calls.append(data) or "ok")
    monkeypatch.delenv("ECS_ALLOW_HOST_ACCESS", raising=False)
    return fake, calls


def test_register_task_definition_refuses_host_access_with_a_client_exception(emulator):
    _, calls = emulator
    answer = fidelity._register_task_definition(ec2_td(linuxParameters={"capabilities": {"add": ["NET_ADMIN"]}}))
    assert answer["status"] == 400 and answer["__type"] == "ClientException"
    assert "adds Linux capability NET_ADMIN" in answer["message"] and not calls
    assert fidelity._register_task_definition(ec2_td(linuxParameters={"capabilities": {"add": ["CHOWN"]}})) == "ok"


def test_run_task_refuses_a_definition_registered_while_host_access_was_allowed(emulator, monkeypatch):
    fake, calls = emulator
    fake._task_defs["ec2:1"] = {**ec2_td(), "pidMode": "host", "ipcMode": ""}  # as MiniStack stores it
    answer = fidelity._run_task({"taskDefinition": "ec2:1", "launchType": "EC2"})
    assert answer["__type"] == "ClientException" and "pidMode is 'host'" in answer["message"] and not calls
    monkeypatch.setenv("ECS_ALLOW_HOST_ACCESS", "true")
    assert fidelity._run_task({"taskDefinition": "ec2:1", "launchType": "EC2"}) == "ok"


def test_the_emulator_answers_with_ecs_exceptions_for_ecs_rules(emulator):
    fake, calls = emulator
    answer = fidelity._register_task_definition(fargate_td(containerDefinitions=[{"name": "app", "image": "localhost:4566/team/task:1.0"}]))
    assert answer == {"status": 400, "__type": "ClientException", "message": "Fargate requires task definition to "
                      "have execution role ARN to support ECR images."} and not calls
    fake._task_defs["f:1"] = {**fargate_td(), "pidMode": "", "ipcMode": ""}
    answer = fidelity._run_task({"taskDefinition": "f:1", "launchType": "FARGATE"})
    assert answer["__type"] == "InvalidParameterException" and "Network Configuration must be provided" in \
        answer["message"] and not calls
    assert fidelity._run_task({"taskDefinition": "f:1", "launchType": "FARGATE", "networkConfiguration": {
        "awsvpcConfiguration": {"subnets": ["subnet-1"]}}}) == "ok"


# ── awslogs: a container's Docker log -> CloudWatch events ─────────────────

T0 = 1714564800 * 1_000_000_000  # 2024-05-01T12:00:00Z in nanoseconds


def stamped(line, nanos=0, stamp="2024-05-01T12:00:00"):
    """A frame as `docker logs --timestamps` sends it, ``nanos`` after ``stamp``."""
    return f"{stamp}.{nanos:09d}Z ".encode() + line


@pytest.mark.parametrize("prefix, nanos", [
    (b"2024-05-01T12:00:00.123456789Z ", T0 + 123_456_789),
    (b"2024-05-01T12:00:00.5Z ", T0 + 500_000_000),
    (b"2024-05-01T12:00:00Z ", T0),
    (b"2024-05-01T14:00:00.000000001+02:00 ", T0 + 1),
    (b"2024-05-01T10:30:00.000000000-01:30 ", T0),
])
def test_docker_timestamp_becomes_nanoseconds_since_the_epoch(prefix, nanos):
    assert fidelity.parse_docker_log_line(prefix + b"hello world\n") == (nanos, b"hello world\n")


def test_a_frame_without_a_docker_timestamp_is_refused():
    with pytest.raises(ValueError, match="no Docker timestamp"):
        fidelity.parse_docker_log_line(b"hello\n")


def _multiplexed(*frames):
    return b"".join(struct.pack(">BxxxL", stream, len(data)) + data for stream, data in frames)


def test_frames_keep_the_stream_they_came_from():
    body = io.BytesIO(_multiplexed((1, b"out\n"), (2, b"err\n"), (1, b""), (3, b"note\n")))

    def read(size):  # a socket gives fewer bytes than asked for
        return body.read(min(size, 3))
    assert list(fidelity.read_frames(read)) == [(1, b"out\n"), (2, b"err\n"), (3, b"note\n")]


def test_a_stream_cut_inside_a_frame_ends_the_frames():
    body = io.BytesIO(_multiplexed((1, b"whole\n"), (2, b"cut off\n"))[:-3])
    assert list(fidelity.read_frames(body.read)) == [(1, b"whole\n")]


def events(*frames):
    return list(fidelity.awslogs_events(frames))


def test_an_event_is_a_line_without_its_newline_and_an_empty_line_is_none():
    assert events((1, stamped(b"one\n", 1)), (1, stamped(b"\n", 2)), (2, stamped(b"two\r\n", 3)),
                  (1, stamped(b"caf\xc3\xa9 \xff\n", 4))) == [
        (T0 + 1, "one"), (T0 + 3, "two\r"), (T0 + 4, "café \ufffd")]


def test_pieces_of_a_long_line_are_joined_per_stream_with_the_first_ones_time():
    # json-file splits at 16 KiB; the awslogs driver would have had the line whole.
    head, tail = b"a" * 16384, b"b" * 100
    assert events((1, stamped(head, 1)), (2, stamped(b"meanwhile\n", 2)), (1, stamped(tail + b"\n", 1))) == [
        (T0 + 2, "meanwhile"), (T0 + 1, "a" * 16384 + "b" * 100)]


def test_a_line_longer_than_an_event_is_split_as_the_awslogs_driver_does():
    size = fidelity.MAX_EVENT_BYTES
    pieces = [b"x" * 16384] * 40 + [b"y" * 10 + b"\n"]     # 655370 bytes and a newline
    found = events(*[(1, stamped(piece, 7)) for piece in pieces])
    assert [len(message) for _, message in found] == [size, size, 40 * 16384 + 10 - 2 * size]
    assert {timestamp for timestamp, _ in found} == {T0 + 7}
    assert events((1, stamped(b"z" * size + b"\n"))) == [(T0, "z" * size)]


def test_output_left_without_a_newline_is_the_last_event_and_docker_notes_are_not_output():
    assert events((3, b"Error grabbing logs: gone\n"), (2, stamped(b"err\n", 1)), (1, stamped(b"no newline", 2))) == [
        (T0 + 1, "err"), (T0 + 2, "no newline")]


def test_a_line_still_in_pieces_when_the_stream_breaks_is_not_an_event():
    def frames():
        yield 1, stamped(b"done\n", 1)
        yield 1, stamped(b"half a li", 2)
        raise ConnectionError("daemon went away")

    found = []
    with pytest.raises(ConnectionError):
        for event in fidelity.awslogs_events(frames()):
            found.append(event)
    assert found == [(T0 + 1, "done")]


def test_stderr_logged_after_stdout_it_preceded_is_put_first():
    # The issue's task: one line to stderr, then 31 to stdout, within the same millisecond; Docker
    # logged the stderr line last but stamped it first.
    docker_order = [(T0 + 10_000 + i, f"out {i}") for i in range(1, 32)] + [(T0 + 5_000, "err")]
    put = fidelity.log_events_in_written_order(docker_order)
    assert [e["message"] for e in put] == ["err"] + [f"out {i}" for i in range(1, 32)]
    assert {e["timestamp"] for e in put} == {T0 // 1_000_000}


def test_events_are_put_in_milliseconds_in_timestamp_then_docker_order():
    put = fidelity.log_events_in_written_order(
        [(T0 + 2_999_999, "b"), (T0 + 1_000_000, "a"), (T0 + 2_000_000, "same time, logged first"),
         (T0 + 2_000_000, "same time, logged second")])
    ms = T0 // 1_000_000
    assert put == [{"timestamp": ms + 1, "message": "a"},
                   {"timestamp": ms + 2, "message": "same time, logged first"},
                   {"timestamp": ms + 2, "message": "same time, logged second"},
                   {"timestamp": ms + 2, "message": "b"}]


def test_batches_are_handed_on_whole_when_the_stream_is_quiet_or_ends():
    q = queue.Queue()
    for item in ("a", "b", None):
        q.put(item)
    assert list(fidelity.settled_batches(q, settle=5, longest=5)) == [["a", "b"]]
    for item in ("a", "b", None):
        q.put(item)
    assert list(fidelity.settled_batches(q, settle=5, longest=0)) == [["a"], ["b"]]


# ── stdout and stderr on one pipe: commands run under ecs-stdio ────────────

WRAPPER = ["/.ecs-sandbox/ecs-stdio"]


@pytest.mark.parametrize("entry_point, command, image_entrypoint, image_cmd, argv", [
    # An entryPoint replaces the image's ENTRYPOINT and drops its CMD, with or without a command.
    (["/bin/sh", "-c"], ["echo hi"], ["/docker-entrypoint.sh"], ["python3"], ["/bin/sh", "-c", "echo hi"]),
    (["python3", "-V"], None, ["/docker-entrypoint.sh"], ["python3"], ["python3", "-V"]),
    (["python3", "-V"], [], None, ["ignored"], ["python3", "-V"]),
    # Without one, the image's ENTRYPOINT stays and a command replaces its CMD ...
    (None, ["python3", "-c", "x"], ["tini", "--"], ["python3"], ["tini", "--", "python3", "-c", "x"]),
    (None, ["python3", "-c", "x"], None, ["python3", "/app/run.py"], ["python3", "-c", "x"]),
    # ... or, with none (an empty list is none), the CMD runs.
    (None, None, ["tini", "--"], ["python3", "/app/run.py"], ["tini", "--", "python3", "/app/run.py"]),
    ([], [], None, ["python3", "/app/run.py"], ["python3", "/app/run.py"]),
    (None, None, ["/entrypoint.sh"], None, ["/entrypoint.sh"]),
    # Nothing to run: Docker refuses it.
    (None, None, None, None, []),
])
def test_the_argv_is_the_one_docker_makes_of_definition_and_image(entry_point, command, image_entrypoint,
                                                                   image_cmd, argv):
    assert fidelity.merged_stdio_argv(entry_point, command, image_entrypoint, image_cmd) == argv


def test_the_command_runs_under_ecs_stdio_from_the_volume_read_only():
    cdef = {"name": "app", "image": "task:1", "command": ["python3", "-c", "print(1)"]}
    opts = fidelity.merged_stdio_options(cdef, {"Entrypoint": ["tini", "--"], "Cmd": ["python3"]},
                                         "sbx_ecs-tools", binds=["/data:/mnt/data:rw"])
    assert opts == {"entrypoint": WRAPPER, "command": ["tini", "--", "python3", "-c", "print(1)"],
                    "volumes": ["/data:/mnt/data:rw", "sbx_ecs-tools:/.ecs-sandbox:ro"]}


def test_an_entrypoint_needs_no_image_config_and_nothing_to_run_stays_unwrapped():
    shell = {"name": "app", "image": "task:1", "entryPoint": ["/bin/sh", "-c"], "command": ["exit 3"]}
    assert fidelity.merged_stdio_options(shell, None, "v")["command"] == ["/bin/sh", "-c", "exit 3"]
    # Without an entryPoint the image decides the argv: not known while it is not pulled.
    assert fidelity.merged_stdio_options({"name": "app", "command": ["true"]}, None, "v") == {}
    assert fidelity.merged_stdio_options({"name": "app"}, {"Entrypoint": None, "Cmd": None}, "v") == {}


def test_a_container_runs_under_ecs_stdio_when_its_entrypoint_is_it():
    assert fidelity.merges_stdio({"Config": {"Entrypoint": WRAPPER, "Cmd": ["true"]}})
    assert not fidelity.merges_stdio({"Config": {"Entrypoint": ["/bin/sh", "-c"]}})
    assert not fidelity.merges_stdio({"Config": {"Entrypoint": None}})
    assert not fidelity.merges_stdio({})


NOT_FOUND = 'exec: "no-such-program": executable file not found in $PATH'


def test_ecs_stdio_s_report_on_stderr_is_what_could_not_run():
    assert fidelity.exec_failure([(2, stamped(NOT_FOUND.encode() + b"\n"))]) == NOT_FOUND
    # Everything the command wrote is on stdout; a stderr stream without the report is no failure.
    assert fidelity.exec_failure([(1, stamped(NOT_FOUND.encode() + b"\n"))]) is None
    assert fidelity.exec_failure([]) is None
    assert fidelity.exec_failure([(2, stamped(b"[WARN tini (1)] something\n"))]) is None


def test_a_command_that_cannot_run_is_a_start_failure_in_ecs_words():
    assert fidelity.start_failure_reason(NOT_FOUND) == (
        "CannotStartContainerError: Error response from daemon: failed to create task for container: "
        "failed to create shim task: OCI runtime create failed: runc create failed: unable to start "
        'container process: exec: "no-such-program": executable file not found in $PATH: unknown')


def test_ecs_stdio_is_installed_by_a_rename_and_runnable_by_anyone(tmp_path):
    built, volume = tmp_path / "ecs-stdio", tmp_path / "volume"
    built.write_bytes(b"new")
    volume.mkdir(mode=0o700)
    (volume / "ecs-stdio").write_bytes(b"old")
    running = open(volume / "ecs-stdio", "rb")   # a task still running the earlier copy
    fidelity.install_ecs_stdio(str(built), str(volume))
    assert (volume / "ecs-stdio").read_bytes() == b"new"
    assert running.read() == b"old"
    running.close()
    assert (volume / "ecs-stdio").stat().st_mode & 0o777 == 0o755
    assert volume.stat().st_mode & 0o777 == 0o755
    assert [p.name for p in volume.iterdir()] == ["ecs-stdio"]


def test_a_volume_that_is_not_mounted_stops_the_emulator_with_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("ECS_TOOLS_VOLUME", "sbx_ecs-tools")
    with pytest.raises(RuntimeError) as err:
        fidelity.install_ecs_stdio(str(tmp_path / "ecs-stdio"), str(tmp_path / "missing"))
    assert "sbx_ecs-tools" in str(err.value) and "compose.yaml" in str(err.value)


class _FakeDockerClient:
    """docker-py's DockerClient as the run options and the exit checks use it."""

    def __init__(self, images=None, containers=None, api=None):
        self.api = api
        self.images = types.SimpleNamespace(get=lambda name: types.SimpleNamespace(attrs=images[name]))
        self.containers = types.SimpleNamespace(get=lambda docker_id: types.SimpleNamespace(
            attrs=containers[docker_id]))

    def info(self):
        return {"NCPU": 4, "CgroupDriver": "systemd"}


@pytest.fixture
def fake_ministack(monkeypatch):
    """ecs_fidelity with a stand-in for ministack.services.ecs: MiniStack's own run options are the
    definition's command and its mountPoints as binds, as 1.5.33's _build_run_kwargs gives them."""
    def ministack_run_kwargs(cdef, td, env, *args):
        return {"command": cdef.get("command"), "volumes": ["/data:/mnt/data:ro"], "labels": {}}
    docker = _FakeDockerClient(images={"task:1": {"Config": {"Entrypoint": ["tini", "--"], "Cmd": ["python3"]}}})
    ecs = types.SimpleNamespace(_get_docker=lambda: docker, resource_lock=lambda *key: contextlib.nullcontext())
    monkeypatch.setattr(fidelity, "ecs", ecs)
    monkeypatch.setitem(fidelity._original, "_build_run_kwargs", ministack_run_kwargs)
    monkeypatch.setattr(fidelity, "_host_cpus", None)
    monkeypatch.setattr(fidelity, "_cgroup_driver_name", None)
    monkeypatch.setenv("ECS_TOOLS_VOLUME", "sbx_ecs-tools")
    return ecs


def _run_kwargs(cdef):
    return fidelity._build_run_kwargs(cdef, {}, {}, {}, "net", False, "0123456789abcdef",
                                      "arn", "10.0.0.2", "cluster")


def test_a_container_is_started_under_ecs_stdio_with_its_volume_added_read_only(fake_ministack):
    kwargs = _run_kwargs({"name": "app", "image": "task:1", "command": ["python3", "-c", "print(1)"],
                          "linuxParameters": {"initProcessEnabled": True}})
    assert kwargs["entrypoint"] == WRAPPER
    assert kwargs["command"] == ["tini", "--", "python3", "-c", "print(1)"]
    assert kwargs["volumes"] == ["/data:/mnt/data:ro", "sbx_ecs-tools:/.ecs-sandbox:ro"]
    assert kwargs["init"] is True   # docker-init runs ecs-stdio, which execs the command


def test_without_the_volume_a_container_runs_its_command_as_it_is(fake_ministack, monkeypatch):
    monkeypatch.delenv("ECS_TOOLS_VOLUME")
    kwargs = _run_kwargs({"name": "app", "image": "task:1", "entryPoint": ["/bin/sh", "-c"], "command": ["x"]})
    assert kwargs["entrypoint"] == ["/bin/sh", "-c"] and kwargs["command"] == ["x"]
    assert kwargs["volumes"] == ["/data:/mnt/data:ro"]


def test_an_image_not_pulled_yet_runs_unwrapped(fake_ministack):
    kwargs = _run_kwargs({"name": "app", "image": "repo@sha256:abc", "command": ["true"]})
    assert "entrypoint" not in kwargs and kwargs["command"] == ["true"]


def test_a_command_override_is_what_runs_under_ecs_stdio(fake_ministack):
    started = []
    task = {"taskArn": "arn:aws:ecs:us-east-1:000000000000:task/c/0123456789abcdef", "clusterArn": "c",
            "containers": [{"name": "app"}], "_fidelity_ids": {}}
    vars(fake_ministack).update(
        _container_override_for=lambda overrides, name: next(o for o in overrides if o["name"] == name),
        _resolve_container_secrets=lambda cdef: {}, _register_metadata=lambda *args: "token",
        _task_is_active=lambda arn, t: True, _build_run_kwargs=fidelity._build_run_kwargs,
        _run_docker_container=lambda docker, cdef, kwargs, **options: started.append(kwargs) or
        types.SimpleNamespace(id="c0ffee"),
        _attach_started_container=lambda *args: True, _start_awslogs_forwarder=lambda *args: None)
    cdef = {"name": "app", "image": "task:1", "command": ["python3", "/app/run.py"]}
    assert fidelity._launch_container(task, {"containerDefinitions": [cdef]}, 0, cdef,
                                      [{"name": "app", "command": ["python3", "-c", "print(2)"]}],
                                      fake_ministack._get_docker(), None, "net", "10.0.0.2")
    assert [(k["entrypoint"], k["command"]) for k in started] == [
        (WRAPPER, ["tini", "--", "python3", "-c", "print(2)"])]


@pytest.mark.parametrize("entrypoint, code, report, outcome", [
    (WRAPPER, 127, NOT_FOUND, "start failure"),
    (WRAPPER, 126, 'exec: "/app/run.sh": permission denied', "start failure"),
    (WRAPPER, 127, None, "exit"),                 # a shell whose last command was not found
    (["/bin/sh", "-c"], 127, NOT_FOUND, "exit"),  # not under ecs-stdio: its own stderr
    (WRAPPER, 1, NOT_FOUND, "exit"),
])
def test_an_exit_is_a_start_failure_only_when_ecs_stdio_reported_one(fake_ministack, monkeypatch,
                                                                    entrypoint, code, report, outcome):
    frames = [(1, stamped(b"some output\n"))] + ([(2, stamped(report.encode() + b"\n"))] if report else [])
    docker = _FakeDockerClient(api=_FakeDockerAPI(*frames), containers={"c0ffee": {
        "Config": {"Entrypoint": entrypoint}, "State": {"Status": "exited", "ExitCode": code}}})
    vars(fake_ministack).update(_task_is_active=lambda arn, t: True)
    stops = []
    monkeypatch.setattr(fidelity, "_stop_in_background", lambda task, reason, code: stops.append((reason, code)))
    task = {"taskArn": "arn:aws:ecs:us-east-1:000000000000:task/c/0123456789abcdef", "lastStatus": "RUNNING",
            "_fidelity_ids": {"app": "c0ffee"}, "_fidelity_cdefs": {"app": {"name": "app"}},
            "containers": [{"name": "app", "lastStatus": "RUNNING"}]}

    fidelity._maybe_mark_stopped(task, docker)
    fidelity._maybe_mark_stopped(task, docker)   # the report is read once

    app = task["containers"][0]
    if outcome == "start failure":
        reason = fidelity.start_failure_reason(report)
        assert app == {"name": "app", "lastStatus": "STOPPED", "reason": reason}   # no exitCode, as ECS
        assert stops == [(reason, "TaskFailedToStart")] * 2
        assert [params["stdout"] for _, params in docker.api.asked] == [0]
    else:
        assert app == {"name": "app", "lastStatus": "STOPPED", "exitCode": code}
        assert stops == [("Essential container in task exited", "EssentialContainerExited")] * 2


def test_the_stop_reports_a_container_that_never_started_without_an_exit_code(fake_ministack):
    arn = "arn:aws:ecs:us-east-1:000000000000:task/c/0123456789abcdef"
    reason = fidelity.start_failure_reason(NOT_FOUND)
    states = {"c0ffee": {"Status": "exited", "ExitCode": 127}, "cafe": {"Status": "exited", "ExitCode": 0}}
    docker = types.SimpleNamespace(containers=types.SimpleNamespace(get=lambda docker_id: types.SimpleNamespace(
        status="exited", attrs={"State": states[docker_id]}, reload=lambda: None)))
    task = {"taskArn": arn, "lastStatus": "STOPPING", "stopCode": "TaskFailedToStart",
            "_fidelity_ids": {"app": "c0ffee", "sidecar": "cafe"}, "_fidelity_start_failures": {"app": reason},
            "containers": [{"name": "app", "lastStatus": "STOPPED", "reason": reason},
                           {"name": "sidecar", "lastStatus": "RUNNING"}]}
    metadata = types.SimpleNamespace(set_task_status=lambda *a, **k: None, set_all_container_status=lambda *a: None)
    vars(fake_ministack).update(
        _get_docker=lambda: docker, _tasks={arn: task}, _STOP_SEQUENCE=(("DEACTIVATING", False),
        ("STOPPING", False), ("DEPROVISIONING", True), ("STOPPED", True)), _bump_task_version=lambda t: None,
        _iso=lambda: "now", ecs_metadata=metadata, _cluster_name_from_arn=lambda a: None,
        _awslogs_config=lambda *args: None, _record_service_task_failure=lambda t: None)

    assert fidelity._finish_stop(arn, task)
    assert task["containers"] == [{"name": "app", "lastStatus": "STOPPED", "reason": reason},
                                  {"name": "sidecar", "lastStatus": "STOPPED", "exitCode": 0}]


# With ministack installed (the emulator's image, or a venv with localstack/requirements.txt): the
# forwarder, the completion at stop and MiniStack's Logs store together.

class _FakeDockerAPI:
    """docker-py's APIClient as _docker_log_frames uses it, serving one container's log."""

    def __init__(self, *frames):
        self.body, self.asked = _multiplexed(*frames), []

    def _url(self, path, *args):
        return path.format(*args)

    def _get(self, url, stream, params):
        self.asked.append((url, params))
        return types.SimpleNamespace(raw=io.BytesIO(self.body), close=lambda: None)

    def _raise_for_status(self, response):
        pass

    def _get_raw_response_socket(self, response):
        return None

    def _disable_socket_timeout(self, socket):
        pass


@pytest.fixture
def ministack_logs(monkeypatch):
    ecs = pytest.importorskip("ministack.services.ecs", reason="ministack is not installed in this venv")
    from ministack.services import cloudwatch_logs

    monkeypatch.setattr(fidelity, "ecs", ecs)
    arn = f"arn:aws:ecs:us-east-1:000000000000:task/unit/{uuid.uuid4().hex}"
    cdef = {"name": "app", "logConfiguration": {"logDriver": "awslogs", "options": {
        "awslogs-group": f"/unit/{uuid.uuid4().hex}", "awslogs-stream-prefix": "ecs",
        "awslogs-create-group": "true"}}}
    config = ecs._awslogs_config(cdef, arn.rsplit("/", 1)[-1], "c0ffee")

    def stored():
        with ecs.request_scope("000000000000", "us-east-1"):
            status, _, body = cloudwatch_logs._get_log_events({
                "logGroupName": config["group"], "logStreamName": config["stream"], "startFromHead": True})
        assert status == 200, body
        return [(e["timestamp"], e["message"]) for e in json.loads(body)["events"]]
    return types.SimpleNamespace(arn=arn, cdef=cdef, config=config, stored=stored)


ISSUE_FRAMES = [(1, stamped(f"out {i}\n".encode(), 10_000 + i)) for i in range(1, 32)] + [
    (2, stamped(b"err\n", 5_000))]


def _container(api, entrypoint=None):
    """docker-py's Container as the forwarder uses it: its id, client and ``docker inspect``."""
    return types.SimpleNamespace(id="c0ffee", client=types.SimpleNamespace(api=api),
                                 attrs={"Config": {"Entrypoint": entrypoint}})


def _docker(api, entrypoint=None):
    """docker-py's DockerClient as the stop uses it, for the one container c0ffee."""
    return types.SimpleNamespace(api=api, containers=types.SimpleNamespace(
        get=lambda docker_id: _container(api, entrypoint)))


def test_the_forwarder_stores_what_docker_logged_in_the_order_written(ministack_logs):
    api = _FakeDockerAPI(*ISSUE_FRAMES)
    container = _container(api)
    fidelity._forward_awslogs(container, ministack_logs.config, "000000000000", "us-east-1")

    assert ministack_logs.stored() == [(T0 // 1_000_000, m) for m in ["err"] + [f"out {i}" for i in range(1, 32)]]
    assert api.asked == [("/containers/{0}/logs".format("c0ffee"), {
        "stdout": 1, "stderr": 1, "timestamps": 1, "follow": 1, "tail": "all"})]


def test_the_stop_adds_what_the_forwarder_missed_once_and_in_place(ministack_logs):
    # The forwarder stored ten stdout lines; the stderr line Docker logged after all of them was
    # stamped a millisecond earlier, so the store merges it in before them. (Within one millisecond
    # a batch stored later goes after what is there: why the forwarder waits for a quiet moment.)
    frames = [(1, stamped(f"out {i}\n".encode(), 1_000_000 + i)) for i in range(1, 32)] + [
        (2, stamped(b"err\n", 5_000)), (1, stamped(b"after\n", 0, "2024-05-01T12:00:01"))]
    config, key = ministack_logs.config, (ministack_logs.config["group"], ministack_logs.config["stream"])
    forwarded = list(fidelity.awslogs_events(frames[:10]))
    with fidelity.ecs.request_scope("000000000000", "us-east-1"):
        fidelity.ecs._ensure_awslogs_stream(config)
        fidelity._put_awslogs_events(config, forwarded)
    fidelity._emitted[key] = len(forwarded)

    docker = _docker(_FakeDockerAPI(*frames))
    fidelity._complete_awslogs(ministack_logs.arn, {"app": "c0ffee"}, {"app": ministack_logs.cdef}, docker)

    ms = T0 // 1_000_000
    assert ministack_logs.stored() == [(ms, "err")] + [(ms + 1, f"out {i}") for i in range(1, 32)] + [
        (ms + 1000, "after")]
    assert docker.api.asked[0][1]["follow"] == 0
    # A forwarder still running after the stop stores nothing more.
    container = _container(_FakeDockerAPI(*frames))
    fidelity._forward_awslogs(container, config, "000000000000", "us-east-1")
    assert len(ministack_logs.stored()) == 33


def test_under_ecs_stdio_the_log_is_stdout_alone_and_the_report_no_event(ministack_logs):
    # The forwarder and the completion at stop read the same stream: what the forwarder stored is a
    # first part of what the completion reads, so it adds only the rest.
    api = _FakeDockerAPI((1, stamped(b"one\n", 1)), (1, stamped(b"two\n", 2)))
    fidelity._forward_awslogs(_container(api, WRAPPER), ministack_logs.config, "000000000000", "us-east-1")
    docker = _docker(_FakeDockerAPI((1, stamped(b"one\n", 1)), (1, stamped(b"two\n", 2))), WRAPPER)
    fidelity._complete_awslogs(ministack_logs.arn, {"app": "c0ffee"}, {"app": ministack_logs.cdef}, docker)

    assert [m for _, m in ministack_logs.stored()] == ["one", "two"]
    assert [(params["stdout"], params["stderr"]) for _, params in api.asked + docker.api.asked] == [(1, 0), (1, 0)]


def test_a_docker_event_wakes_only_the_watcher_of_that_container():
    import threading

    hold = threading.Event()

    class Api:
        def events(self, decode, filters):
            assert filters == {"type": "container"}
            yield {"Type": "container", "Action": "die", "id": "aaa"}
            yield {"Type": "network", "Action": "disconnect", "id": "bbb"}
            hold.wait()  # the stream stays open

    events = fidelity.ContainerEvents()
    a, b = threading.Event(), threading.Event()
    with events._lock:  # registered before the stream starts, so its first event finds them
        events._waiters.update({"bbb": b})
    events.watch(["aaa"], a, types.SimpleNamespace(api=Api()))
    assert a.wait(5)
    assert not b.is_set()
    events.forget(["aaa", "bbb"])
    events.wake({"Type": "container", "id": "aaa"})  # forgotten: nobody to wake, no error
    hold.set()
