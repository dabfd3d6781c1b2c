"""What Fargate refuses in a task definition, in one place for both sides that enforce it: the
validation of sandbox.yaml (before anything is seeded) and the AWS emulator's RegisterTaskDefinition
and RunTask (localstack/ecs_fidelity.py; this file is copied into the emulator's image). Standard
library only. The messages follow ECS's ClientException wording where ECS's own is known.
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


def host_access(td: dict) -> list[tuple[str, str]]:
    """(field path, message) for what reaches into the host: privileged containers and host-path
    volumes. Fargate refuses both; the sandbox's emulator starts neither unless allowed."""
    found = []
    for j, cd in enumerate(_containers(td)):
        if cd.get("privileged") is True:
            found.append((f"containerDefinitions[{j}].privileged",
                          f"container {cd.get('name')!r} is privileged"))
    for i, volume in enumerate(td.get("volumes") if isinstance(td.get("volumes"), list) else []):
        host = volume.get("host") if isinstance(volume, dict) else None
        if isinstance(host, dict) and host.get("sourcePath"):
            found.append((f"volumes[{i}].host.sourcePath",
                          f"volume {volume.get('name')!r} mounts the host path {host['sourcePath']!r}"))
    return found


def fargate_refusals(td: dict) -> list[tuple[str, str]]:
    """(field path, ECS's message) for each thing Fargate refuses in this definition."""
    refusals = []
    if td.get("networkMode", "awsvpc") != "awsvpc":
        refusals.append(("networkMode", "Fargate only supports network mode 'awsvpc'."))
    if td.get("ipcMode") not in (None, ""):  # MiniStack stores "" for "not set"
        refusals.append(("ipcMode", "Tasks using the Fargate launch type do not support ipcMode."))
    if td.get("pidMode") == "host":  # "task" is supported
        refusals.append(("pidMode", "Tasks using the Fargate launch type do not support pidMode 'host'."))
    for where, what in host_access(td):
        kind = "privileged containers" if where.endswith("privileged") else "host path volumes"
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
