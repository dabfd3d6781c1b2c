"""From the host, as the emulator's root key: no task definition that reaches into the host registers
(on any launch type), each refused with ECS's ClientException and a sentence naming the option and
ECS_ALLOW_HOST_ACCESS; a definition that stays inside Docker's defaults registers.

Runs against the sandbox as it is: with ECS_ALLOW_HOST_ACCESS=true the refusals skip, since the
emulator then registers these. The last test brings the sandbox up with ECS_ALLOW_HOST_ACCESS=true,
runs an EC2 task in the host's PID and network namespaces with added capabilities, and sees what an
EC2 instance's task would see; then brings the sandbox back as it was."""
from __future__ import annotations

import uuid

import botocore.exceptions
import pytest

from sandbox.core.ecs_rules import allows_host_access
from sandbox.core.poll import wait_until
from sandbox.testing.commands import sandbox_command

pytestmark = pytest.mark.e2e


def container(**extra):
    # memory: what ECS needs of a container on EC2 without a task-level memory.
    return {"name": "app", "image": "sandbox/task:1.0", "essential": True, "command": ["true"], "memory": 64,
            **extra}


REFUSED = {
    # id: (RegisterTaskDefinition fields besides family and requiresCompatibilities, words the refusal says)
    "privileged": ({"containerDefinitions": [container(privileged=True)]}, "container 'app' is privileged"),
    "host-volume": ({"containerDefinitions": [container()], "volumes": [{"name": "root", "host": {"sourcePath": "/"}}]},
                    "volume 'root' mounts the host path '/'"),
    "bind-volume": ({"containerDefinitions": [container()], "volumes": [{"name": "etc", "dockerVolumeConfiguration": {
        "scope": "task", "driver": "local", "driverOpts": {"type": "none", "o": "bind", "device": "/etc"}}}]},
        "volume 'etc' mounts the host path '/etc'"),
    "pidMode-host": ({"containerDefinitions": [container()], "pidMode": "host"}, "pidMode is 'host'"),
    "ipcMode-host": ({"containerDefinitions": [container()], "ipcMode": "host"}, "ipcMode is 'host'"),
    "networkMode-host": ({"containerDefinitions": [container()], "networkMode": "host"}, "networkMode is 'host'"),
    "cap-SYS_ADMIN": ({"containerDefinitions": [container(linuxParameters={"capabilities": {"add": ["SYS_ADMIN"]}})]},
                      "container 'app' adds Linux capability SYS_ADMIN"),
    "cap-NET_ADMIN": ({"containerDefinitions": [container(linuxParameters={"capabilities": {"add": ["NET_ADMIN"]}})]},
                      "adds Linux capability NET_ADMIN"),
    "cap-ALL": ({"containerDefinitions": [container(linuxParameters={"capabilities": {"add": ["ALL"]}})]},
                "adds Linux capability ALL"),
    "device": ({"containerDefinitions": [container(linuxParameters={"devices": [{"hostPath": "/dev/fuse"}]})]},
               "host device '/dev/fuse'"),
    "seccomp-unconfined": ({"containerDefinitions": [container(dockerSecurityOptions=["seccomp:unconfined"])]},
                           "dockerSecurityOptions 'seccomp:unconfined'"),
    "apparmor-unconfined": ({"containerDefinitions": [container(dockerSecurityOptions=["apparmor=unconfined"])]},
                            "dockerSecurityOptions 'apparmor=unconfined'"),
    "label-disable": ({"containerDefinitions": [container(dockerSecurityOptions=["label:disable"])]},
                      "dockerSecurityOptions 'label:disable'"),
    "systempaths-unconfined": ({"containerDefinitions": [container(dockerSecurityOptions=["systempaths=unconfined"])]},
                               "dockerSecurityOptions 'systempaths=unconfined'"),
    "sysctl-machine": ({"containerDefinitions": [container(systemControls=[
        {"namespace": "kernel.core_pattern", "value": "|/tmp/x"}])]}, "systemControls 'kernel.core_pattern'"),
    "sysctl-net-with-host-network": ({"networkMode": "host", "containerDefinitions": [container(systemControls=[
        {"namespace": "net.ipv4.ip_forward", "value": "1"}])]}, "systemControls 'net.ipv4.ip_forward'"),
}


@pytest.fixture(scope="module")
def ecs(sandbox, aws_session):
    if allows_host_access(sandbox.settings.get("ECS_ALLOW_HOST_ACCESS")):
        pytest.skip("ECS_ALLOW_HOST_ACCESS=true: the emulator registers tasks that reach into the host")
    return aws_session.client("ecs")


@pytest.mark.parametrize("launch_type", ["EC2", "EXTERNAL"])
@pytest.mark.parametrize("option", list(REFUSED))
def test_an_option_that_reaches_into_the_host_is_refused_at_registration(ecs, option, launch_type):
    fields, words = REFUSED[option]
    family = f"host-access-{uuid.uuid4().hex[:8]}"
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        ecs.register_task_definition(family=family, requiresCompatibilities=[launch_type], **fields)
    error = refused.value.response["Error"]
    assert error["Code"] == "ClientException", refused.value.response
    assert words in error["Message"], error["Message"]
    assert "Set ECS_ALLOW_HOST_ACCESS=true in .env" in error["Message"] and "unsafe" in error["Message"]
    assert not ecs.list_task_definitions(familyPrefix=family)["taskDefinitionArns"]


def test_dockers_default_capabilities_and_namespaced_sysctls_register(ecs):
    family = f"host-access-{uuid.uuid4().hex[:8]}"
    arn = ecs.register_task_definition(
        family=family, requiresCompatibilities=["EC2"], networkMode="bridge", pidMode="task", ipcMode="task",
        containerDefinitions=[container(
            linuxParameters={"capabilities": {"add": ["NET_BIND_SERVICE", "CHOWN"], "drop": ["ALL"]},
                             "sharedMemorySize": 64, "initProcessEnabled": True},
            dockerSecurityOptions=["no-new-privileges"],
            systemControls=[{"namespace": "net.ipv4.tcp_keepalive_time", "value": "60"},
                            {"namespace": "kernel.shmmax", "value": "68719476736"}])],
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.deregister_task_definition(taskDefinition=arn)


# What a task sees of the machine: PID 1's name, the network interfaces, its effective capabilities.
HOST_VIEW = "cat /proc/1/comm; ls /sys/class/net | sort | tr '\\n' ' '; echo; grep CapEff /proc/self/status"
CAP_NET_ADMIN, CAP_SYS_ADMIN = 12, 21


def machine_pid1() -> str:
    with open("/proc/1/comm") as comm:
        return comm.read().strip()


@pytest.mark.replaces_sandbox
def test_with_host_access_allowed_the_ec2_options_run_as_on_ec2(sandbox, aws_session):
    before = sandbox.settings.get("ECS_ALLOW_HOST_ACCESS", "false") or "false"
    sandbox_command("up", {"ECS_ALLOW_HOST_ACCESS": "true"})
    try:
        ecs, logs = aws_session.client("ecs"), aws_session.client("logs")
        family = f"host-access-{uuid.uuid4().hex[:8]}"
        arn = ecs.register_task_definition(
            family=family, requiresCompatibilities=["EC2"], networkMode="host", pidMode="host",
            containerDefinitions=[container(
                entryPoint=["/bin/sh", "-c"], command=[HOST_VIEW],
                linuxParameters={"capabilities": {"add": ["SYS_ADMIN", "NET_ADMIN"]}},
                logConfiguration={"logDriver": "awslogs", "options": {
                    "awslogs-group": "/ecs/sandbox", "awslogs-region": "us-east-1", "awslogs-stream-prefix": family}})],
        )["taskDefinition"]["taskDefinitionArn"]
        task = ecs.run_task(cluster="sandbox", taskDefinition=arn, launchType="EC2")["tasks"][0]
        stopped = wait_until(lambda: (lambda t: t if t["lastStatus"] == "STOPPED" else None)(
            ecs.describe_tasks(cluster="sandbox", tasks=[task["taskArn"]])["tasks"][0]),
            timeout=120, interval=1, what="the EC2 task to stop")
        lines = [e["message"] for e in logs.get_log_events(
            logGroupName="/ecs/sandbox", logStreamName=f"{family}/app/{task['taskArn'].rsplit('/', 1)[-1]}",
            startFromHead=True)["events"]]
        assert stopped["containers"][0].get("exitCode") == 0, (stopped, lines)
        assert lines[0] == machine_pid1(), lines  # the machine's PID 1, not the container's shell
        # The machine's network interfaces (its Docker bridges), not a container's eth0 and lo.
        seen = set(lines[1].split())
        assert "docker0" in seen and any(name.startswith("br-") for name in seen), lines
        capabilities = int(lines[2].split()[1], 16)
        assert capabilities & (1 << CAP_SYS_ADMIN) and capabilities & (1 << CAP_NET_ADMIN), lines
        ecs.deregister_task_definition(taskDefinition=arn)
    finally:
        sandbox_command("up", {"ECS_ALLOW_HOST_ACCESS": before})
