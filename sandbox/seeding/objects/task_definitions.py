"""`aws.task_definitions`: ECS RegisterTaskDefinition requests, checked as ECS and Fargate would take
them, and registered as a new revision only when what the config sets differs from the latest."""
from __future__ import annotations

import difflib
import functools
import os
import re
from typing import Any

from botocore.exceptions import ClientError

from sandbox.core.ecs_rules import (FARGATE_SIZES, HOST_ACCESS_SETTING, allows_host_access, fargate_refusals,
                                    ECR_HOST, host_access, parse_cpu, parse_memory, register_refusals)
from sandbox.seeding.checker import Checker, found, shown
from sandbox.seeding.objects.base import Checks, Difference, ObjectType, Seeding, error_code

_FAMILY = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_ROLE_ARN = re.compile(r"^arn:aws:iam::(\{account_id\}|\d{12}):role/(?:[\w+=,.@-]+/)*([\w+=,.@-]+)$")
# What to do about an ECS refusal, by the start of its message.
_HINTS = (
    ("Fargate requires task definition to have execution role ARN to support log driver",
     "; add an executionRoleArn whose role may call logs:CreateLogStream and logs:PutLogEvents"),
    ("Fargate requires task definition to have execution role ARN to support ECR",
     "; add an executionRoleArn whose role may call ecr:GetAuthorizationToken, ecr:BatchGetImage and "
     "ecr:GetDownloadUrlForLayer"),
    ("Log driver awslogs requires options", " (EcsRunTaskOperator also needs awslogs-stream-prefix to find the "
                                            "task's log stream)"),
)


def _pulled_from_ecr(image: str) -> bool:
    return image.startswith("{registry}/") or bool(ECR_HOST.match(image.split("/", 1)[0]))


class TaskDefinitions(ObjectType):
    section = "task_definitions"
    kind = "task definition"
    service = "ecs"
    key = "family"
    cfn_type, cfn_name = "AWS::ECS::TaskDefinition", "Family"

    def check(self, checks: Checks, entries: list) -> None:
        # The whole entry is checked against ECS's request model, not a list of fields.
        for i, td in enumerate(entries):
            _check_task_definition(checks.c, td, f"{self.where}[{i}]", checks.region,
                                   role_names=checks.names("iam_roles"), log_group_names=checks.names("log_groups"),
                                   repo_names=checks.names("ecr_repositories"))

    def to_cfn(self, export, td: dict) -> None:
        # Essential written out: cfn-lint takes a container without it for a non-essential one (E3042).
        request = {**td, "containerDefinitions": [{"essential": True, **cd} for cd in td["containerDefinitions"]]}
        export.add(self.section, td["family"], "TaskDefinition", {
            "Type": self.cfn_type, "Properties": cfn_properties(request, _register_task_definition_shape(), export)})

    def drift(self, seeding: Seeding, entries: list[dict]) -> list[Difference]:
        """A family whose latest revision is not sandbox.yaml's definition: registered since (by a DAG, by
        hand), with the fields where it differs."""
        ecs, config = seeding.clients[self.service], seeding.config
        found = []
        for td in entries:
            family, desired = td["family"], config.expand(td, seeding.registry)
            active = [arn for arn in ecs.list_task_definitions(familyPrefix=family, status="ACTIVE", sort="DESC")[
                "taskDefinitionArns"] if arn.rsplit("/", 1)[-1].rsplit(":", 1)[0] == family]
            if not active:
                found.append(Difference(self.kind, family, "not in the emulator"))
                continue
            latest = ecs.describe_task_definition(taskDefinition=active[0])["taskDefinition"]
            if contains(latest, desired):
                continue
            fields = differing_fields(latest, desired)
            found.append(Difference(self.kind, family, f"revision {latest['revision']} (the latest) differs from "
                                                       f"sandbox.yaml in {', '.join(fields[:6])}"
                                                       f"{', ...' if len(fields) > 6 else ''}"))
        return found

    def live_names(self, ecs: Any) -> set[str]:
        return {f for page in ecs.get_paginator("list_task_definition_families").paginate(status="ACTIVE")
                for f in page["families"]}

    def seed(self, seeding: Seeding, entries: list[dict]) -> None:
        ecs, config = seeding.clients[self.service], seeding.config
        for td in entries:
            desired = config.expand(td, seeding.registry)
            family = desired["family"]
            try:
                current = ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]
            except ClientError as exc:
                if error_code(exc) not in ("ClientException", "InvalidParameterException"):
                    raise
                current = None
            if current and current.get("status") == "ACTIVE" and contains(current, desired):
                seeding.report(self.kind, f"{family}:{current['revision']}", "unchanged")
                continue
            revision = ecs.register_task_definition(**desired)["taskDefinition"]["revision"]
            seeding.report(self.kind, f"{family}:{revision}", "created" if current is None else "updated")


# Where CloudFormation's property name is not the request member's with its first letter raised.
CFN_NAMES = {"properties": "ProxyConfigurationProperties", "efsVolumeConfiguration": "EFSVolumeConfiguration",
             "fileSystemId": "FilesystemId", "iam": "IAM",
             "fsxWindowsFileServerVolumeConfiguration": "FSxWindowsFileServerVolumeConfiguration"}


def cfn_properties(value: Any, shape: Any, export, name: str = "") -> Any:
    """A RegisterTaskDefinition request (or part of it) as AWS::ECS::TaskDefinition properties: member
    names as CloudFormation writes them, map keys as given, roles, images and log groups the template
    holds referenced, the rest with pseudo parameters."""
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        return {CFN_NAMES.get(key, key[:1].upper() + key[1:]):
                cfn_properties(item, shape.members[key], export, key) if key in shape.members else item
                for key, item in value.items()}
    if kind == "list" and isinstance(value, list):
        return [cfn_properties(item, shape.member, export, name) for item in value]
    if kind == "map" and isinstance(value, dict):
        if name == "options":  # a log configuration's
            return {k: (export.log_group(v) if k == "awslogs-group" else
                        {"Ref": "AWS::Region"} if k == "awslogs-region" and v == export.config.region else
                        export.sub(v)) for k, v in value.items()}
        return {k: export.sub(v) for k, v in value.items()}
    if name in ("executionRoleArn", "taskRoleArn"):
        return export.role(value)
    if name == "image":
        return export.image(value)
    return export.sub(value)


def differing_fields(actual: Any, desired: Any, where: str = "") -> list[str]:
    """The paths of the fields the config sets that `actual` does not hold as set (see contains)."""
    if isinstance(desired, dict) and isinstance(actual, dict):
        return [p for k, v in desired.items() for p in differing_fields(actual.get(k), v, f"{where}.{k}".lstrip("."))]
    if isinstance(desired, list) and isinstance(actual, list) and len(actual) == len(desired):
        return [p for i, (a, d) in enumerate(zip(actual, desired)) for p in differing_fields(a, d, f"{where}[{i}]")]
    return [] if contains(actual, desired) else [where or "(the whole definition)"]


def contains(actual: Any, desired: Any) -> bool:
    """True when every field the config sets has that value in what ECS returned.

    ECS fills in defaults (portMappings: [], cpu: 0, ...), so equality would always differ.
    """
    if isinstance(desired, dict):
        return isinstance(actual, dict) and all(contains(actual.get(k), v) for k, v in desired.items())
    if isinstance(desired, list):
        return isinstance(actual, list) and len(actual) == len(desired) and \
            all(contains(a, d) for a, d in zip(actual, desired))
    return str(actual) == str(desired) if isinstance(desired, (int, str)) and actual is not None else actual == desired


def _task_size(c: Checker, td: dict, key: str, where: str) -> int | None:
    """The task-level cpu or memory as units/MiB; None when absent or not a size (reported)."""
    if key not in td:
        return None
    value = td[key]
    parse, usage = (parse_cpu, "use units (\"256\") or \"0.25 vCPU\"") if key == "cpu" else \
        (parse_memory, "use MiB (\"512\") or \"0.5 GB\"")
    size = parse(value) if isinstance(value, str) else None
    if size is None:
        c.fail(f"{where}.{key}", f"{found(value)} is not a {key} value: {usage}")
    return size


def _check_task_definition(c: Checker, td: Any, where: str, region: str, *, role_names: set,
                           log_group_names: set, repo_names: set) -> None:
    """A RegisterTaskDefinition request as ECS would take it, with Fargate's rules and the refusals of
    what reaches into the host; the roles, log groups and repositories it names must be seeded."""
    if not isinstance(td, dict):
        c.fail(where, f"expected a mapping (an ECS RegisterTaskDefinition request), found {found(td)}")
        return
    # Types first, against ECS's own request model; what is wrong there is not looked into below.
    _check_request_shape(c, td, _register_task_definition_shape(), where)
    c.text(td.get("family"), f"{where}.family", _FAMILY, "up to 255 letters, digits, - and _")
    compatibilities = td.get("requiresCompatibilities")
    fargate = isinstance(compatibilities, list) and "FARGATE" in compatibilities
    cpu = _task_size(c, td, "cpu", where)
    memory = _task_size(c, td, "memory", where)
    if fargate:
        if td.get("networkMode") != "awsvpc":
            c.fail(f"{where}.networkMode", f"Fargate requires \"awsvpc\", found {found(td.get('networkMode'))}")
        if "cpu" not in td or "memory" not in td:
            c.fail(where, "Fargate task definitions need task-level cpu and memory: add both, e.g. "
                          "cpu: \"256\" and memory: \"512\"")
        elif cpu is None or memory is None:
            pass  # reported above
        elif cpu not in FARGATE_SIZES:
            c.fail(f"{where}.cpu", f"{td['cpu']!r} is not a Fargate cpu; use one of "
                                   f"{', '.join(str(k) for k in FARGATE_SIZES)}")
        elif memory not in FARGATE_SIZES[cpu]:
            allowed = FARGATE_SIZES[cpu]
            c.fail(f"{where}.memory", f"{td['memory']!r} with cpu {td['cpu']!r} is not a valid Fargate "
                                      f"combination (AWS rejects it); with cpu {cpu} use memory "
                                      f"{allowed[0]}-{allowed[-1]} in steps of "
                                      f"{allowed[1] - allowed[0] if len(allowed) > 1 else allowed[0]}: "
                                      f"{', '.join(map(str, allowed[:8]))}{'…' if len(allowed) > 8 else ''}")
    refused = fargate_refusals(td) if fargate else []
    for field_path, message in refused:  # networkMode and sizes are reported above, in more detail
        if field_path not in ("networkMode", "cpu", "memory"):
            c.fail(f"{where}.{field_path}", f"{message} (RegisterTaskDefinition refuses it)")
    if not allows_host_access(os.environ.get(HOST_ACCESS_SETTING)):
        # As the emulator refuses them: what reaches into the host, less what Fargate's refusals name.
        for field_path, what in host_access(td):
            if field_path not in {path for path, _ in refused}:
                c.fail(f"{where}.{field_path}",
                       f"{what}: the sandbox's emulator runs tasks on this machine's Docker engine, so it "
                       f"refuses this unless {HOST_ACCESS_SETTING}=true (unsafe: such a task is root on this "
                       "machine)")
    for key in ("executionRoleArn", "taskRoleArn"):
        if key in td:
            _check_role_arn(c, td[key], f"{where}.{key}", role_names)
    # What ECS refuses on any launch type, in its words (the emulator refuses the same).
    # Settled: the checks below would only say the same of that field again.
    for field_path, message in register_refusals(td, _pulled_from_ecr):
        report = c.fail if field_path == "containerDefinitions" else c.settle
        report(f"{where}.{field_path}", f"{message} (RegisterTaskDefinition refuses it)"
                                        f"{next((h for start, h in _HINTS if message.startswith(start)), '')}")
    containers = td.get("containerDefinitions")
    if not isinstance(containers, list):
        return
    for j, cd in enumerate(containers):
        cwhere = f"{where}.containerDefinitions[{j}]"
        if not isinstance(cd, dict):
            c.fail(cwhere, f"expected a mapping, found {found(cd)}")
            continue
        c.text(cd.get("name"), f"{cwhere}.name", _FAMILY, "up to 255 letters, digits, - and _")
        image = c.text(cd.get("image"), f"{cwhere}.image")
        if image and image.startswith("{registry}/"):
            repo = image[len("{registry}/"):].split("@")[0].rsplit(":", 1)[0]
            if repo not in repo_names:
                c.fail(f"{cwhere}.image", f"repository {repo!r} is not in aws.ecr_repositories; add it there "
                                          "so its image is pushed before tasks use it")
        environment = cd.get("environment")
        for env_i, env in enumerate(environment if isinstance(environment, list) else []):
            if isinstance(env, dict) and not {"name", "value"} <= set(env):
                c.fail(f"{cwhere}.environment[{env_i}]",
                       f"expected {{name: ..., value: \"text\"}}, found {found(env)}")
        container_memory = cd.get("memory")
        if isinstance(container_memory, int) and not isinstance(container_memory, bool):
            if container_memory < 6:  # Docker's floor for a container's memory limit
                c.fail(f"{cwhere}.memory", f"{container_memory} MiB is too little: ECS needs at least 6")
            elif fargate and memory and container_memory > memory:
                c.fail(f"{cwhere}.memory", f"{container_memory} exceeds the task's memory {memory}; lower it "
                                           "or raise the task's")
        log = cd.get("logConfiguration")
        if not isinstance(log, dict) or log.get("logDriver") != "awslogs":
            continue
        options = log.get("options") if isinstance(log.get("options"), dict) else {}
        owhere = f"{cwhere}.logConfiguration.options"
        group = options.get("awslogs-group")  # missing or empty: ECS's refusal above says so
        if isinstance(group, str) and group and group not in log_group_names:
            c.fail(f"{owhere}.awslogs-group",
                   f"{shown(group)} is not seeded; add it to aws.log_groups (ECS does not create it "
                   "unless awslogs-create-group is set and the execution role may)")
        # A missing or wrong aws.region is reported there, a missing option above.
        if region and "awslogs-region" in options and options["awslogs-region"] != region:
            c.fail(f"{owhere}.awslogs-region",
                   f"{shown(options.get('awslogs-region'))} differs from aws.region {region!r}; use {region!r}")


@functools.lru_cache(maxsize=1)
def _register_task_definition_shape() -> Any:
    """ECS's RegisterTaskDefinition request as botocore describes it: the model boto3 checks a request
    against before sending it, so a field of the wrong type is reported here, with its path, instead
    of as a ParamValidationError after other objects were already seeded."""
    from botocore.loaders import Loader
    from botocore.model import ServiceModel

    model = ServiceModel(Loader().load_service_model("ecs", "service-2"), "ecs")
    return model.operation_model("RegisterTaskDefinition").input_shape


# What to add to a type problem in these fields of a task definition.
_REQUEST_HINTS = {
    "entryPoint": "exec form, e.g. [\"/bin/sh\", \"-c\"]",
    "command": "exec form, e.g. [\"python3\", \"/app/run.py\"]",
    "environment": "e.g. [{name: BUCKET, value: \"data\"}]",
    "dependsOn": "e.g. [{containerName: init, condition: SUCCESS}]",
}


def _check_request_shape(c: Checker, value: Any, shape: Any, where: str, name: str = "") -> None:
    """Checks `value` against a botocore shape: mappings for structures (known fields, required ones),
    lists, maps, text (enums and lengths), integers (ranges) and booleans."""
    kind = shape.type_name
    hint = f"; {_REQUEST_HINTS[name]}" if name in _REQUEST_HINTS else ""

    def wrong(expected: str, advice: str = "") -> None:
        c.settle(where, f"expected {expected}, found {found(value)}{advice}{hint}")

    if kind == "structure":
        if not isinstance(value, dict):
            return wrong(f"a mapping (ECS {shape.name})")
        members = shape.members
        for key in value:
            if key not in members:
                close = difflib.get_close_matches(str(key), list(members), n=1)
                c.settle(f"{where}.{key}", f"unknown field of an ECS {shape.name}; " + (
                    f"did you mean {close[0]}?" if close else f"expected one of: {', '.join(members)}"))
        for key in shape.required_members:
            if key not in value:
                c.settle(f"{where}.{key}", f"required field is missing (an ECS {shape.name} needs it)")
        for key, member in members.items():
            if key in value:
                _check_request_shape(c, value[key], member, f"{where}.{key}", key)
    elif kind == "list":
        if not isinstance(value, list):
            return wrong("a list")
        if not _within_limits(c, len(value), shape, where, "entries"):
            return
        for i, item in enumerate(value):
            _check_request_shape(c, item, shape.member, f"{where}[{i}]", name)
    elif kind == "map":
        if not isinstance(value, dict):
            return wrong("a mapping of name: value")
        for key, item in value.items():
            if not isinstance(key, str):
                c.settle(f"{where}.{key}", "names here are text; quote it")
            else:
                _check_request_shape(c, item, shape.value, f"{where}.{key}")
    elif kind == "string":
        if not isinstance(value, str):
            return wrong("text", "; quote it (ECS takes it as text)" if isinstance(value, (int, float)) else "")
        if shape.enum and value not in shape.enum:
            c.settle(where, f"{shown(value)} is not one of: {', '.join(shape.enum)}")
        else:
            _within_limits(c, len(value), shape, where, "characters")
    elif kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            return wrong("a whole number",
                         "; write it without quotes" if isinstance(value, str) and value.strip().isdigit() else "")
        _within_limits(c, value, shape, where, "")
    elif kind == "boolean":
        if not isinstance(value, bool):
            return wrong("true or false")
    elif kind in ("double", "float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return wrong("a number")


def _within_limits(c: Checker, size: int, shape: Any, where: str, unit: str) -> bool:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if (low is not None and size < low) or (high is not None and size > high):
        c.settle(where, f"is {size}{' ' + unit if unit else ''}; ECS takes "
                        f"{low if low is not None else 0} to {high if high is not None else 'any'}")
        return False
    return True


def _check_role_arn(c: Checker, arn: Any, where: str, role_names: set) -> None:
    m = _ROLE_ARN.match(arn) if isinstance(arn, str) else None
    if not m:
        c.fail(where, f"{shown(arn)} is not an IAM role ARN (arn:aws:iam::{{account_id}}:role/NAME)")
    elif m.group(2) not in role_names:
        c.fail(where, f"role {m.group(2)!r} does not exist: it is not in aws.iam_roles "
                      f"({', '.join(sorted(role_names)) or 'none'}); add it or fix the ARN")

