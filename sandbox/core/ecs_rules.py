"""What ECS refuses in a task definition and a RunTask request, what Fargate refuses besides, and what
reaches into the host, in one place for every side that enforces it: the validation of sandbox.yaml
(before anything is seeded), the AWS emulator's RegisterTaskDefinition and RunTask, and task
definitions that CloudFormation templates declare (localstack/ecs_fidelity.py, localstack/cfn_fidelity.py;
this file is copied into the emulator's image). Standard library only. The messages are ECS's own
wording where it is known.
"""
from __future__ import annotations

import re

# Fargate task sizes: cpu units -> allowed memory MiB
# (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html).
FARGATE_SIZES: dict[int, list[int]] = {
    256: [512, 1024, 2048],
    512: list(range(1024, 4096 + 1, 1024)),
    1024: list(range(2048, 8192 + 1, 1024)),
    2048: list(range(4096, 16384 + 1, 1024)),
    4096: list(range(8192, 30720 + 1, 1024)),
    8192: list(range(16384, 61440 + 1, 4096)),
    16384: list(range(32768, 122880 + 1, 8192)),
}
# The one Linux capability a Fargate container may add.
FARGATE_CAPABILITIES = {"SYS_PTRACE"}


def is_fargate(td: dict) -> bool:
    compat = td.get("requiresCompatibilities")
    return isinstance(compat, list) and "FARGATE" in compat


def _dict(value) -> dict:
    """A definition's sub-mapping, or {} where a wrong type stands (validation reports that)."""
    return value if isinstance(value, dict) else {}


def _containers(td: dict) -> list[dict]:
    cds = td.get("containerDefinitions")
    return [cd for cd in cds if isinstance(cd, dict)] if isinstance(cds, list) else []


# ── What reaches into the host ─────────────────────────────────────────────
# The sandbox's emulator starts ECS tasks on the machine's own Docker engine, so a task that can
# reach out of its container is root on the machine (the engine runs as root; on cgroup v1 a container
# with SYS_ADMIN gets out through a cgroup's release_agent). The rules below name every task
# definition field that lets a container see or change the machine; the emulator refuses them (unless
# ECS_ALLOW_HOST_ACCESS=true) and so does the validation of sandbox.yaml. Not on the list, because
# they stay inside the container: capabilities.drop, sharedMemorySize, tmpfs, maxSwap, swappiness,
# initProcessEnabled, ulimits, user, readonlyRootFilesystem, portMappings (they publish the task, not
# the machine), pidMode/ipcMode "task", dockerVolumeConfiguration of remote or named volumes; nor what
# the emulator does not apply at all (any dockerVolumeConfiguration, logConfiguration drivers other
# than awslogs, resourceRequirements GPU, volumesFrom, links, dockerLabels).

HOST_ACCESS_SETTING = "ECS_ALLOW_HOST_ACCESS"

# What every Docker container has without asking (moby's default capability set).
DOCKER_DEFAULT_CAPABILITIES = frozenset({
    "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID", "SETFCAP",
    "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE"})
# Sysctls Docker (runc) sets inside the container's own IPC or network namespace; every other key is
# the machine's. IPC ones are the machine's too with ipcMode host, network ones with networkMode host.
IPC_SYSCTL_PREFIXES = ("kernel.msg", "kernel.shm", "fs.mqueue.")
IPC_SYSCTLS = {"kernel.sem"}
NET_SYSCTL_PREFIX = "net."
# Remote file systems Docker's local volume driver mounts: their `device` is not the machine's.
REMOTE_VOLUME_TYPES = {"nfs", "nfs4", "cifs", "smb3"}


def allows_host_access(value) -> bool:
    """ECS_ALLOW_HOST_ACCESS's value (from .env or the environment): true lets tasks reach the host."""
    return str(value or "").strip().lower() in ("1", "true", "yes")


def _list(value) -> list:
    """A definition's list, a lone value as a list of one, [] for none: a wrong type (reported by
    validation) is still looked into, so it cannot slip past the emulator."""
    if value in (None, "", [], {}):
        return []
    return value if isinstance(value, list) else [value]


def _privileged(td: dict) -> list[tuple[str, str]]:
    return [(f"containerDefinitions[{j}].privileged", f"container {cd.get('name')!r} is privileged")
            for j, cd in enumerate(_containers(td)) if cd.get("privileged") is True]


def _host_path_volumes(td: dict) -> list[tuple[str, str]]:
    found = []
    for i, volume in enumerate(_list(td.get("volumes"))):
        host = _dict(_dict(volume).get("host"))
        if host.get("sourcePath"):
            found.append((f"volumes[{i}].host.sourcePath",
                          f"volume {volume.get('name')!r} mounts the host path {host['sourcePath']!r}"))
    return found


def _host_bind_volumes(td: dict) -> list[tuple[str, str]]:
    """dockerVolumeConfiguration with Docker's local driver and a path of the machine (`o: bind` with a
    `device`, a block device, overlay's lowerdir=...): a host path volume in disguise."""
    found = []
    for i, volume in enumerate(_list(td.get("volumes"))):
        config = _dict(_dict(volume).get("dockerVolumeConfiguration"))
        opts = _dict(config.get("driverOpts"))
        if config.get("driver", "local") not in (None, "", "local") \
                or str(opts.get("type", "")).lower() in REMOTE_VOLUME_TYPES:
            continue
        values = [opts.get("device"), *(part.split("=", 1)[1] for part in str(opts.get("o", "")).split(",")
                                        if "=" in part)]
        paths = [v for v in values if isinstance(v, str) and v.startswith("/") and not v.startswith("//")]
        if paths:
            found.append((f"volumes[{i}].dockerVolumeConfiguration.driverOpts",
                          f"volume {volume.get('name')!r} mounts the host path {paths[0]!r} through Docker's "
                          f"local volume driver (dockerVolumeConfiguration.driverOpts)"))
    return found


def _host_namespaces(td: dict) -> list[tuple[str, str]]:
    sees = {"pidMode": "the machine's processes", "ipcMode": "the machine's shared memory and semaphores",
            "networkMode": "the machine's network interfaces"}
    return [(field, f"the task's {field} is 'host' (its containers share {what})")
            for field, what in sees.items() if td.get(field) == "host"]


def _added_capabilities(td: dict) -> list[tuple[str, str]]:
    found = []
    for j, cd in enumerate(_containers(td)):
        add = _list(_dict(_dict(cd.get("linuxParameters")).get("capabilities")).get("add"))
        extra = [str(c) for c in add if _capability(c) not in DOCKER_DEFAULT_CAPABILITIES]
        if extra:
            found.append((f"containerDefinitions[{j}].linuxParameters.capabilities.add",
                          f"container {cd.get('name')!r} adds Linux "
                          f"{'capability' if len(extra) == 1 else 'capabilities'} {', '.join(extra)} "
                          f"(linuxParameters.capabilities.add, beyond Docker's defaults)"))
    return found


def _capability(name) -> str:
    """A capability as Docker names it: CAP_SYS_ADMIN, cap_sys_admin and SYS_ADMIN are one."""
    name = str(name).strip().upper()
    return name[4:] if name.startswith("CAP_") else name


def _devices(td: dict) -> list[tuple[str, str]]:
    found = []
    for j, cd in enumerate(_containers(td)):
        for k, device in enumerate(_list(_dict(cd.get("linuxParameters")).get("devices"))):
            path = _dict(device).get("hostPath") if isinstance(device, dict) else device
            found.append((f"containerDefinitions[{j}].linuxParameters.devices[{k}]",
                          f"container {cd.get('name')!r} is given the host device {str(path)!r} "
                          f"(linuxParameters.devices)"))
    return found


def _unconfining_security_options(td: dict) -> list[tuple[str, str]]:
    found = []
    for j, cd in enumerate(_containers(td)):
        for k, option in enumerate(_list(cd.get("dockerSecurityOptions"))):
            why = unconfines(str(option))
            if why:
                found.append((f"containerDefinitions[{j}].dockerSecurityOptions[{k}]",
                              f"container {cd.get('name')!r} sets dockerSecurityOptions {str(option)!r} "
                              f"({why})"))
    return found


def unconfines(option: str) -> str | None:
    """Why a Docker security option lets the container out of its confinement, or None. Docker takes
    `key=value` and the older `key:value` (ECS's documented form)."""
    text = option.strip().lower()
    cut = min((i for i in (text.find("="), text.find(":")) if i >= 0), default=len(text))
    key, value = text[:cut], text[cut + 1:]
    if key == "seccomp":
        # Any profile given here replaces Docker's default filter; one that allows every call is
        # unconfined, and ECS documents no seccomp option at all.
        return ("it turns off Docker's seccomp filter" if value == "unconfined"
                else "it replaces Docker's default seccomp filter")
    if key == "apparmor" and value != "docker-default":
        # Any other profile is one loaded on the machine, and some of those are unconfined too.
        return "it runs the container outside Docker's AppArmor profile"
    if key == "label" and (value == "disable" or (value.startswith("type:") and value != "type:container_t")):
        return "it turns off or replaces the container's SELinux confinement"
    if key == "systempaths" and value == "unconfined":
        return "it unmasks the /proc and /sys paths Docker hides from containers"
    return None


def _host_sysctls(td: dict) -> list[tuple[str, str]]:
    found = []
    for j, cd in enumerate(_containers(td)):
        for k, control in enumerate(_list(cd.get("systemControls"))):
            key = _dict(control).get("namespace") if isinstance(control, dict) else control
            why = host_sysctl(str(key), td) if key else None
            if why:
                found.append((f"containerDefinitions[{j}].systemControls[{k}]",
                              f"container {cd.get('name')!r} sets systemControls {key!r} ({why})"))
    return found


def host_sysctl(key: str, td: dict) -> str | None:
    """Why setting sysctl ``key`` in a task of ``td`` would change the machine's, or None."""
    name = key.strip().replace("/", ".")
    if name.startswith(NET_SYSCTL_PREFIX):
        return ("with networkMode 'host' it is the machine's network setting"
                if td.get("networkMode") == "host" else None)
    if name in IPC_SYSCTLS or name.startswith(IPC_SYSCTL_PREFIXES):
        return "with ipcMode 'host' it is the machine's IPC setting" if td.get("ipcMode") == "host" else None
    return "not a sysctl Docker keeps inside the container's namespaces: it is the machine's"


# The one list of what reaches into the host: the emulator and sandbox.yaml's validation both use it.
HOST_ACCESS_RULES = (_privileged, _host_path_volumes, _host_bind_volumes, _host_namespaces,
                     _added_capabilities, _devices, _unconfining_security_options, _host_sysctls)


def host_access(td: dict) -> list[tuple[str, str]]:
    """(field path, what it does) for each part of a task definition that reaches into the host."""
    return [found for rule in HOST_ACCESS_RULES for found in rule(td)]


def fargate_refusals(td: dict) -> list[tuple[str, str]]:
    """(field path, ECS's message) for each thing Fargate refuses in this definition."""
    refusals = []
    if td.get("networkMode", "awsvpc") != "awsvpc":
        refusals.append(("networkMode", "Fargate only supports network mode 'awsvpc'."))
    if td.get("ipcMode") not in (None, ""):  # MiniStack stores "" for "not set"
        refusals.append(("ipcMode", "Tasks using the Fargate launch type do not support ipcMode."))
    if td.get("pidMode") == "host":  # "task" is supported
        refusals.append(("pidMode", "Tasks using the Fargate launch type do not support pidMode 'host'."))
    for kind, rule in (("privileged containers", _privileged), ("host path volumes", _host_path_volumes)):
        for where, what in rule(td):
            refusals.append((where, f"Tasks using the Fargate launch type do not support {kind}: {what}."))
    for j, cd in enumerate(_containers(td)):
        caps = _dict(_dict(cd.get("linuxParameters")).get("capabilities")).get("add") or []
        extra = sorted(set(map(str, caps)) - FARGATE_CAPABILITIES) if isinstance(caps, list) else [str(caps)]
        if extra:
            refusals.append((f"containerDefinitions[{j}].linuxParameters.capabilities.add",
                             f"Fargate only supports adding the SYS_PTRACE kernel capability; "
                             f"container {cd.get('name')!r} adds {', '.join(extra)}."))
    cpu, memory = parse_cpu(td.get("cpu")), parse_memory(td.get("memory"))
    if cpu is None or memory is None:
        refusals.append(("cpu", "Fargate requires that 'cpu' be defined at the task level."
                         if cpu is None else "Fargate requires that 'memory' be defined at the task level."))
    elif memory not in FARGATE_SIZES.get(cpu, []):
        refusals.append(("memory", f"No Fargate configuration exists for given values: {td.get('cpu')} CPU, "
                                   f"{td.get('memory')} memory."))
    return refusals


# ── What RegisterTaskDefinition refuses (any launch type, and Fargate's needs beyond its sizes) ──
# (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ContainerDefinition.html,
# https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task_execution_IAM_role.html)

# The awslogs options ECS passes to Docker's awslogs driver (ECS's own and the driver's); any other is refused.
AWSLOGS_OPTIONS = frozenset({
    "awslogs-region", "awslogs-group", "awslogs-stream-prefix", "awslogs-create-group", "awslogs-datetime-format",
    "awslogs-multiline-pattern", "awslogs-endpoint", "awslogs-credentials-endpoint", "awslogs-format",
    "awslogs-force-flush-interval-seconds", "awslogs-max-buffered-events", "mode", "max-buffer-size", "tag"})
FARGATE_LOG_DRIVERS = ("awslogs", "splunk", "awsfirelens")
# An account's ECR registry host (<account>.dkr.ecr.<region>.amazonaws.com).
ECR_HOST = re.compile(r"^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")
# A container that others wait for to exit cannot also be one whose exit stops the task.
EXIT_CONDITIONS = {"SUCCESS", "COMPLETE"}


def is_essential(cd: dict) -> bool:
    return cd.get("essential", True) not in (False, "false", "False")


def register_refusals(td: dict, ecr_image=lambda image: False) -> list[tuple[str, str]]:
    """(field path, ECS's message) for each thing RegisterTaskDefinition refuses in this definition
    besides Fargate's sizes and modes (fargate_refusals). `ecr_image(image)`: whether an image is
    pulled from ECR (on Fargate that needs the execution role)."""
    containers = td.get("containerDefinitions")
    if not isinstance(containers, list) or not containers:
        return [("containerDefinitions", "Container list cannot be empty.")]
    refusals: list[tuple[str, str]] = []
    fargate = is_fargate(td)
    execution_role = td.get("executionRoleArn")  # MiniStack stores "" for "not set"
    task_memory = parse_memory(td.get("memory")) if td.get("memory") not in (None, "") else None
    definitions = _containers(td)
    names = [cd.get("name") for cd in definitions]
    needs_execution_role: dict[str, str] = {}
    for j, cd in enumerate(definitions):
        where, name = f"containerDefinitions[{j}]", cd.get("name")
        if not name:
            refusals.append((f"{where}.name", "Container.name should not be null or empty."))
        if not cd.get("image"):
            refusals.append((f"{where}.image", "Container.image should not be null or empty."))
        elif fargate and not execution_role and ecr_image(str(cd["image"])):
            needs_execution_role.setdefault("ECR images", f"{where}.image")
        if not fargate and task_memory is None and cd.get("memory") in (None, "") \
                and cd.get("memoryReservation") in (None, ""):
            refusals.append((f"{where}.memory", f"Invalid setting for container '{name}'. At least one of 'memory' "
                                                f"or 'memoryReservation' must be specified."))
        if _list(cd.get("secrets")) and not execution_role:
            refusals.append((f"{where}.secrets", "When you are specifying container secrets, you must also specify "
                                                 "a value for 'executionRoleArn'."))
        for k, dependency in enumerate(_list(cd.get("dependsOn"))):
            target = _dict(dependency).get("containerName")
            if target not in names:
                # ECS's message, its stray "+" included.
                refusals.append((f"{where}.dependsOn[{k}].containerName",
                                 f"Cannot depend on container + '{target}' because it does not exist"))
            elif str(_dict(dependency).get("condition")) in EXIT_CONDITIONS \
                    and is_essential(definitions[names.index(target)]):
                refusals.append((f"{where}.dependsOn[{k}].condition", "A dependency container with SUCCESS or "
                                                                     "COMPLETE condition cannot be an essential "
                                                                     "container"))
        log = _dict(cd.get("logConfiguration"))
        driver = log.get("logDriver")
        if driver == "awslogs":
            refusals += _awslogs_refusals(_dict(log.get("options")), f"{where}.logConfiguration.options", fargate)
            if fargate and not execution_role:
                needs_execution_role.setdefault("log driver awslogs", where)
        elif fargate and driver not in (None, "", *FARGATE_LOG_DRIVERS):
            refusals.append((f"{where}.logConfiguration.logDriver",
                             f"Fargate does not support log driver '{driver}'; use one of "
                             f"{', '.join(FARGATE_LOG_DRIVERS)}."))
    if definitions and not any(is_essential(cd) for cd in definitions):
        refusals.append(("containerDefinitions", "All tasks must have at least one essential container."))
    for what in list(needs_execution_role)[:1]:  # ECS names the first need; one role meets them all
        refusals.append(("executionRoleArn", f"Fargate requires task definition to have execution role ARN to "
                                             f"support {what}."))
    return refusals


def _awslogs_refusals(options: dict, where: str, fargate: bool) -> list[tuple[str, str]]:
    required = ("awslogs-region", "awslogs-group", *(("awslogs-stream-prefix",) if fargate else ()))
    missing = [option for option in required if option not in options]
    if missing:
        return [(where, f"Log driver awslogs requires options: {', '.join(missing)}")]
    refusals = []
    for option in required:
        if options.get(option) in (None, ""):
            refusals.append((f"{where}.{option}",
                             f"Log driver awslogs option '{option}' should not be null or empty."))
    if "awslogs-create-group" in options and str(options["awslogs-create-group"]) != "true":
        refusals.append((f"{where}.awslogs-create-group", "Log driver awslogs option 'awslogs-create-group' should "
                                                          "only be set to 'true', else omit option."))
    disallowed = sorted(set(map(str, options)) - AWSLOGS_OPTIONS)
    if disallowed:
        refusals.append((where, f"Log driver awslogs disallows options: {', '.join(disallowed)}"))
    return refusals


# ── What RunTask refuses (InvalidParameterException) ─────────────────────────

def run_task_refusals(td: dict, request: dict, launch_type: str) -> list[str]:
    """ECS's messages for what RunTask refuses in `request` for the stored definition `td`."""
    if launch_type == "FARGATE" and not is_fargate(td):
        return ["Task definition does not support launch_type FARGATE."]
    network = request.get("networkConfiguration")
    awsvpc = td.get("networkMode") == "awsvpc" or (td.get("networkMode") in (None, "") and is_fargate(td))
    if awsvpc and not network:
        return ["Network Configuration must be provided when networkMode 'awsvpc' is specified."]
    if network and not awsvpc:
        return ["Network Configuration is not valid for the given networkMode of this task definition."]
    if network and not _list(_dict(_dict(network).get("awsvpcConfiguration")).get("subnets")):
        return ["subnets can not be empty."]
    return []


def parse_cpu(value) -> int | None:
    """ECS task cpu as units: 256, "256" or "0.25 vCPU"; None when it is not a size."""
    return _size(value, "vcpu", 1024)


def parse_memory(value) -> int | None:
    """ECS task memory as MiB: 512, "512" or "0.5 GB"; None when it is not a size."""
    return _size(value, "gb", 1024)


def _size(value, unit: str, per_unit: int) -> int | None:
    text = str(value).strip()
    if re.fullmatch(r"\d+", text):
        return int(text)
    m = re.fullmatch(rf"(\d+(?:\.\d+)?)\s*{unit}", text, re.IGNORECASE)
    return int(float(m.group(1)) * per_unit) if m else None
