"""The seed config (`sandbox.yaml`): loading, validation and placeholder expansion.

Validation runs over the whole file before anything is seeded and reports every problem at once,
each naming the file, the field and what to do. It also rejects what real AWS would reject but an
emulator may accept (Fargate cpu/memory pairs, role ARNs and log groups that are not seeded), so a
definition that works here also registers on AWS.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sandbox.seeding.airflow_settings import validate_pools
from sandbox.seeding.errors import ConfigError

PLACEHOLDERS = ("account_id", "registry")

# Valid Fargate task sizes: cpu units -> allowed memory MiB
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
LOG_RETENTION_DAYS = {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827,
                      2192, 2557, 2922, 3288, 3653}
DEPENDS_ON_CONDITIONS = {"START", "COMPLETE", "SUCCESS", "HEALTHY"}

_ROLE_NAME = re.compile(r"^[\w+=,.@-]{1,64}$")
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_REPO_NAME = re.compile(r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$")
_FAMILY = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_LOG_GROUP = re.compile(r"^[\w\-./#]{1,512}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_CONN_ID = re.compile(r"^[\w.-]{1,250}$")
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_IMAGE_TAG = re.compile(r"^[a-z0-9]+(?:[._/-][a-z0-9]+)*:[\w][\w.-]{0,127}$")
_ROLE_ARN = re.compile(r"^arn:aws:iam::(\{account_id\}|\d{12}):role/(?:[\w+=,.@-]+/)*([\w+=,.@-]+)$")


@dataclass
class SeedConfig:
    """The validated config. Fields mirror sections of sandbox.yaml."""

    path: Path
    region: str
    account_id: str
    iam_roles: list[dict]
    s3_buckets: list[dict]
    log_groups: list[dict]
    ecs_clusters: list[dict]
    ecr_repositories: list[dict]
    task_definitions: list[dict]
    connections: list[dict]
    variables: dict[str, str]
    kubernetes: dict | None = None
    images: list[dict] = field(default_factory=list)
    airflow_role: str | None = None
    pools: list[dict] = field(default_factory=list)
    raw: dict = field(repr=False, default_factory=dict)

    def expand(self, value: Any, registry: str) -> Any:
        """Replaces {account_id} and {registry} in every string inside `value`."""
        subs = {"account_id": self.account_id, "registry": registry}
        if isinstance(value, str):
            return _PLACEHOLDER.sub(lambda m: subs[m.group(1)], value)
        if isinstance(value, list):
            return [self.expand(v, registry) for v in value]
        if isinstance(value, dict):
            return {k: self.expand(v, registry) for k, v in value.items()}
        return value

    def object_body(self, obj: dict) -> bytes:
        """The bytes of a seed object: inline `content`, or `file` relative to the config."""
        if "content" in obj:
            return obj["content"].encode()
        return (self.path.parent / obj["file"]).read_bytes()


class _Checker:
    """Collects problems with their field paths instead of stopping at the first."""

    def __init__(self, path: Path):
        self.path = path
        self.problems: list[str] = []

    def fail(self, where: str, message: str) -> None:
        self.problems.append(f"{self.path.name}: {where}: {message}")

    def mapping(self, value: Any, where: str, allowed: set[str], required: set[str] = frozenset()) -> dict:
        if value is None:
            value = {}
        if not isinstance(value, dict):
            self.fail(where, f"expected a mapping, found {type(value).__name__} {value!r}")
            return {}
        for key in sorted(set(value) - allowed):
            self.fail(f"{where}.{key}", f"unknown field; expected one of: {', '.join(sorted(allowed))}")
        for key in sorted(required - set(value)):
            self.fail(f"{where}.{key}", "required field is missing")
        return value

    def items(self, value: Any, where: str) -> list:
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(where, f"expected a list, found {type(value).__name__} {value!r}")
            return []
        return value

    def text(self, value: Any, where: str, pattern: re.Pattern | None = None, hint: str = "") -> str | None:
        if not isinstance(value, str) or not value:
            self.fail(where, f"expected a non-empty string, found {value!r}")
            return None
        if pattern and not pattern.match(value):
            self.fail(where, f"{value!r} is not valid{': ' + hint if hint else ''}")
            return None
        return value

    def placeholders(self, value: Any, where: str) -> None:
        if isinstance(value, str):
            for name in _PLACEHOLDER.findall(value):
                if name not in PLACEHOLDERS:
                    self.fail(where, f"unknown placeholder {{{name}}}; known: "
                                     + ", ".join("{%s}" % p for p in PLACEHOLDERS))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                self.placeholders(v, f"{where}[{i}]")
        elif isinstance(value, dict):
            for k, v in value.items():
                self.placeholders(v, f"{where}.{k}")

    def unique(self, entries: list[dict], key: str, where: str) -> None:
        seen: set = set()
        for i, entry in enumerate(entries):
            name = entry.get(key) if isinstance(entry, dict) else None
            if name in seen:
                self.fail(f"{where}[{i}].{key}", f"duplicate {key} {name!r}; each must appear once")
            seen.add(name)


def load_config(path: str | Path) -> SeedConfig:
    """Reads and validates the seed config; raises ConfigError listing every problem."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(path, [f"{path}: file not found; the seed config is required "
                                 "(copy sandbox.yaml from the repository)"])
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(path, [f"{path.name}: not valid YAML: {exc}"]) from None
    return validate_config(raw, path)


def load_images(path: Path) -> list[dict]:
    """A file holding only an `images:` list (the sandbox's own images.yaml), checked like sandbox.yaml's."""
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(path, [f"{path.name}: cannot be read as YAML: {exc}"]) from None
    c = _Checker(path)
    top = c.mapping(raw, "(top level)", {"images"}, {"images"})
    images = check_images(c, top.get("images"), "images", path.parent)
    if c.problems:
        raise ConfigError(path, c.problems)
    return images


def validate_config(raw: Any, path: Path) -> SeedConfig:
    c = _Checker(path)
    top = c.mapping(raw, "(top level)", {"images", "aws", "airflow", "kubernetes"}, {"aws"})
    images = check_images(c, top.get("images"), "images", path.parent)
    aws = c.mapping(top.get("aws"), "aws",
                    {"region", "account_id", "airflow_role", "iam_roles", "s3_buckets", "log_groups",
                     "ecs_clusters", "ecr_repositories", "task_definitions"}, {"region", "account_id"})
    region = c.text(aws.get("region"), "aws.region", _REGION, "expected an AWS region such as us-east-1") or ""
    account_id = aws.get("account_id")
    if not (isinstance(account_id, str) and re.fullmatch(r"\d{12}", account_id)):
        c.fail("aws.account_id", f"expected 12 digits as a quoted string, found {account_id!r}")
        account_id = "000000000000"

    roles = _check_roles(c, c.items(aws.get("iam_roles"), "aws.iam_roles"))
    airflow_role = aws.get("airflow_role")
    role_names = {r.get("name") for r in roles if isinstance(r, dict)}
    if airflow_role is not None and c.text(airflow_role, "aws.airflow_role") and airflow_role not in role_names:
        c.fail("aws.airflow_role", f"role {airflow_role!r} is not in aws.iam_roles "
                                   f"({', '.join(sorted(map(str, role_names))) or 'none'}); add it or fix the name")
    buckets = _check_buckets(c, c.items(aws.get("s3_buckets"), "aws.s3_buckets"), path)
    log_groups = _check_log_groups(c, c.items(aws.get("log_groups"), "aws.log_groups"))
    clusters = c.items(aws.get("ecs_clusters"), "aws.ecs_clusters")
    for i, cluster in enumerate(clusters):
        cluster = c.mapping(cluster, f"aws.ecs_clusters[{i}]", {"name"}, {"name"})
        c.text(cluster.get("name"), f"aws.ecs_clusters[{i}].name", _FAMILY, "letters, digits, - and _")
    c.unique(clusters, "name", "aws.ecs_clusters")
    repos = c.items(aws.get("ecr_repositories"), "aws.ecr_repositories")
    for i, repo in enumerate(repos):
        repo = c.mapping(repo, f"aws.ecr_repositories[{i}]", {"name", "image"}, {"name", "image"})
        c.text(repo.get("name"), f"aws.ecr_repositories[{i}].name", _REPO_NAME,
               "lowercase letters, digits and . _ - / separators")
        _check_declared(c, repo.get("image"), f"aws.ecr_repositories[{i}].image", images)
    c.unique(repos, "name", "aws.ecr_repositories")

    task_defs = c.items(aws.get("task_definitions"), "aws.task_definitions")
    for i, td in enumerate(task_defs):
        _check_task_definition(c, td, f"aws.task_definitions[{i}]", region,
                               role_names={r.get("name") for r in roles if isinstance(r, dict)},
                               log_group_names={g.get("name") for g in log_groups if isinstance(g, dict)},
                               repo_names={r.get("name") for r in repos if isinstance(r, dict)})
    c.unique(task_defs, "family", "aws.task_definitions")
    c.placeholders(aws, "aws")

    airflow = c.mapping(top.get("airflow"), "airflow", {"connections", "variables", "pools"})
    pools = validate_pools(airflow.get("pools"), "airflow.pools", c.fail)
    connections = c.items(airflow.get("connections"), "airflow.connections")
    for i, conn in enumerate(connections):
        where = f"airflow.connections[{i}]"
        conn = c.mapping(conn, where, {"conn_id", "conn_type", "description", "host", "port", "login",
                                       "password", "schema", "extra"}, {"conn_id", "conn_type"})
        c.text(conn.get("conn_id"), f"{where}.conn_id", _CONN_ID, "letters, digits, . _ -")
        c.text(conn.get("conn_type"), f"{where}.conn_type")
        if "extra" in conn and not isinstance(conn["extra"], dict):
            c.fail(f"{where}.extra", "expected a mapping of extra fields (it is stored as JSON), "
                                     f"found {type(conn['extra']).__name__}")
        if "port" in conn and not isinstance(conn["port"], int):
            c.fail(f"{where}.port", f"expected an integer, found {conn['port']!r}")
    c.unique(connections, "conn_id", "airflow.connections")
    variables = airflow.get("variables") or {}
    if not isinstance(variables, dict):
        c.fail("airflow.variables", f"expected a mapping of name: value, found {type(variables).__name__}")
        variables = {}
    normalized_vars = {}
    for key, value in variables.items():
        if not isinstance(key, str) or not _CONN_ID.match(key):
            c.fail(f"airflow.variables.{key}", "variable names are letters, digits, . _ -")
            continue
        if isinstance(value, str):
            normalized_vars[key] = value
        elif value is None:
            c.fail(f"airflow.variables.{key}", "has no value; give one or remove the variable")
        else:  # lists, numbers, mappings are stored as JSON, as Variable.get(deserialize_json=True) reads them
            normalized_vars[key] = json.dumps(value)

    kubernetes = _check_kubernetes(c, top.get("kubernetes"), images) if top.get("kubernetes") is not None else None

    if c.problems:
        raise ConfigError(path, c.problems)
    return SeedConfig(path=path, region=region, account_id=account_id, iam_roles=roles, s3_buckets=buckets,
                      log_groups=log_groups, ecs_clusters=clusters, ecr_repositories=repos,
                      task_definitions=task_defs, connections=connections, variables=normalized_vars,
                      kubernetes=kubernetes, images=images, pools=pools, airflow_role=airflow_role, raw=raw)


def _check_roles(c: _Checker, roles: list) -> list:
    for i, role in enumerate(roles):
        where = f"aws.iam_roles[{i}]"
        role = c.mapping(role, where, {"name", "description", "trusted_services", "trusted_accounts",
                                       "policies"}, {"name"})
        c.text(role.get("name"), f"{where}.name", _ROLE_NAME, "up to 64 of letters, digits and +=,.@_-")
        trusted = c.items(role.get("trusted_services"), f"{where}.trusted_services") + \
            c.items(role.get("trusted_accounts"), f"{where}.trusted_accounts")
        if not trusted:
            c.fail(where, "a role needs someone to assume it: set trusted_services and/or trusted_accounts")
        policies = role.get("policies") or {}
        if not isinstance(policies, dict):
            c.fail(f"{where}.policies", "expected a mapping of policy name: policy document")
            continue
        for name, doc in policies.items():
            if not isinstance(doc, dict) or doc.get("Version") != "2012-10-17" or \
                    not isinstance(doc.get("Statement"), list) or not doc["Statement"]:
                c.fail(f"{where}.policies.{name}",
                       "expected an IAM policy document with Version \"2012-10-17\" and a non-empty Statement list")
    c.unique(roles, "name", "aws.iam_roles")
    return roles


def _check_buckets(c: _Checker, buckets: list, path: Path) -> list:
    for i, bucket in enumerate(buckets):
        where = f"aws.s3_buckets[{i}]"
        bucket = c.mapping(bucket, where, {"name", "objects", "generated"}, {"name"})
        name = c.text(bucket.get("name"), f"{where}.name", _BUCKET_NAME,
                      "3-63 lowercase letters, digits, . and -, starting and ending with a letter or digit")
        if name and ".." in name:
            c.fail(f"{where}.name", f"{name!r} is not valid: no two adjacent periods")
        objects = c.items(bucket.get("objects"), f"{where}.objects")
        for j, obj in enumerate(objects):
            owhere = f"{where}.objects[{j}]"
            obj = c.mapping(obj, owhere, {"key", "content", "file", "content_type"}, {"key"})
            c.text(obj.get("key"), f"{owhere}.key")
            if ("content" in obj) == ("file" in obj):
                c.fail(owhere, "give exactly one of `content` (inline text) or `file` (path relative to the config)")
            elif "file" in obj and not (path.parent / str(obj["file"])).is_file():
                c.fail(f"{owhere}.file", f"{obj['file']!r} not found next to {path.name}")
            elif "content" in obj and not isinstance(obj["content"], str):
                c.fail(f"{owhere}.content", "expected text")
        c.unique(objects, "key", f"{where}.objects")
        for j, gen in enumerate(c.items(bucket.get("generated"), f"{where}.generated")):
            gwhere = f"{where}.generated[{j}]"
            gen = c.mapping(gen, gwhere, {"kind", "prefix", "count", "samples", "variants"}, {"kind", "prefix", "count"})
            if gen.get("kind") != "vcf_cases":
                c.fail(f"{gwhere}.kind", f"{gen.get('kind')!r} is not a generator; the one there is: vcf_cases")
            c.text(gen.get("prefix"), f"{gwhere}.prefix")
            for key, low, high in (("count", 1, 500), ("samples", 1, 50), ("variants", 1, 100_000)):
                value = gen.get(key, low)
                if not isinstance(value, int) or not low <= value <= high:
                    c.fail(f"{gwhere}.{key}", f"expected an integer from {low} to {high}, found {value!r}")
    c.unique(buckets, "name", "aws.s3_buckets")
    return buckets


def _check_log_groups(c: _Checker, groups: list) -> list:
    for i, group in enumerate(groups):
        where = f"aws.log_groups[{i}]"
        group = c.mapping(group, where, {"name", "retention_days"}, {"name"})
        c.text(group.get("name"), f"{where}.name", _LOG_GROUP)
        if "retention_days" in group and group["retention_days"] not in LOG_RETENTION_DAYS:
            c.fail(f"{where}.retention_days", f"{group['retention_days']!r} is not a CloudWatch retention; "
                                              f"use one of {sorted(LOG_RETENTION_DAYS)}")
    c.unique(groups, "name", "aws.log_groups")
    return groups


def parse_cpu(value: Any) -> int | None:
    """ECS cpu as units: 256, "256" or "0.25 vCPU"."""
    text = str(value).strip()
    if re.fullmatch(r"\d+", text):
        return int(text)
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*vcpu", text, re.IGNORECASE)
    return int(float(m.group(1)) * 1024) if m else None


def parse_memory(value: Any) -> int | None:
    """ECS memory as MiB: 512, "512" or "0.5 GB"."""
    text = str(value).strip()
    if re.fullmatch(r"\d+", text):
        return int(text)
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*gb", text, re.IGNORECASE)
    return int(float(m.group(1)) * 1024) if m else None


def _check_task_definition(c: _Checker, td: Any, where: str, region: str, *, role_names: set,
                           log_group_names: set, repo_names: set) -> None:
    if not isinstance(td, dict):
        c.fail(where, f"expected a mapping (an ECS RegisterTaskDefinition request), found {td!r}")
        return
    c.text(td.get("family"), f"{where}.family", _FAMILY, "up to 255 letters, digits, - and _")
    fargate = "FARGATE" in (td.get("requiresCompatibilities") or [])
    cpu = parse_cpu(td["cpu"]) if "cpu" in td else None
    memory = parse_memory(td["memory"]) if "memory" in td else None
    if "cpu" in td and cpu is None:
        c.fail(f"{where}.cpu", f"{td['cpu']!r} is not a cpu value: use units (\"256\") or \"0.25 vCPU\"")
    if "memory" in td and memory is None:
        c.fail(f"{where}.memory", f"{td['memory']!r} is not a memory value: use MiB (\"512\") or \"0.5 GB\"")
    if fargate:
        if td.get("networkMode") != "awsvpc":
            c.fail(f"{where}.networkMode", f"Fargate requires \"awsvpc\", found {td.get('networkMode')!r}")
        if cpu is None or memory is None:
            c.fail(where, "Fargate task definitions need task-level cpu and memory")
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
    for key in ("executionRoleArn", "taskRoleArn"):
        if key in td:
            _check_role_arn(c, td[key], f"{where}.{key}", role_names)
    containers = td.get("containerDefinitions")
    if not isinstance(containers, list) or not containers:
        c.fail(f"{where}.containerDefinitions", "expected a non-empty list of containers")
        return
    names = [cd.get("name") for cd in containers if isinstance(cd, dict)]
    if not any(cd.get("essential", True) for cd in containers if isinstance(cd, dict)):
        c.fail(f"{where}.containerDefinitions", "at least one container must be essential")
    for j, cd in enumerate(containers):
        cwhere = f"{where}.containerDefinitions[{j}]"
        if not isinstance(cd, dict):
            c.fail(cwhere, f"expected a mapping, found {cd!r}")
            continue
        c.text(cd.get("name"), f"{cwhere}.name")
        image = c.text(cd.get("image"), f"{cwhere}.image")
        if image and image.startswith("{registry}/"):
            repo = image[len("{registry}/"):].split("@")[0].rsplit(":", 1)[0]
            if repo not in repo_names:
                c.fail(f"{cwhere}.image", f"repository {repo!r} is not in aws.ecr_repositories; add it there "
                                          "so its image is pushed before tasks use it")
        for key in ("entryPoint", "command"):
            if key in cd and not (isinstance(cd[key], list) and all(isinstance(a, str) for a in cd[key])):
                c.fail(f"{cwhere}.{key}", f"expected a list of strings (exec form), found {cd[key]!r}")
        for dep_i, dep in enumerate(cd.get("dependsOn") or []):
            if not isinstance(dep, dict) or dep.get("containerName") not in names:
                c.fail(f"{cwhere}.dependsOn[{dep_i}].containerName",
                       f"{dep.get('containerName') if isinstance(dep, dict) else dep!r} is not a container of "
                       f"this task definition ({', '.join(map(str, names))})")
            elif dep.get("condition") not in DEPENDS_ON_CONDITIONS:
                c.fail(f"{cwhere}.dependsOn[{dep_i}].condition",
                       f"{dep.get('condition')!r}; use one of {', '.join(sorted(DEPENDS_ON_CONDITIONS))}")
        for env_i, env in enumerate(cd.get("environment") or []):
            if not (isinstance(env, dict) and set(env) == {"name", "value"} and isinstance(env["value"], str)):
                c.fail(f"{cwhere}.environment[{env_i}]", f"expected {{name: ..., value: \"text\"}}, found {env!r}")
        if fargate and (cd.get("memory") and memory and int(cd["memory"]) > memory):
            c.fail(f"{cwhere}.memory", f"{cd['memory']} exceeds the task's memory {memory}")
        log = cd.get("logConfiguration")
        if log is None:
            continue
        if not isinstance(log, dict):
            c.fail(f"{cwhere}.logConfiguration", "expected a mapping")
            continue
        if log.get("logDriver") == "awslogs":
            opts = log.get("options") or {}
            group = opts.get("awslogs-group")
            if group not in log_group_names:
                c.fail(f"{cwhere}.logConfiguration.options.awslogs-group",
                       f"{group!r} is not seeded; add it to aws.log_groups (ECS does not create it "
                       "unless awslogs-create-group is set and the execution role may)")
            if opts.get("awslogs-region") != region:
                c.fail(f"{cwhere}.logConfiguration.options.awslogs-region",
                       f"{opts.get('awslogs-region')!r} differs from aws.region {region!r}")
            if fargate and not opts.get("awslogs-stream-prefix"):
                c.fail(f"{cwhere}.logConfiguration.options.awslogs-stream-prefix",
                       "required on Fargate (and EcsRunTaskOperator needs it to find the task's log stream)")
            if fargate and "executionRoleArn" not in td:
                c.fail(f"{where}.executionRoleArn", "awslogs on Fargate needs an execution role")


def _check_role_arn(c: _Checker, arn: Any, where: str, role_names: set) -> None:
    m = _ROLE_ARN.match(arn) if isinstance(arn, str) else None
    if not m:
        c.fail(where, f"{arn!r} is not an IAM role ARN (arn:aws:iam::{{account_id}}:role/NAME)")
    elif m.group(2) not in role_names:
        c.fail(where, f"role {m.group(2)!r} does not exist: it is not in aws.iam_roles "
                      f"({', '.join(sorted(map(str, role_names))) or 'none'}); add it or fix the ARN")


def check_images(c: _Checker, value: Any, where: str, base: Path) -> list[dict]:
    """`images:`: what is built locally, each {tag, context, dockerfile, build_args}, paths relative
    to the file; returned with `context` and `dockerfile` as absolute paths."""
    images = []
    for i, image in enumerate(c.items(value, where)):
        iwhere = f"{where}[{i}]"
        image = c.mapping(image, iwhere, {"tag", "context", "dockerfile", "build_args"}, {"tag", "context"})
        tag = c.text(image.get("tag"), f"{iwhere}.tag", _IMAGE_TAG,
                     "a local image name with an explicit tag, e.g. team/task:1.0 (not :latest, which "
                     "Kubernetes would try to pull)")
        if tag and tag.endswith(":latest"):
            c.fail(f"{iwhere}.tag", f"{tag!r}: give a tag other than latest; with :latest Kubernetes pulls "
                                    "instead of using the loaded image, and no registry is reachable")
        context_text = c.text(image.get("context"), f"{iwhere}.context")
        dockerfile_text = image.get("dockerfile", "Dockerfile")
        build_args = image.get("build_args") or {}
        if not isinstance(build_args, dict) or not all(isinstance(k, str) and isinstance(v, (str, int, float))
                                                       and not isinstance(v, bool) for k, v in build_args.items()):
            c.fail(f"{iwhere}.build_args", f"expected a mapping of NAME: value, found {build_args!r}")
            build_args = {}
        if not isinstance(dockerfile_text, str) or not dockerfile_text:
            c.fail(f"{iwhere}.dockerfile", f"expected a path relative to the context, found {dockerfile_text!r}")
            continue
        if context_text is None:
            continue
        context = (base / context_text).resolve()
        dockerfile = (context / dockerfile_text).resolve()
        if not context.is_dir():
            c.fail(f"{iwhere}.context", f"{context_text!r}: no such directory next to {c.path.name} ({context})")
        elif not dockerfile.is_file():
            c.fail(f"{iwhere}.dockerfile", f"{dockerfile_text!r}: no such file in {context}; give the "
                                           "Dockerfile's path relative to the context")
        elif tag:
            images.append({"tag": tag, "context": context, "dockerfile": dockerfile,
                           "build_args": {k: str(v) for k, v in build_args.items()}})
    c.unique([i for i in c.items(value, where) if isinstance(i, dict)], "tag", where)
    return images


def _check_declared(c: _Checker, tag: Any, where: str, images: list[dict]) -> None:
    if c.text(tag, where) and tag not in {i["tag"] for i in images}:
        declared = ", ".join(i["tag"] for i in images) or "none"
        c.fail(where, f"{tag!r} is not in `images` (declared: {declared}); declare it there so `make up` "
                      "builds it before it is pushed or loaded")


def _check_kubernetes(c: _Checker, value: Any, images: list[dict]) -> dict:
    k = c.mapping(value, "kubernetes", {"namespace", "service_account", "connection_id", "xcom_sidecar_image",
                                        "images", "rules", "secrets"},
                  {"namespace", "service_account", "connection_id", "xcom_sidecar_image", "rules"})
    c.text(k.get("namespace"), "kubernetes.namespace", _DNS_LABEL, "a DNS label: lowercase letters, digits, -")
    c.text(k.get("service_account"), "kubernetes.service_account", _DNS_SUBDOMAIN,
           "lowercase letters, digits, - and .")
    c.text(k.get("connection_id"), "kubernetes.connection_id", _CONN_ID)
    c.text(k.get("xcom_sidecar_image"), "kubernetes.xcom_sidecar_image")
    # Which declared images the cluster gets; all of them unless listed.
    if "images" in k:
        for i, image in enumerate(c.items(k.get("images"), "kubernetes.images")):
            _check_declared(c, image, f"kubernetes.images[{i}]", images)
    else:
        k = {**k, "images": [i["tag"] for i in images]}
    for i, rule in enumerate(c.items(k.get("rules"), "kubernetes.rules")):
        where = f"kubernetes.rules[{i}]"
        rule = c.mapping(rule, where, {"apiGroups", "resources", "verbs", "resourceNames"},
                         {"apiGroups", "resources", "verbs"})
        for key in ("apiGroups", "resources", "verbs"):
            items = rule.get(key)
            if not isinstance(items, list) or not all(isinstance(x, str) for x in items) or not items:
                c.fail(f"{where}.{key}", f"expected a non-empty list of strings, found {items!r}")
            elif "*" in items and key != "apiGroups":
                c.fail(f"{where}.{key}", "wildcards are refused: Airflow gets only what the operators need")
    secrets = k.get("secrets") or {}
    if not isinstance(secrets, dict):
        c.fail("kubernetes.secrets", "expected a mapping of secret name: {KEY: value}")
        secrets = {}
    for name, values in secrets.items():
        if not isinstance(name, str) or not _DNS_SUBDOMAIN.match(name):
            c.fail(f"kubernetes.secrets.{name}", "secret names are lowercase letters, digits, - and .")
        if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
            c.fail(f"kubernetes.secrets.{name}", "expected a mapping of KEY: \"text value\"")
    return k
