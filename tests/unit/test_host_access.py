"""What reaches into the host (sandbox/core/ecs_rules.py's HOST_ACCESS_RULES): each rule, its
neighbours that stay inside the container, sandbox.yaml's validation of them, and how an allowed
definition's options reach `docker run` (localstack/ecs_fidelity.py)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

from sandbox.core.ecs_rules import (DOCKER_DEFAULT_CAPABILITIES, allows_host_access, host_access, host_sysctl,
                                        unconfines)
from sandbox.seeding.config import ConfigError, validate_config

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]

_spec = importlib.util.spec_from_file_location("ecs_fidelity", ROOT / "localstack" / "ecs_fidelity.py")
fidelity = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fidelity)


def td(container=None, **task):
    return {"family": "t", "requiresCompatibilities": ["EC2"],
            "containerDefinitions": [{"name": "app", "image": "x", **(container or {})}], **task}


def linux(**parameters):
    return {"linuxParameters": parameters}


REFUSED = [
    # (definition, field path, words of the sentence: the field and its value)
    (td({"privileged": True}), "containerDefinitions[0].privileged", "container 'app' is privileged"),
    (td(volumes=[{"name": "root", "host": {"sourcePath": "/"}}]), "volumes[0].host.sourcePath",
     "volume 'root' mounts the host path '/'"),
    (td(volumes=[{"name": "etc", "dockerVolumeConfiguration": {
        "driver": "local", "driverOpts": {"type": "none", "o": "bind", "device": "/etc"}}}]),
     "volumes[0].dockerVolumeConfiguration.driverOpts", "volume 'etc' mounts the host path '/etc'"),
    (td(volumes=[{"name": "disk", "dockerVolumeConfiguration": {
        "driverOpts": {"type": "ext4", "device": "/dev/sda1"}}}]),
     "volumes[0].dockerVolumeConfiguration.driverOpts", "host path '/dev/sda1'"),
    (td(volumes=[{"name": "o", "dockerVolumeConfiguration": {"driverOpts": {
        "type": "overlay", "o": "lowerdir=/var/lib,upperdir=/u,workdir=/w", "device": "overlay"}}}]),
     "volumes[0].dockerVolumeConfiguration.driverOpts", "host path '/var/lib'"),
    (td(pidMode="host"), "pidMode", "pidMode is 'host'"),
    (td(ipcMode="host"), "ipcMode", "ipcMode is 'host'"),
    (td(networkMode="host"), "networkMode", "networkMode is 'host'"),
    (td(linux(capabilities={"add": ["SYS_ADMIN"]})), "containerDefinitions[0].linuxParameters.capabilities.add",
     "container 'app' adds Linux capability SYS_ADMIN"),
    (td(linux(capabilities={"add": ["CHOWN", "cap_net_admin", "CAP_SYS_MODULE"]})),
     "containerDefinitions[0].linuxParameters.capabilities.add",
     "adds Linux capabilities cap_net_admin, CAP_SYS_MODULE"),
    (td(linux(capabilities={"add": ["ALL"]})), "containerDefinitions[0].linuxParameters.capabilities.add",
     "adds Linux capability ALL"),
    (td(linux(capabilities={"add": ["SYS_PTRACE"]})), "containerDefinitions[0].linuxParameters.capabilities.add",
     "adds Linux capability SYS_PTRACE"),
    (td(linux(devices=[{"hostPath": "/dev/null"}, {"hostPath": "/dev/fuse"}])),
     "containerDefinitions[0].linuxParameters.devices[1]", "container 'app' is given the host device '/dev/fuse'"),
    (td({"dockerSecurityOptions": ["seccomp:unconfined"]}), "containerDefinitions[0].dockerSecurityOptions[0]",
     "dockerSecurityOptions 'seccomp:unconfined' (it turns off Docker's seccomp filter)"),
    (td({"dockerSecurityOptions": ["no-new-privileges", "seccomp=unconfined"]}),
     "containerDefinitions[0].dockerSecurityOptions[1]", "'seccomp=unconfined'"),
    (td({"dockerSecurityOptions": ["apparmor:unconfined"]}), "containerDefinitions[0].dockerSecurityOptions[0]",
     "AppArmor"),
    (td({"dockerSecurityOptions": ["apparmor=unconfined"]}), "containerDefinitions[0].dockerSecurityOptions[0]",
     "AppArmor"),
    (td({"dockerSecurityOptions": ["label:disable"]}), "containerDefinitions[0].dockerSecurityOptions[0]", "SELinux"),
    (td({"dockerSecurityOptions": ["label=disable"]}), "containerDefinitions[0].dockerSecurityOptions[0]", "SELinux"),
    (td({"dockerSecurityOptions": ["label:type:spc_t"]}), "containerDefinitions[0].dockerSecurityOptions[0]",
     "SELinux"),
    (td({"dockerSecurityOptions": ["systempaths=unconfined"]}), "containerDefinitions[0].dockerSecurityOptions[0]",
     "unmasks the /proc and /sys paths"),
    (td({"systemControls": [{"namespace": "kernel.core_pattern", "value": "|/tmp/x"}]}),
     "containerDefinitions[0].systemControls[0]", "systemControls 'kernel.core_pattern' (not a sysctl Docker keeps"),
    (td({"systemControls": [{"namespace": "vm.overcommit_memory", "value": "1"}]}),
     "containerDefinitions[0].systemControls[0]", "'vm.overcommit_memory'"),
    (td({"systemControls": [{"namespace": "host", "value": "1"}]}), "containerDefinitions[0].systemControls[0]",
     "systemControls 'host'"),
]


@pytest.mark.parametrize("definition, field_path, words", REFUSED, ids=[r[1] + ":" + r[2][:30] for r in REFUSED])
def test_each_host_reaching_option_is_named_with_its_field_and_value(definition, field_path, words):
    found = dict(host_access(definition))
    assert field_path in found, found
    assert words in found[field_path]


def test_net_sysctls_are_the_machines_with_host_networking_and_ipc_ones_with_host_ipc():
    net = {"systemControls": [{"namespace": "net.ipv4.ip_forward", "value": "1"}]}
    ipc = {"systemControls": [{"namespace": "kernel.shmmax", "value": "1"}]}
    assert "containerDefinitions[0].systemControls[0]" in dict(host_access(td(net, networkMode="host")))
    assert "containerDefinitions[0].systemControls[0]" in dict(host_access(td(ipc, ipcMode="host")))
    assert "networkMode 'host'" in host_sysctl("net.ipv4.ip_forward", {"networkMode": "host"})


ACCEPTED = [
    td(),
    td({"privileged": False}),
    td(linux(capabilities={"add": sorted(DOCKER_DEFAULT_CAPABILITIES)})),
    td(linux(capabilities={"add": ["cap_chown", "Net_Bind_Service"], "drop": ["ALL", "SYS_ADMIN"]})),
    td(linux(capabilities={"drop": ["ALL"]}, sharedMemorySize=64, initProcessEnabled=True, maxSwap=0, swappiness=0,
             tmpfs=[{"containerPath": "/scratch", "size": 64, "mountOptions": ["exec"]}])),
    td(pidMode="task", ipcMode="task"),
    td(ipcMode="none"),
    td(pidMode="", ipcMode="", networkMode="bridge", volumes=[]),  # as MiniStack stores "not set"
    td(networkMode="awsvpc"),
    td(networkMode="none"),
    td({"ulimits": [{"name": "nofile", "softLimit": 65536, "hardLimit": 65536}], "user": "0",
        "readonlyRootFilesystem": True, "portMappings": [{"containerPort": 80, "hostPort": 8080}]}),
    td({"dockerSecurityOptions": ["no-new-privileges", "no-new-privileges:false", "no-new-privileges=true",
                                  "apparmor:docker-default", "label:user:USER", "label:level:s0:c100,c200",
                                  "label:type:container_t"]}),
    td({"systemControls": [{"namespace": n, "value": "1"} for n in (
        "net.ipv4.tcp_keepalive_time", "net/core/somaxconn", "kernel.msgmax", "kernel.msgmnb", "kernel.sem",
        "kernel.shmall", "kernel.shm_rmid_forced", "fs.mqueue.msg_max")]}, networkMode="awsvpc"),
    td({"mountPoints": [{"sourceVolume": "scratch", "containerPath": "/scratch"}]}, volumes=[
        {"name": "scratch", "host": {}},
        {"name": "named", "dockerVolumeConfiguration": {"scope": "task", "driver": "local"}},
        {"name": "tmp", "dockerVolumeConfiguration": {"driverOpts": {"type": "tmpfs", "device": "tmpfs",
                                                                    "o": "size=64m"}}},
        {"name": "nfs", "dockerVolumeConfiguration": {"driverOpts": {"type": "nfs", "o": "addr=10.0.0.2,rw",
                                                                    "device": ":/export/data"}}},
        {"name": "smb", "dockerVolumeConfiguration": {"driverOpts": {"type": "cifs", "device": "//server/share"}}},
        {"name": "efs", "efsVolumeConfiguration": {"fileSystemId": "fs-1234"}}]),
]


@pytest.mark.parametrize("definition", ACCEPTED)
def test_what_stays_inside_the_container_is_accepted(definition):
    assert host_access(definition) == []


def test_wrong_types_are_still_looked_into():
    # Validation reports the type; the emulator must not let a lone value through.
    assert host_access(td(linux(capabilities={"add": "SYS_ADMIN"}, devices={"hostPath": "/dev/mem"}))) == [
        ("containerDefinitions[0].linuxParameters.capabilities.add",
         "container 'app' adds Linux capability SYS_ADMIN (linuxParameters.capabilities.add, "
         "beyond Docker's defaults)"),
        ("containerDefinitions[0].linuxParameters.devices[0]",
         "container 'app' is given the host device '/dev/mem' (linuxParameters.devices)")]
    assert host_access({"containerDefinitions": "nope", "volumes": "nope"}) == []


def test_docker_security_options_in_both_of_dockers_forms():
    for option in ("seccomp=unconfined", "seccomp:unconfined", "SECCOMP=UNCONFINED"):
        assert unconfines(option) == "it turns off Docker's seccomp filter"
    assert unconfines("seccomp=/etc/profile.json") == "it replaces Docker's default seccomp filter"
    assert unconfines("apparmor=my-profile") and unconfines("label=type:unconfined_t")
    for option in ("no-new-privileges", "no-new-privileges:false", "apparmor=docker-default", "label=user:u",
                   "credentialspec:file://spec.json"):
        assert unconfines(option) is None, option


def test_the_setting_is_true_only_when_it_says_so():
    assert all(allows_host_access(v) for v in ("true", "TRUE", " yes", "1"))
    assert not any(allows_host_access(v) for v in (None, "", "false", "0", "no", "maybe"))


# ── sandbox.yaml: validation refuses the same, naming the field path and the setting ──────────────

@pytest.fixture
def raw():
    return yaml.safe_load((ROOT / "sandbox.yaml").read_text())


def ec2_definition(raw) -> dict:
    """The shipped Fargate definition, made an EC2 one (Fargate's own refusals are tested elsewhere)."""
    definition = next(d for d in raw["aws"]["task_definitions"] if d["family"] == "count-numbers")
    definition["requiresCompatibilities"] = ["EC2"]
    definition["networkMode"] = "bridge"
    return definition


def problems(raw) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        validate_config(raw, ROOT / "sandbox.yaml")
    return exc.value.problems


def test_validation_refuses_host_access_unless_allowed(raw, monkeypatch):
    monkeypatch.delenv("ECS_ALLOW_HOST_ACCESS", raising=False)
    definition = ec2_definition(raw)
    definition["pidMode"] = "host"
    definition["containerDefinitions"][0]["linuxParameters"] = {"capabilities": {"add": ["SYS_ADMIN"]}}
    found = problems(raw)
    assert len(found) == 2, found
    assert found[0].startswith("sandbox.yaml: aws.task_definitions[0].pidMode: the task's pidMode is 'host'")
    assert found[1].startswith("sandbox.yaml: aws.task_definitions[0].containerDefinitions[0].linuxParameters."
                               "capabilities.add: container ")
    assert all("unless ECS_ALLOW_HOST_ACCESS=true" in p for p in found)
    monkeypatch.setenv("ECS_ALLOW_HOST_ACCESS", "true")
    validate_config(raw, ROOT / "sandbox.yaml")


def test_validation_of_a_fargate_definition_keeps_fargates_words(raw, monkeypatch):
    monkeypatch.delenv("ECS_ALLOW_HOST_ACCESS", raising=False)
    definition = next(d for d in raw["aws"]["task_definitions"] if d["family"] == "count-numbers")
    definition["containerDefinitions"][0]["privileged"] = True
    definition["containerDefinitions"][0]["dockerSecurityOptions"] = ["seccomp=unconfined"]
    found = problems(raw)
    privileged = [p for p in found if ".containerDefinitions[0].privileged:" in p]
    assert len(privileged) == 1 and "Fargate" in privileged[0]  # once, in Fargate's words
    assert any(".containerDefinitions[0].dockerSecurityOptions[0]: " in p and "ECS_ALLOW_HOST_ACCESS" in p
               for p in found)


def test_docker_default_capabilities_pass_validation(raw, monkeypatch):
    monkeypatch.delenv("ECS_ALLOW_HOST_ACCESS", raising=False)
    ec2_definition(raw)["containerDefinitions"][0]["linuxParameters"] = {
        "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]}}
    validate_config(raw, ROOT / "sandbox.yaml")


# ── An allowed definition's options reach `docker run` as on EC2 ───────────────────────────────────

def test_options_ministack_leaves_out_are_translated():
    cdef = {"name": "app", "linuxParameters": {
        "capabilities": {"add": ["SYS_ADMIN"], "drop": ["NET_RAW", "MKNOD"]},
        "devices": [{"hostPath": "/dev/fuse"},
                    {"hostPath": "/dev/sdb", "containerPath": "/dev/xvdb", "permissions": ["read"]},
                    {"hostPath": "/dev/net/tun", "permissions": ["mknod", "write", "read"]}]},
        "dockerSecurityOptions": ["seccomp=unconfined", "apparmor:unconfined", "no-new-privileges"],
        "systemControls": [{"namespace": "net.ipv4.ip_forward", "value": "1"},
                           {"namespace": "kernel.shmmax", "value": 68719476736}]}
    opts = fidelity.docker_run_options(cdef, {"ipcMode": "host", "pidMode": "host", "networkMode": "host"})
    assert opts == {
        "cap_drop": ["NET_RAW", "MKNOD"],
        "devices": ["/dev/fuse:/dev/fuse:rwm", "/dev/sdb:/dev/xvdb:r", "/dev/net/tun:/dev/net/tun:rwm"],
        "security_opt": ["seccomp=unconfined", "apparmor:unconfined", "no-new-privileges"],
        "sysctls": {"net.ipv4.ip_forward": "1", "kernel.shmmax": "68719476736"},
        "ipc_mode": "host",
    }  # cap_add, pid_mode and network_mode host (and privileged) are MiniStack's own


@pytest.mark.parametrize("ipc_mode, expected", [("host", "host"), ("none", "none"), ("task", None), ("", None)])
def test_ipc_mode(ipc_mode, expected):
    assert fidelity.docker_run_options({"name": "app"}, {"ipcMode": ipc_mode}).get("ipc_mode") == expected


def test_empty_host_options_add_nothing():
    cdef = {"name": "app", "linuxParameters": {"capabilities": {"add": [], "drop": []}, "devices": []},
            "dockerSecurityOptions": [], "systemControls": []}
    assert fidelity.docker_run_options(cdef, {"pidMode": "", "ipcMode": ""}) == {}
