"""End-to-end: ECS RunTask/StopTask/DescribeTasks against the patched MiniStack.

Every test runs real containers through the emulator's Docker socket and
asserts what ECS would report. Uses the sandbox's emulator (the aws_session
fixture) and a local image with python3, /bin/sh and procps (SANDBOX_TASK_IMAGE).
"""

import functools
import os
import time
import uuid

import pytest

from sandbox.core.poll import wait_until

pytestmark = pytest.mark.e2e

IMAGE = os.environ.get("SANDBOX_TASK_IMAGE", "sandbox/task:1.0")
REGION = "us-east-1"
OOM_REASON = "OutOfMemoryError: Container killed due to memory usage"


@pytest.fixture(scope="module")
def ecs(aws_session):
    return aws_session.client("ecs", region_name=REGION)


@pytest.fixture(scope="module")
def logs(aws_session):
    return aws_session.client("logs", region_name=REGION)


# Task states change within a second, and several tests time how fast: poll often; a timeout fails the test.
poll = functools.partial(wait_until, interval=0.25, error=pytest.fail.Exception)


class TaskBox:
    """One uniquely named cluster, task family and log group for one test."""

    def __init__(self, ecs, logs):
        self.ecs, self.logs = ecs, logs
        self.name = f"fidelity-{uuid.uuid4().hex[:10]}"
        self.group = f"/fidelity/{self.name}"
        self.task_arns = []
        self.td_arns = []
        ecs.create_cluster(clusterName=self.name)
        logs.create_log_group(logGroupName=self.group)

    def container(self, name, **fields):
        # On EC2 a container without a task-level memory needs its own (ECS refuses it otherwise).
        cdef = {
            "name": name, "image": IMAGE, "essential": True, "memoryReservation": 32,
            "logConfiguration": {"logDriver": "awslogs", "options": {
                "awslogs-group": self.group, "awslogs-region": REGION,
                "awslogs-stream-prefix": "ecs"}},
        }
        cdef.update(fields)
        return cdef

    def register(self, *containers, **task_fields):
        arn = self.ecs.register_task_definition(
            family=self.name, containerDefinitions=list(containers),
            **task_fields)["taskDefinition"]["taskDefinitionArn"]
        self.td_arns.append(arn)
        return arn

    def run(self, td_arn, overrides=None):
        kwargs = {"overrides": overrides} if overrides else {}
        response = self.ecs.run_task(cluster=self.name, taskDefinition=td_arn, **kwargs)
        assert not response["failures"], response["failures"]
        arn = response["tasks"][0]["taskArn"]
        self.task_arns.append(arn)
        return arn

    def describe(self, task_arn):
        return self.ecs.describe_tasks(cluster=self.name, tasks=[task_arn])["tasks"][0]

    def wait_status(self, task_arn, status, timeout=90):
        return poll(lambda: (lambda t: t if t["lastStatus"] == status else None)(
            self.describe(task_arn)), timeout=timeout, what=f"task {status}")

    def run_to_stop(self, td_arn, overrides=None, timeout=90):
        return self.wait_status(self.run(td_arn, overrides), "STOPPED", timeout)

    def log_events(self, task_arn, container):
        stream = f"ecs/{container}/{task_arn.rsplit('/', 1)[-1]}"
        try:
            return self.logs.get_log_events(
                logGroupName=self.group, logStreamName=stream,
                startFromHead=True)["events"]
        except self.logs.exceptions.ResourceNotFoundException:
            return []

    def log_lines(self, task_arn, container):
        return [e["message"] for e in self.log_events(task_arn, container)]

    def wait_log(self, task_arn, container, text, timeout=30):
        return poll(lambda: [line for line in self.log_lines(task_arn, container)
                             if text in line], timeout=timeout, what=f"log line {text!r}")

    def close(self):
        for arn in self.task_arns:
            try:
                task = self.describe(arn)
                if task["lastStatus"] != "STOPPED":
                    self.ecs.stop_task(cluster=self.name, task=arn, reason="test cleanup")
                    self.wait_status(arn, "STOPPED", timeout=150)
            except Exception:
                pass
        for arn in self.td_arns:
            try:
                self.ecs.deregister_task_definition(taskDefinition=arn)
            except Exception:
                pass
        for call in (lambda: self.ecs.delete_cluster(cluster=self.name),
                     lambda: self.logs.delete_log_group(logGroupName=self.group)):
            try:
                call()
            except Exception:
                pass
        _remove_leftover_containers(self.name)


def _remove_leftover_containers(cluster_name):
    """Best effort, and only containers of this test's cluster."""
    try:
        import docker

        client = docker.from_env(timeout=10)
        for container in client.containers.list(all=True, filters={"label": "ministack=ecs"}):
            if container.labels.get("com.amazonaws.ecs.cluster", "").endswith(
                    f":cluster/{cluster_name}"):
                container.remove(force=True)
    except Exception:
        pass


@pytest.fixture
def box(ecs, logs):
    """This test's own cluster, family and log group (the plugin's `sandbox` is the whole sandbox)."""
    made = TaskBox(ecs, logs)
    yield made
    made.close()


def containers_by_name(task):
    return {c["name"]: c for c in task["containers"]}


def sh(script):
    """entryPoint + command the way ECS task definitions run shell scripts."""
    return {"entryPoint": ["/bin/sh", "-c"], "command": [script]}


def py(code):
    return {"entryPoint": ["python3", "-c"], "command": [code]}


# ── 1. entryPoint, command, workingDirectory, user, environment ─────────────

def test_shell_entrypoint_workdir_user_and_environment(box):
    td = box.register(box.container(
        "app", workingDirectory="/tmp", user="nobody",
        environment=[{"name": "GREETING", "value": "from-definition"},
                     {"name": "KEPT", "value": "kept"}],
        **sh('echo "pwd=$(pwd) user=$(id -un) greeting=$GREETING kept=$KEPT"; exit 3')))
    task = box.run_to_stop(td, overrides={"containerOverrides": [{
        "name": "app", "environment": [{"name": "GREETING", "value": "from-override"}]}]})

    app = containers_by_name(task)["app"]
    assert app["exitCode"] == 3
    assert task["stopCode"] == "EssentialContainerExited"
    assert task["stoppedReason"] == "Essential container in task exited"
    assert box.log_lines(task["taskArn"], "app") == [
        "pwd=/tmp user=nobody greeting=from-override kept=kept"]


def test_command_override_replaces_definition_command(box):
    td = box.register(box.container("app", **sh("echo definition; exit 1")))
    task = box.run_to_stop(td, overrides={"containerOverrides": [{
        "name": "app", "command": ["echo overridden by $0 && exit 0"]}]})

    assert containers_by_name(task)["app"]["exitCode"] == 0
    assert box.log_lines(task["taskArn"], "app") == ["overridden by /bin/sh"]


def test_image_entrypoint_is_kept_without_entrypoint(box):
    # No entryPoint: the command is exec'd as-is, as on ECS.
    td = box.register(box.container(
        "app", command=["python3", "-c", "print('exec form'); raise SystemExit(4)"]))
    task = box.run_to_stop(td)
    assert containers_by_name(task)["app"]["exitCode"] == 4
    assert box.log_lines(task["taskArn"], "app") == ["exec form"]


def _probe(lines):
    return dict(line.split("=", 1) for line in lines if "=" in line)


METADATA_PROBE = """
import json, os, urllib.request
meta = json.load(urllib.request.urlopen(os.environ["ECS_CONTAINER_METADATA_URI_V4"], timeout=10))
print("docker_id=" + meta["DockerId"][:12])
req = urllib.request.Request(os.environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"],
    headers={"Authorization": os.environ["AWS_CONTAINER_AUTHORIZATION_TOKEN"]})
creds = json.load(urllib.request.urlopen(req, timeout=10))
print("has_key=" + str(bool(creds.get("AccessKeyId"))))
print("role=" + creds["RoleArn"])
"""
NO_ROLE_PROBE = """
import os
print("credentials_uri=" + str("AWS_CONTAINER_CREDENTIALS_FULL_URI" in os.environ))
"""
TASK_ROLE = "arn:aws:iam::000000000000:role/ecs-task-data"


def test_metadata_and_credentials_still_injected_with_entrypoint(box):
    # MiniStack's own env injection survives the entryPoint/user changes.
    td = box.register(box.container(
        "app", user="nobody", workingDirectory="/tmp", **py(METADATA_PROBE)), taskRoleArn=TASK_ROLE)
    task = box.run_to_stop(td)
    app = containers_by_name(task)["app"]
    probe = _probe(box.log_lines(task["taskArn"], "app"))
    assert app["exitCode"] == 0, box.log_lines(task["taskArn"], "app")
    assert probe == {"docker_id": app["runtimeId"][:12], "has_key": "True", "role": TASK_ROLE}


def test_a_task_without_a_role_gets_no_credentials_endpoint(box):
    # As on ECS: the SDK in such a task finds no credentials instead of someone else's.
    task = box.run_to_stop(box.register(box.container("app", **py(NO_ROLE_PROBE))))
    assert _probe(box.log_lines(task["taskArn"], "app")) == {"credentials_uri": "False"}


# ── 2. cpu / memory limits and OOM ──────────────────────────────────────────

CGROUP_PROBE = """
import os
ROOT = "/sys/fs/cgroup/"
def read(v1, v2):
    for p in (ROOT + v1, ROOT + v2):
        if os.path.exists(p):
            return open(p).read().strip()
    return "none"
print("mem=" + read("memory/memory.limit_in_bytes", "memory.max"))
print("soft=" + read("memory/memory.soft_limit_in_bytes", "memory.low"))
print("swap=" + read("memory/memory.memsw.limit_in_bytes", "memory.swap.max"))
print("shares=" + read("cpu/cpu.shares", "cpu.weight"))
print("quota=" + read("cpu/cpu.cfs_quota_us", "cpu.max"))
"""


def test_container_cpu_and_memory_limits_reach_the_cgroup(box):
    td = box.register(
        box.container("app", cpu=256, memory=96, memoryReservation=48,
                          **py(CGROUP_PROBE)),
        cpu="512", memory="1024")
    task = box.run_to_stop(td)
    assert containers_by_name(task)["app"]["exitCode"] == 0

    probe = _probe(box.log_lines(task["taskArn"], "app"))
    assert probe["mem"] == str(96 * 1024 * 1024)
    assert probe["soft"] == str(48 * 1024 * 1024)
    if probe["swap"] != "none":                       # swap accounting enabled
        assert probe["swap"] in (str(96 * 1024 * 1024), "0")
    assert probe["shares"] in ("256", "10")           # v1 shares / v2 weight
    # Task cpu 512 units = half a CPU.
    assert probe["quota"] in ("50000", "50000 100000")


def test_task_memory_limits_a_container_without_its_own(box):
    td = box.register(box.container("app", **py(CGROUP_PROBE)),
                          cpu="256", memory="160")
    task = box.run_to_stop(td)
    probe = _probe(box.log_lines(task["taskArn"], "app"))
    assert probe["mem"] == str(160 * 1024 * 1024)
    assert probe["quota"] in ("25000", "25000 100000")


def test_container_over_its_memory_limit_is_oom_killed(box):
    td = box.register(box.container("app", memory=64, **py(
        "print('allocating', flush=True)\n"
        "blocks = [bytearray(16 * 1024 * 1024) for _ in range(32)]\n"
        "print('survived')")))
    task = box.run_to_stop(td)

    app = containers_by_name(task)["app"]
    assert app["exitCode"] == 137
    assert app["reason"] == OOM_REASON
    assert task["stopCode"] == "EssentialContainerExited"
    assert task["stoppedReason"] == "Essential container in task exited"
    assert "survived" not in box.log_lines(task["taskArn"], "app")


# ── 3. essential and dependsOn ──────────────────────────────────────────────

TRAP_TERM = "trap 'echo got TERM; exit 0' TERM; echo ready; sleep 300 & wait"


def test_non_essential_exit_does_not_stop_the_task(box):
    td = box.register(
        box.container("side", essential=False, **sh("echo side; exit 5")),
        box.container("app", **sh(TRAP_TERM)))
    arn = box.run(td)

    def side_stopped_while_task_runs():
        task = box.describe(arn)
        side = containers_by_name(task)["side"]
        return task if side["lastStatus"] == "STOPPED" and task["lastStatus"] == "RUNNING" else None

    task = poll(side_stopped_while_task_runs, timeout=60, what="side exited, task still RUNNING")
    assert containers_by_name(task)["side"]["exitCode"] == 5
    assert containers_by_name(task)["app"]["lastStatus"] == "RUNNING"
    assert task["desiredStatus"] == "RUNNING"

    box.ecs.stop_task(cluster=box.name, task=arn, reason="done")
    task = box.wait_status(arn, "STOPPED")
    assert task["stopCode"] == "UserInitiated"
    assert containers_by_name(task)["app"]["exitCode"] == 0
    assert containers_by_name(task)["side"]["exitCode"] == 5


def test_essential_exit_stops_the_other_containers(box):
    td = box.register(
        box.container("sidecar", essential=False, **sh(TRAP_TERM)),
        box.container("app", **sh("sleep 1; echo app done; exit 2")))
    start = time.monotonic()
    task = box.run_to_stop(td)

    containers = containers_by_name(task)
    assert task["stopCode"] == "EssentialContainerExited"
    assert task["stoppedReason"] == "Essential container in task exited"
    assert containers["app"]["exitCode"] == 2
    # The sidecar got SIGTERM and exited through its trap, well before the
    # 30 s default stopTimeout.
    assert containers["sidecar"]["exitCode"] == 0
    assert containers["sidecar"]["lastStatus"] == "STOPPED"
    assert time.monotonic() - start < 25
    assert box.log_lines(task["taskArn"], "sidecar")[-1] == "got TERM"


def _stamp(label):
    return py(f"import time; print('{label}', repr(time.time()), flush=True)")


def test_depends_on_start_complete_and_success_order_the_containers(box):
    td = box.register(
        # Listed first, but must wait for all three others.
        box.container("app", dependsOn=[
            {"containerName": "proxy", "condition": "START"},
            {"containerName": "migrate", "condition": "SUCCESS"},
            {"containerName": "warmup", "condition": "COMPLETE"}],
            **py("import time; print('app', repr(time.time()))")),
        box.container("proxy", essential=False, **sh(TRAP_TERM)),
        box.container("migrate", essential=False, **py(
            "import time; time.sleep(2); print('migrate', repr(time.time()))")),
        box.container("warmup", essential=False, **py(
            "import time; time.sleep(1); print('warmup', repr(time.time())); "
            "raise SystemExit(9)")))
    task = box.run_to_stop(td)

    def stamp(name):
        line = box.wait_log(task["taskArn"], name, name)[0]
        return float(line.split()[1])

    containers = containers_by_name(task)
    assert containers["app"]["exitCode"] == 0
    assert containers["migrate"]["exitCode"] == 0
    assert containers["warmup"]["exitCode"] == 9     # COMPLETE ignores the code
    assert containers["proxy"]["exitCode"] == 0      # stopped with the task
    assert stamp("app") >= stamp("migrate")
    assert stamp("app") >= stamp("warmup")
    assert task["stopCode"] == "EssentialContainerExited"


def test_dependent_container_waits_and_stop_task_stops_the_wait(box):
    td = box.register(
        box.container("init", essential=False, **sh(TRAP_TERM)),
        box.container("app", dependsOn=[
            {"containerName": "init", "condition": "COMPLETE"}],
            **sh("echo app must not run")))
    arn = box.run(td)
    box.wait_log(arn, "init", "ready")

    task = box.describe(arn)
    assert task["lastStatus"] != "RUNNING"
    assert containers_by_name(task)["app"]["lastStatus"] == "PENDING"
    assert containers_by_name(task)["init"]["lastStatus"] == "RUNNING"

    box.ecs.stop_task(cluster=box.name, task=arn, reason="not waiting")
    task = box.wait_status(arn, "STOPPED")
    assert task["stopCode"] == "UserInitiated"
    assert task["stoppedReason"] == "not waiting"
    assert containers_by_name(task)["init"]["exitCode"] == 0
    assert "exitCode" not in containers_by_name(task)["app"]
    assert box.log_lines(arn, "app") == []


def test_failed_success_dependency_stops_the_task(box):
    td = box.register(
        box.container("migrate", essential=False,
                          **sh("echo migration failed; exit 1")),
        box.container("app", dependsOn=[
            {"containerName": "migrate", "condition": "SUCCESS"}],
            **sh("echo app must not run")))
    task = box.run_to_stop(td)

    containers = containers_by_name(task)
    assert containers["migrate"]["exitCode"] == 1
    assert containers["app"]["lastStatus"] == "STOPPED"
    assert containers["app"]["reason"].startswith(
        "CannotStartContainerError: dependency graph:")
    assert "did not exit successfully" in containers["app"]["reason"]
    assert containers["app"]["exitCode"] == 143
    assert task["stopCode"] == "EssentialContainerExited"
    assert task["stoppedReason"] == "Essential container in task exited"
    assert box.log_lines(task["taskArn"], "app") == []


def test_depends_on_healthy_waits_for_the_docker_health_check(box):
    td = box.register(
        box.container(
            "db", essential=False,
            healthCheck={"command": ["CMD-SHELL", "test -f /tmp/ready"],
                         "interval": 5, "timeout": 2, "retries": 3},
            **sh("trap 'exit 0' TERM; sleep 2; "
                 "python3 -c 'import time; print(\"ready\", repr(time.time()))'; "
                 "touch /tmp/ready; sleep 300 & wait")),
        box.container("app", dependsOn=[
            {"containerName": "db", "condition": "HEALTHY"}],
            **sh(f"python3 -c 'import time; print(\"app\", repr(time.time()))'; {TRAP_TERM}")))
    arn = box.run(td)

    task = poll(lambda: (lambda t: t if t["lastStatus"] == "RUNNING" else None)(
        box.describe(arn)), timeout=60, what="task RUNNING")
    assert containers_by_name(task)["db"]["healthStatus"] == "HEALTHY"
    ready = float(box.wait_log(arn, "db", "ready")[0].split()[1])
    app = float(box.wait_log(arn, "app", "app")[0].split()[1])
    assert app > ready

    box.ecs.stop_task(cluster=box.name, task=arn)
    task = box.wait_status(arn, "STOPPED")
    assert {c["name"]: c["exitCode"] for c in task["containers"]} == {"db": 0, "app": 0}


# ── 4. StopTask: SIGTERM, stopTimeout, SIGKILL ─────────────────────────────

def _start_and_wait_ready(box, td):
    arn = box.run(td)
    box.wait_status(arn, "RUNNING")
    box.wait_log(arn, "app", "ready")
    return arn


def test_stop_task_sigterm_trapped_exits_cleanly(box):
    td = box.register(box.container("app", **sh(TRAP_TERM)))
    arn = _start_and_wait_ready(box, td)

    start = time.monotonic()
    response = box.ecs.stop_task(cluster=box.name, task=arn, reason="Stopped by test")
    assert response["task"]["desiredStatus"] == "STOPPED"
    task = box.wait_status(arn, "STOPPED")
    elapsed = time.monotonic() - start

    assert task["stopCode"] == "UserInitiated"
    assert task["stoppedReason"] == "Stopped by test"
    assert containers_by_name(task)["app"]["exitCode"] == 0
    assert elapsed < 10
    assert box.log_lines(arn, "app")[-1] == "got TERM"


def test_stop_task_kills_after_stop_timeout_when_sigterm_is_ignored(box):
    td = box.register(box.container(
        "app", stopTimeout=2,
        **sh("trap '' TERM; echo ready; while :; do sleep 1; done")))
    arn = _start_and_wait_ready(box, td)

    start = time.monotonic()
    box.ecs.stop_task(cluster=box.name, task=arn, reason="Stopped by test")
    task = box.wait_status(arn, "STOPPED")
    elapsed = time.monotonic() - start

    assert 2 <= elapsed < 10, elapsed
    assert containers_by_name(task)["app"]["exitCode"] == 137
    assert task["stopCode"] == "UserInitiated"
    assert task["stoppedReason"] == "Stopped by test"


def test_stop_task_sigterm_default_action_exits_143(box):
    # With an init process the command is not PID 1, so SIGTERM's default
    # action applies: killed by signal 15, exit code 128 + 15.
    td = box.register(box.container(
        "app", linuxParameters={"initProcessEnabled": True},
        **sh("echo ready; exec sleep 300")))
    arn = _start_and_wait_ready(box, td)

    start = time.monotonic()
    box.ecs.stop_task(cluster=box.name, task=arn)
    task = box.wait_status(arn, "STOPPED")

    assert containers_by_name(task)["app"]["exitCode"] == 143
    assert time.monotonic() - start < 10
    assert task["stopCode"] == "UserInitiated"


# ── 5. missing image or executable ──────────────────────────────────────────

def test_unpullable_image_fails_with_cannot_pull_container_error(box):
    image = f"fidelity-test/does-not-exist-{uuid.uuid4().hex[:8]}:latest"
    td = box.register(box.container("app", image=image, command=["true"]))
    task = box.run_to_stop(td, timeout=120)

    assert task["stopCode"] == "TaskFailedToStart"
    assert task["stoppedReason"].startswith("CannotPullContainerError:")
    app = containers_by_name(task)["app"]
    assert app["reason"].startswith("CannotPullContainerError:")
    assert app.get("exitCode") is None


# Docker refuses to start a container whose command it cannot execute; the emulator runs each command
# under ecs-stdio, which reports the same failure in the same words, and ECS's reason follows.
@pytest.mark.parametrize("fields, refusal", [
    ({"command": ["no-such-program", "--flag"]},
     'exec: "no-such-program": executable file not found in $PATH'),
    ({"entryPoint": ["/no/such/entrypoint"], "command": ["x"]},
     'exec: "/no/such/entrypoint": stat /no/such/entrypoint: no such file or directory'),
], ids=["command-not-in-path", "entrypoint-not-a-file"])
def test_a_command_that_cannot_be_executed_fails_the_task_to_start(box, fields, refusal):
    td = box.register(box.container("app", **fields))
    task = box.run_to_stop(td)

    reason = ("CannotStartContainerError: Error response from daemon: failed to create task for container: "
              "failed to create shim task: OCI runtime create failed: runc create failed: unable to start "
              f"container process: {refusal}: unknown")
    assert task["stopCode"] == "TaskFailedToStart"
    assert task["stoppedReason"] == reason
    app = containers_by_name(task)["app"]
    assert app["reason"] == reason
    assert app.get("exitCode") is None
    assert box.log_lines(task["taskArn"], "app") == []


# ── 6. awslogs: the order a task wrote in ───────────────────────────────────

# One line to stderr, then 31 to stdout, as fast as the shell writes them. Docker copies the two
# streams separately and can log the stderr line after stdout lines it preceded (its stamps, 1 ms
# apart or equal, say the same), so the emulator runs the command under ecs-stdio, one pipe for both;
# EcsRunTaskOperator pushes the last line as its XCom.
STDERR_THEN_STDOUT = ('echo "to stderr" >&2; i=1; '
                      'while [ $i -le 31 ]; do echo "to stdout $i"; i=$((i + 1)); done')


def test_log_events_keep_the_order_written_across_stderr_and_stdout(box):
    td = box.register(box.container("app", **sh(STDERR_THEN_STDOUT)))
    arns = [box.run(td) for _ in range(20)]   # started together: Docker logs under load
    expected = ["to stderr"] + [f"to stdout {i}" for i in range(1, 32)]

    wrong = {}
    for arn in arns:
        task = box.wait_status(arn, "STOPPED", timeout=120)
        assert containers_by_name(task)["app"]["exitCode"] == 0, task
        # STOPPED comes after every line is stored.
        events = box.log_events(arn, "app")
        if [e["message"] for e in events] != expected:
            wrong[arn.rsplit("/", 1)[-1]] = [f'{e["timestamp"]} {e["message"]}' for e in events]
    assert not wrong, (f"{len(wrong)} of {len(arns)} tasks' log events are not in the order written "
                       f"(first: to stderr, last: to stdout 31): {wrong}")
