"""The seed config (`sandbox.yaml`): loading, validation and placeholder expansion.

Validation runs over the whole file before anything is seeded and reports every problem at once,
each naming the file, the field and what to do. Every field's type is checked before it is used, so
no input ends in a traceback. It also rejects what real AWS would reject but an emulator may accept
(Fargate cpu/memory pairs, role ARNs and log groups that are not seeded, IAM policy documents AWS
would refuse, task definitions that do not fit ECS's RegisterTaskDefinition request), so a
definition that works here also registers on AWS, and nothing is applied half-way.
"""
from __future__ import annotations

import datetime
import difflib
import functools
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


from sandbox.core import airflow_versions
from sandbox.seeding.airflow_settings import STATIC_KEYS_REFUSED, static_aws_keys, validate_pools
from sandbox.core.fargate_rules import (FARGATE_SIZES, HOST_ACCESS_SETTING, allows_host_access, fargate_refusals,
                                         host_access, parse_cpu, parse_memory)
from sandbox.metrics.pricing import Prices, validate_prices
from sandbox.seeding.errors import ConfigError, read_yaml

PLACEHOLDERS = ("account_id", "registry")
# The emulator's account: what aws.account_id is when left out.
DEFAULT_ACCOUNT_ID = "000000000000"
TOP_LEVEL = "(top level)"
# What an image's build_args may use; the host's image builder replaces them (sandbox/host/images.py).
BUILD_ARG_PLACEHOLDERS = ("python_base", "debian_base")

LOG_RETENTION_DAYS = {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827,
                      2192, 2557, 2922, 3288, 3653}
DEPENDS_ON_CONDITIONS = {"START", "COMPLETE", "SUCCESS", "HEALTHY"}

# IAM's policy language (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_grammar.html).
POLICY_VERSION = "2012-10-17"
POLICY_FIELDS = {"Version", "Id", "Statement"}
STATEMENT_FIELDS = {"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource",
                    "NotResource", "Condition"}
# IAM quota: a role's inline policies together, whitespace not counted.
ROLE_INLINE_POLICY_CHARS = 10_240

_ROLE_NAME = re.compile(r"^[\w+=,.@-]{1,64}$")
_POLICY_NAME = re.compile(r"^[\w+=,.@-]{1,128}$")
_SERVICE_PRINCIPAL = re.compile(r"^[a-z0-9][a-z0-9.-]*\.[a-z]{2,}$")
_ACCOUNT = re.compile(r"^(\{account_id\}|\d{12})$")
_SERVICE_ACCOUNT_REF = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?/[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
# Keys that would make a pod act as someone other than kubernetes.aws_role (the SDK reads them first).
STATIC_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
_ACTION = re.compile(r"^(\*|[A-Za-z0-9-]+:[A-Za-z0-9*?]+)$")
_SID = re.compile(r"^[A-Za-z0-9]+$")
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_REPO_NAME = re.compile(r"^(?=.{2,256}$)(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$")
_FAMILY = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_LOG_GROUP = re.compile(r"^[\w\-./#]{1,512}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_CONN_ID = re.compile(r"^[\w.-]{1,250}$")
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")
_BUILD_ARG = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_IMAGE_TAG = re.compile(r"^[a-z0-9]+(?:[._/-][a-z0-9]+)*:[\w][\w.-]{0,127}$")
_ROLE_ARN = re.compile(r"^arn:aws:iam::(\{account_id\}|\d{12}):role/(?:[\w+=,.@-]+/)*([\w+=,.@-]+)$")


def role_arn(account_id: str, name: str) -> str:
    return f"arn:aws:iam::{account_id}:role/{name}"


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
    # The Airflow the project names (`airflow: {version, flavour}`); unset: the sandbox's own.
    airflow_version: airflow_versions.AirflowVersion = field(default_factory=airflow_versions.AirflowVersion)
    pools: list[dict] = field(default_factory=list)
    prices: Prices = field(default_factory=Prices)
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

    def role_arn(self, name: str) -> str:
        """The ARN of a role of aws.iam_roles, in this config's account."""
        return role_arn(self.account_id, name)

    def object_body(self, obj: dict) -> bytes:
        """The bytes of a seed object: inline `content`, or `file` relative to the config."""
        if "content" in obj:
            return obj["content"].encode()
        return (self.path.parent / obj["file"]).read_bytes()


def _found(value: Any) -> str:
    """A wrong value as a problem shows it: its YAML kind, and the value cut to a readable length."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, (datetime.date, datetime.datetime)):
        return f"the date {value.isoformat()}"
    kind = {int: "number", float: "number", str: "text", list: "a list", dict: "a mapping"}.get(type(value),
                                                                                              type(value).__name__)
    return f"{kind} {_shown(value)}"


def _shown(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _within(where: str, path: str) -> bool:
    return where == path or where.startswith((path + ".", path + "["))


def _field(where: str, key: Any) -> str:
    """The path of `key` inside the mapping at `where`; a top-level key is its own path (aws, not
    "(top level).aws"), so the problems of a missing section match the paths of the fields inside it."""
    return str(key) if where == TOP_LEVEL else f"{where}.{key}"


class _Checker:
    """Collects problems with their field paths instead of stopping at the first.

    Each helper checks a value's type before anything looks inside it, reports what it expected
    and what it found, and returns the value (or an empty/None stand-in), so later checks never
    see a value of the wrong type.
    """

    def __init__(self, path: Path):
        self.path = path
        self.problems: list[str] = []
        self._settled: list[str] = []  # fields whose type problem is reported: nothing more is said inside them

    def fail(self, where: str, message: str) -> None:
        if any(_within(where, settled) for settled in self._settled):
            return
        self.problems.append(f"{self.path.name}: {where}: {message}")

    def settle(self, where: str, message: str) -> None:
        """Reports a field's type problem; later problems at or inside that field add nothing and are dropped."""
        self.fail(where, message)
        self._settled.append(where)

    def mapping(self, value: Any, where: str, allowed: set[str], required: set[str] = frozenset()) -> dict:
        if value is None:
            value = {}
        if not isinstance(value, dict):
            self.fail(where, f"expected a mapping, found {_found(value)}")
            return {}
        for key in sorted(set(value) - allowed, key=str):
            close = difflib.get_close_matches(str(key), sorted(allowed), n=1)
            self.fail(_field(where, key), f"unknown field; {f'did you mean {close[0]}? ' if close else ''}"
                                          f"expected one of: {', '.join(sorted(allowed))}")
        for key in sorted(required - set(value)):
            # Settled: the check of the field's type that follows would report the same absence again.
            self.settle(_field(where, key), "required field is missing")
        return value

    def items(self, value: Any, where: str) -> list:
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(where, f"expected a list, found {_found(value)}")
            return []
        return value

    def text(self, value: Any, where: str, pattern: re.Pattern | None = None, hint: str = "",
             optional: bool = False) -> str | None:
        """A non-empty string (matching `pattern`); with `optional`, a missing one (None) is fine."""
        if value is None and optional:
            return None
        if not isinstance(value, str) or not value:
            quote = "; quote it" if isinstance(value, (int, float, datetime.date)) else ""
            self.fail(where, f"expected a non-empty string, found {_found(value)}{quote}")
            return None
        if pattern and not pattern.match(value):
            self.fail(where, f"{_shown(value)} is not valid{': ' + hint if hint else ''}")
            return None
        return value

    def integer(self, value: Any, where: str, low: int, high: int) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.fail(where, f"expected an integer from {low} to {high}, found {_found(value)}")
            return None
        return value

    def string_list(self, value: Any, where: str, pattern: re.Pattern | None = None, hint: str = "",
                    non_empty: bool = True, blank_items: bool = False) -> list[str] | None:
        """A list of strings, each matching `pattern`; None (and a problem) when it is not one."""
        if not isinstance(value, list) or (non_empty and not value):
            self.fail(where, f"expected a {'non-empty ' if non_empty else ''}list of strings, found {_found(value)}")
            return None
        ok = True
        for i, item in enumerate(value):
            if blank_items and item == "":
                continue
            ok = self.text(item, f"{where}[{i}]", pattern, hint) is not None and ok
        return value if ok else None

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

    def unique(self, entries: list, key: str, where: str) -> None:
        """Names that are not strings are left to the check of the name itself."""
        seen: set[str] = set()
        for i, entry in enumerate(entries):
            name = entry.get(key) if isinstance(entry, dict) else None
            if not isinstance(name, str):
                continue
            if name in seen:
                self.fail(f"{where}[{i}].{key}", f"duplicate {key} {name!r}; each must appear once")
            seen.add(name)


def _names(entries: list, key: str = "name") -> set[str]:
    return {e[key] for e in entries if isinstance(e, dict) and isinstance(e.get(key), str)}


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except (OSError, ValueError):  # a name too long for the file system, a NUL byte
        return False


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def load_config(path: str | Path) -> SeedConfig:
    """Reads and validates the seed config; raises ConfigError listing every problem."""
    path = Path(path)
    raw = read_yaml(path, ConfigError, "the seed config is required (copy sandbox.yaml from the repository)")
    return validate_config(raw, path)


def load_images(path: Path) -> list[dict]:
    """A file holding only an `images:` list (the sandbox's own images.yaml), checked like sandbox.yaml's."""
    raw = read_yaml(path, ConfigError, "the sandbox's images.yaml is part of the checkout")
    c = _Checker(path)
    top = c.mapping(raw, TOP_LEVEL, {"images"}, {"images"})
    images = check_images(c, top.get("images"), "images", path.parent)
    if c.problems:
        raise ConfigError(path, c.problems)
    return images


def validate_config(raw: Any, path: Path) -> SeedConfig:
    c = _Checker(path)
    top = c.mapping(raw, TOP_LEVEL, {"images", "aws", "airflow", "kubernetes", "prices"}, {"aws"})
    declared: set[str] = set()
    images = check_images(c, top.get("images"), "images", path.parent, declared)
    aws = c.mapping(top.get("aws"), "aws",
                    {"region", "account_id", "airflow_role", "iam_roles", "s3_buckets", "log_groups",
                     "ecs_clusters", "ecr_repositories", "task_definitions"}, {"region"})
    region = c.text(aws.get("region"), "aws.region", _REGION, "expected an AWS region such as us-east-1") or ""
    account_id = aws.get("account_id", DEFAULT_ACCOUNT_ID)
    if not (isinstance(account_id, str) and re.fullmatch(r"\d{12}", account_id)):
        c.fail("aws.account_id", f"expected 12 digits as a quoted string, found {_found(account_id)}; leave it "
                                 f"out for the emulator's account ({DEFAULT_ACCOUNT_ID})")
        account_id = DEFAULT_ACCOUNT_ID

    roles = _check_roles(c, c.items(aws.get("iam_roles"), "aws.iam_roles"))
    role_names = _names(roles)
    airflow_role = aws.get("airflow_role")
    if airflow_role is not None and c.text(airflow_role, "aws.airflow_role", _ROLE_NAME, "a role name from "
                                           "aws.iam_roles") and airflow_role not in role_names:
        c.fail("aws.airflow_role", f"role {airflow_role!r} is not in aws.iam_roles "
                                   f"({', '.join(sorted(role_names)) or 'none'}); add it or fix the name")
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
               "2-256 lowercase letters, digits and . _ - / separators")
        _check_declared(c, repo.get("image"), f"aws.ecr_repositories[{i}].image", declared)
    c.unique(repos, "name", "aws.ecr_repositories")

    task_defs = c.items(aws.get("task_definitions"), "aws.task_definitions")
    for i, td in enumerate(task_defs):
        _check_task_definition(c, td, f"aws.task_definitions[{i}]", region, role_names=role_names,
                               log_group_names=_names(log_groups), repo_names=_names(repos))
    c.unique(task_defs, "family", "aws.task_definitions")
    c.placeholders(aws, "aws")

    airflow = c.mapping(top.get("airflow"), "airflow", {"version", "flavour", "connections", "variables", "pools"})
    airflow_version = airflow_versions.declared(airflow)
    why = airflow_versions.problem(airflow_version.version, airflow_version.flavour)
    if why:
        c.fail("airflow.version" if airflow_version.flavour in airflow_versions.FLAVOURS else "airflow.flavour", why)
        airflow_version = airflow_versions.AirflowVersion()
    pools = validate_pools(airflow.get("pools"), "airflow.pools", c.fail)
    connections = c.items(airflow.get("connections"), "airflow.connections")
    for i, conn in enumerate(connections):
        _check_connection(c, conn, f"airflow.connections[{i}]")
    c.unique(connections, "conn_id", "airflow.connections")
    variables = _check_variables(c, airflow.get("variables"))

    kubernetes = _check_kubernetes(c, top.get("kubernetes"), images, declared, roles) \
        if top.get("kubernetes") is not None else None
    prices = validate_prices(top.get("prices"), "prices", c.fail)

    if c.problems:
        raise ConfigError(path, c.problems)
    return SeedConfig(path=path, region=region, account_id=account_id, iam_roles=roles, s3_buckets=buckets,
                      log_groups=log_groups, ecs_clusters=clusters, ecr_repositories=repos,
                      task_definitions=task_defs, connections=connections, variables=variables,
                      kubernetes=kubernetes, images=images, pools=pools, airflow_role=airflow_role,
                      airflow_version=airflow_version,
                      prices=prices, raw=raw)


def _check_connection(c: _Checker, conn: Any, where: str) -> None:
    conn = c.mapping(conn, where, {"conn_id", "conn_type", "description", "host", "port", "login",
                                   "password", "schema", "extra"}, {"conn_id", "conn_type"})
    c.text(conn.get("conn_id"), f"{where}.conn_id", _CONN_ID, "letters, digits, . _ -")
    c.text(conn.get("conn_type"), f"{where}.conn_type")
    for key in ("description", "host", "login", "password", "schema"):
        if conn.get(key) is not None and not isinstance(conn[key], str):
            c.fail(f"{where}.{key}", f"expected text, found {_found(conn[key])}; quote it so YAML keeps it as written")
    if "port" in conn:
        c.integer(conn["port"], f"{where}.port", 1, 65535)
    for key in static_aws_keys(conn):
        c.fail(f"{where}.{key}" if key in ("login", "password") else f"{where}.extra.{key}", STATIC_KEYS_REFUSED)
    if "extra" in conn:
        extra = conn["extra"]
        if not isinstance(extra, dict):
            c.fail(f"{where}.extra", "expected a mapping of extra fields (it is stored as JSON), "
                                     f"found {_found(extra)}")
        elif not all(isinstance(k, str) for k in extra):
            keys = [k for k in extra if not isinstance(k, str)]
            c.fail(f"{where}.extra", f"field names must be text, found {keys!r}; quote them (they would come back "
                                     "from Airflow as text and not round-trip)")
        elif not _json_storable(extra):
            c.fail(f"{where}.extra", "has a value JSON cannot store (an unquoted date or time?); quote it")


def _json_storable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def _check_variables(c: _Checker, variables: Any) -> dict[str, str]:
    if variables is None:
        return {}
    if not isinstance(variables, dict):
        c.fail("airflow.variables", f"expected a mapping of name: value, found {_found(variables)}")
        return {}
    normalized = {}
    for key, value in variables.items():
        if not isinstance(key, str) or not _CONN_ID.match(key):
            c.fail(f"airflow.variables.{key}", "variable names are letters, digits, . _ -")
        elif isinstance(value, str):
            normalized[key] = value
        elif value is None:
            c.fail(f"airflow.variables.{key}", "has no value; give one or remove the variable")
        elif not _json_storable(value):
            c.fail(f"airflow.variables.{key}", f"{_found(value)} cannot be stored as JSON (an unquoted date?); "
                                               "quote the value")
        else:  # lists, numbers, mappings are stored as JSON, as Variable.get(deserialize_json=True) reads them
            normalized[key] = json.dumps(value)
    return normalized


def _check_roles(c: _Checker, roles: list) -> list:
    for i, role in enumerate(roles):
        where = f"aws.iam_roles[{i}]"
        role = c.mapping(role, where, {"name", "description", "trusted_services", "trusted_accounts",
                                       "trusted_service_accounts", "policies"}, {"name"})
        c.text(role.get("name"), f"{where}.name", _ROLE_NAME, "up to 64 of letters, digits and +=,.@_-")
        description = role.get("description")
        if description is not None and (not isinstance(description, str) or len(description) > 1000):
            c.fail(f"{where}.description", f"expected text of up to 1000 characters (IAM's limit), "
                                           f"found {_found(description)}")
        trusted = []
        for key, pattern, hint in (
                ("trusted_services", _SERVICE_PRINCIPAL, "a service principal such as ecs-tasks.amazonaws.com"),
                ("trusted_accounts", _ACCOUNT, "an account id: 12 digits as a quoted string, or \"{account_id}\""),
                ("trusted_service_accounts", _SERVICE_ACCOUNT_REF,
                 "a Kubernetes service account as namespace/name, such as airflow-tasks/default")):
            value = role.get(key)
            if value is not None:
                trusted.append(c.string_list(value, f"{where}.{key}", pattern, hint, non_empty=False))
        if all(t == [] for t in trusted):  # a list of the wrong kind is reported as such, not as "no one"
            c.fail(where, "a role needs someone to assume it: set trusted_services, trusted_accounts and/or "
                          "trusted_service_accounts")
        policies = role.get("policies")
        if policies is None:
            continue
        if not isinstance(policies, dict):
            c.fail(f"{where}.policies", f"expected a mapping of policy name: policy document, found {_found(policies)}")
            continue
        chars = 0
        for name, document in policies.items():
            pwhere = f"{where}.policies.{name}"
            if not isinstance(name, str) or not _POLICY_NAME.match(name):
                c.fail(pwhere, "policy names are up to 128 letters, digits and +=,.@_-")
            if _check_policy_document(c, document, pwhere):
                # IAM counts a role's inline policies together, without whitespace.
                chars += len("".join(json.dumps(document, separators=(",", ":")).split()))
        if chars > ROLE_INLINE_POLICY_CHARS:
            c.fail(f"{where}.policies", f"the role's inline policies are {chars} characters together; IAM allows "
                                        f"{ROLE_INLINE_POLICY_CHARS} per role (whitespace not counted): use wildcards "
                                        "in Action/Resource or split the permissions over roles")
    c.unique(roles, "name", "aws.iam_roles")
    return roles


def _check_policy_document(c: _Checker, document: Any, where: str) -> bool:
    """An inline role policy as IAM checks it (PutRolePolicy refuses a document that fails these
    checks, after the role and its other policies were already changed). True when it is valid."""
    before = len(c.problems)
    if not isinstance(document, dict):
        c.fail(where, f"expected an IAM policy document (a mapping with Version \"{POLICY_VERSION}\" and Statement), "
                      f"found {_found(document)}")
        return False
    document = c.mapping(document, where, POLICY_FIELDS, {"Version", "Statement"})
    version = document.get("Version")
    if "Version" in document and version != POLICY_VERSION:
        quote = " (unquoted, YAML reads it as a date: quote it)" if isinstance(version, datetime.date) else ""
        c.fail(f"{where}.Version", f"expected \"{POLICY_VERSION}\", the current policy language, found "
                                   f"{_found(version)}{quote}")
    if "Id" in document:
        c.text(document["Id"], f"{where}.Id")
    statements = document.get("Statement")
    sids: set[str] = set()
    if isinstance(statements, dict):  # IAM takes one statement without the list around it
        _check_statement(c, statements, f"{where}.Statement", sids)
    elif isinstance(statements, list) and statements:
        for j, statement in enumerate(statements):
            _check_statement(c, statement, f"{where}.Statement[{j}]", sids)
    elif "Statement" in document:
        c.fail(f"{where}.Statement", "expected a non-empty list of statements (or a single statement mapping), "
                                     f"found {_found(statements)}")
    return len(c.problems) == before


def _check_statement(c: _Checker, statement: Any, where: str, sids: set[str]) -> None:
    if not isinstance(statement, dict):
        c.fail(where, f"expected a statement (a mapping with Effect, Action and Resource), found {_found(statement)}")
        return
    statement = c.mapping(statement, where, STATEMENT_FIELDS, {"Effect"})
    for key in ("Principal", "NotPrincipal"):
        if key in statement:
            c.fail(f"{where}.{key}", "not allowed in a role's own policy (an identity policy: the role is the "
                                     "principal, and IAM refuses the document); who may assume the role goes in "
                                     "the role's trusted_services / trusted_accounts")
    if "Sid" in statement:
        sid = c.text(statement["Sid"], f"{where}.Sid", _SID, "ASCII letters and digits only")
        if sid in sids:
            c.fail(f"{where}.Sid", f"duplicate Sid {sid!r}; each statement's Sid must be unique in the policy")
        elif sid:
            sids.add(sid)
    effect = statement.get("Effect")
    if "Effect" in statement and effect not in ("Allow", "Deny"):
        c.fail(f"{where}.Effect", "expected Allow or Deny (IAM takes them only so capitalised), "
                                  f"found {_found(effect)}")
    _check_policy_strings(c, statement, where, ("Action", "NotAction"), _ACTION,
                          "\"service:Action\" such as \"s3:GetObject\" (wildcards * and ? allowed), or \"*\"")
    _check_policy_strings(c, statement, where, ("Resource", "NotResource"), _RESOURCE,
                          "an ARN such as \"arn:aws:s3:::bucket/*\", or \"*\"")
    if "Condition" in statement:
        _check_condition(c, statement["Condition"], f"{where}.Condition")


_RESOURCE = re.compile(r"^(\*|arn:[^:\s]+:[^:\s]*:[^:\s]*:[^:\s]*:\S+)$")


def _check_policy_strings(c: _Checker, statement: dict, where: str, keys: tuple[str, str], pattern: re.Pattern,
                          hint: str) -> None:
    """Action/NotAction or Resource/NotResource: exactly one of the two, a string or a non-empty list of them."""
    given = [key for key in keys if key in statement]
    if not given:
        c.fail(f"{where}.{keys[0]}", f"required field is missing: give {keys[0]} (or {keys[1]}), {hint}")
        return
    if len(given) == 2:
        c.fail(f"{where}.{keys[1]}", f"give {keys[0]} or {keys[1]}, not both (IAM refuses the statement)")
    for key in given:
        value = statement[key]
        if isinstance(value, str):
            c.text(value, f"{where}.{key}", pattern, hint)
        elif isinstance(value, list) and value:
            for k, item in enumerate(value):
                c.text(item, f"{where}.{key}[{k}]", pattern, hint)
        else:
            c.fail(f"{where}.{key}", f"expected {hint}, or a non-empty list of them; found {_found(value)}")


# IAM's condition operators, case-sensitive; each but Null may end in IfExists
# (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html).
CONDITION_OPERATORS = {
    "StringEquals", "StringNotEquals", "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase", "StringLike",
    "StringNotLike", "NumericEquals", "NumericNotEquals", "NumericLessThan", "NumericLessThanEquals",
    "NumericGreaterThan", "NumericGreaterThanEquals", "DateEquals", "DateNotEquals", "DateLessThan",
    "DateLessThanEquals", "DateGreaterThan", "DateGreaterThanEquals", "Bool", "BinaryEquals", "IpAddress",
    "NotIpAddress", "ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike"}
_CONDITION_OPERATOR = re.compile(r"^(?:ForAllValues:|ForAnyValue:)?(?:Null|(\w+?)(?:IfExists)?)$")
_CONDITION_KEY = re.compile(r"^[A-Za-z0-9-]+:\S+$")


def _check_condition(c: _Checker, condition: Any, where: str) -> None:
    usage = ("a mapping of operator: {condition key: value or list of values}, "
             "e.g. StringEquals: {aws:RequestedRegion: us-east-1}")
    if not isinstance(condition, dict) or not condition:
        c.fail(where, f"expected {usage}; found {_found(condition)}")
        return
    for operator, block in condition.items():
        owhere = f"{where}.{operator}"
        m = _CONDITION_OPERATOR.match(operator) if isinstance(operator, str) else None
        if not m or (m.group(1) is not None and m.group(1) not in CONDITION_OPERATORS):
            close = difflib.get_close_matches(str(operator), sorted(CONDITION_OPERATORS), n=1)
            c.fail(owhere, "is not an IAM condition operator (they are case-sensitive: StringEquals, ArnLike, Bool, "
                           f"Null, ...{'; did you mean ' + close[0] + '?' if close else ''})")
        if not isinstance(block, dict) or not block:
            c.fail(owhere, f"expected a mapping of condition key: value or list of values, found {_found(block)}")
            continue
        for key, value in block.items():
            values = value if isinstance(value, list) else [value]
            if not isinstance(key, str) or not _CONDITION_KEY.match(key):
                c.fail(f"{owhere}.{key}", "is not a condition key: give its service prefix, as in aws:SourceAccount "
                                          "or s3:prefix (IAM refuses keys without one)")
            elif not values or not all(isinstance(v, (str, int, float, bool)) for v in values):
                c.fail(f"{owhere}.{key}", f"expected text, a number or true/false, or a non-empty list of them; "
                                          f"found {_found(value)}")


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
            key = c.text(obj.get("key"), f"{owhere}.key")
            if key and len(key.encode()) > 1024:
                c.fail(f"{owhere}.key", f"is {len(key.encode())} bytes long; S3 keys are at most 1024 bytes (UTF-8)")
            c.text(obj.get("content_type"), f"{owhere}.content_type", optional=True)
            if ("content" in obj) == ("file" in obj):
                c.fail(owhere, "give exactly one of `content` (inline text) or `file` (path relative to the config)")
            elif "file" in obj:
                file = c.text(obj["file"], f"{owhere}.file")
                if file and not _is_file(path.parent / file):
                    c.fail(f"{owhere}.file", f"{_shown(file)} not found next to {path.name}")
            elif not isinstance(obj["content"], str):
                c.fail(f"{owhere}.content", f"expected text, found {_found(obj['content'])}; quote it")
        c.unique(objects, "key", f"{where}.objects")
        for j, gen in enumerate(c.items(bucket.get("generated"), f"{where}.generated")):
            gwhere = f"{where}.generated[{j}]"
            gen = c.mapping(gen, gwhere, {"kind", "prefix", "count", "samples", "variants"},
                            {"kind", "prefix", "count"})
            if "kind" in gen and gen["kind"] != "vcf_cases":
                c.fail(f"{gwhere}.kind", f"{_shown(gen['kind'])} is not a generator; the one there is: vcf_cases")
            c.text(gen.get("prefix"), f"{gwhere}.prefix")
            for key, low, high in (("count", 1, 500), ("samples", 1, 50), ("variants", 1, 100_000)):
                if key in gen:
                    c.integer(gen[key], f"{gwhere}.{key}", low, high)
    c.unique(buckets, "name", "aws.s3_buckets")
    return buckets


def _check_log_groups(c: _Checker, groups: list) -> list:
    for i, group in enumerate(groups):
        where = f"aws.log_groups[{i}]"
        group = c.mapping(group, where, {"name", "retention_days"}, {"name"})
        c.text(group.get("name"), f"{where}.name", _LOG_GROUP, "up to 512 letters, digits and _ - . / #")
        retention = group.get("retention_days")
        if "retention_days" in group and (isinstance(retention, bool) or not isinstance(retention, int)
                                          or retention not in LOG_RETENTION_DAYS):
            c.fail(f"{where}.retention_days", f"{_found(retention)} is not a CloudWatch retention; "
                                              f"use one of {sorted(LOG_RETENTION_DAYS)}")
    c.unique(groups, "name", "aws.log_groups")
    return groups


def _task_size(c: _Checker, td: dict, key: str, where: str) -> int | None:
    """The task-level cpu or memory as units/MiB; None when absent or not a size (reported)."""
    if key not in td:
        return None
    value = td[key]
    parse, usage = (parse_cpu, "use units (\"256\") or \"0.25 vCPU\"") if key == "cpu" else \
        (parse_memory, "use MiB (\"512\") or \"0.5 GB\"")
    size = parse(value) if isinstance(value, str) else None
    if size is None:
        c.fail(f"{where}.{key}", f"{_found(value)} is not a {key} value: {usage}")
    return size


def _check_task_definition(c: _Checker, td: Any, where: str, region: str, *, role_names: set,
                           log_group_names: set, repo_names: set) -> None:
    if not isinstance(td, dict):
        c.fail(where, f"expected a mapping (an ECS RegisterTaskDefinition request), found {_found(td)}")
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
            c.fail(f"{where}.networkMode", f"Fargate requires \"awsvpc\", found {_found(td.get('networkMode'))}")
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
    containers = td.get("containerDefinitions")
    if not isinstance(containers, list) or not containers:
        c.fail(f"{where}.containerDefinitions", "expected a non-empty list of containers")
        return
    definitions = [cd for cd in containers if isinstance(cd, dict)]
    names = [cd["name"] for cd in definitions if isinstance(cd.get("name"), str)]
    if definitions and not any(cd.get("essential", True) is not False for cd in definitions):
        c.fail(f"{where}.containerDefinitions", "at least one container must be essential")
    missing_execution_role_reported = False
    for j, cd in enumerate(containers):
        cwhere = f"{where}.containerDefinitions[{j}]"
        if not isinstance(cd, dict):
            c.fail(cwhere, f"expected a mapping, found {_found(cd)}")
            continue
        c.text(cd.get("name"), f"{cwhere}.name", _FAMILY, "up to 255 letters, digits, - and _")
        image = c.text(cd.get("image"), f"{cwhere}.image")
        if image and image.startswith("{registry}/"):
            repo = image[len("{registry}/"):].split("@")[0].rsplit(":", 1)[0]
            if repo not in repo_names:
                c.fail(f"{cwhere}.image", f"repository {repo!r} is not in aws.ecr_repositories; add it there "
                                          "so its image is pushed before tasks use it")
        depends_on = cd.get("dependsOn")
        for dep_i, dep in enumerate(depends_on if isinstance(depends_on, list) else []):
            if not isinstance(dep, dict):
                continue  # reported by the request check
            dwhere = f"{cwhere}.dependsOn[{dep_i}]"
            if dep.get("containerName") not in names:
                c.fail(f"{dwhere}.containerName", f"{_shown(dep.get('containerName'))} is not a container of "
                                                  f"this task definition ({', '.join(names)})")
            if not isinstance(dep.get("condition"), str) or dep["condition"] not in DEPENDS_ON_CONDITIONS:
                c.fail(f"{dwhere}.condition",
                       f"{_shown(dep.get('condition'))}; use one of {', '.join(sorted(DEPENDS_ON_CONDITIONS))}")
        environment = cd.get("environment")
        for env_i, env in enumerate(environment if isinstance(environment, list) else []):
            if isinstance(env, dict) and not {"name", "value"} <= set(env):
                c.fail(f"{cwhere}.environment[{env_i}]",
                       f"expected {{name: ..., value: \"text\"}}, found {_found(env)}")
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
        group = options.get("awslogs-group")
        if not isinstance(group, str) or group not in log_group_names:
            c.fail(f"{owhere}.awslogs-group",
                   f"{_shown(group)} is not seeded; add it to aws.log_groups (ECS does not create it "
                   "unless awslogs-create-group is set and the execution role may)")
        if region and options.get("awslogs-region") != region:  # a missing or wrong aws.region is reported there
            c.fail(f"{owhere}.awslogs-region",
                   f"{_shown(options.get('awslogs-region'))} differs from aws.region {region!r}; use {region!r}")
        if fargate and not options.get("awslogs-stream-prefix"):
            c.fail(f"{owhere}.awslogs-stream-prefix",
                   "required on Fargate (and EcsRunTaskOperator needs it to find the task's log stream)")
        if fargate and "executionRoleArn" not in td and not missing_execution_role_reported:
            c.fail(f"{where}.executionRoleArn", "awslogs on Fargate needs an execution role: add one that may "
                                                "call logs:CreateLogStream and logs:PutLogEvents")
            missing_execution_role_reported = True  # once for the task definition, not once per container


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


def _check_request_shape(c: _Checker, value: Any, shape: Any, where: str, name: str = "") -> None:
    """Checks `value` against a botocore shape: mappings for structures (known fields, required ones),
    lists, maps, text (enums and lengths), integers (ranges) and booleans."""
    kind = shape.type_name
    hint = f"; {_REQUEST_HINTS[name]}" if name in _REQUEST_HINTS else ""

    def wrong(expected: str, advice: str = "") -> None:
        c.settle(where, f"expected {expected}, found {_found(value)}{advice}{hint}")

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
            c.settle(where, f"{_shown(value)} is not one of: {', '.join(shape.enum)}")
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


def _within_limits(c: _Checker, size: int, shape: Any, where: str, unit: str) -> bool:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if (low is not None and size < low) or (high is not None and size > high):
        c.settle(where, f"is {size}{' ' + unit if unit else ''}; ECS takes "
                        f"{low if low is not None else 0} to {high if high is not None else 'any'}")
        return False
    return True


def _check_role_arn(c: _Checker, arn: Any, where: str, role_names: set) -> None:
    m = _ROLE_ARN.match(arn) if isinstance(arn, str) else None
    if not m:
        c.fail(where, f"{_shown(arn)} is not an IAM role ARN (arn:aws:iam::{{account_id}}:role/NAME)")
    elif m.group(2) not in role_names:
        c.fail(where, f"role {m.group(2)!r} does not exist: it is not in aws.iam_roles "
                      f"({', '.join(sorted(role_names)) or 'none'}); add it or fix the ARN")


def check_images(c: _Checker, value: Any, where: str, base: Path, declared: set[str] | None = None) -> list[dict]:
    """`images:`: what is built locally, each {tag, context, dockerfile, build_args}, paths relative
    to the file; returned with `context` and `dockerfile` as absolute paths. `declared` receives every
    valid tag, also of images with other problems, so references to them are not reported as well."""
    images = []
    declared = set() if declared is None else declared
    entries = c.items(value, where)
    for i, image in enumerate(entries):
        iwhere = f"{where}[{i}]"
        image = c.mapping(image, iwhere, {"tag", "context", "dockerfile", "build_args"}, {"tag", "context"})
        tag = c.text(image.get("tag"), f"{iwhere}.tag", _IMAGE_TAG,
                     "a local image name with an explicit tag, e.g. team/task:1.0 (not :latest, which "
                     "Kubernetes would try to pull)")
        if tag and tag.endswith(":latest"):
            c.fail(f"{iwhere}.tag", f"{tag!r}: give a tag other than latest; with :latest Kubernetes pulls "
                                    "instead of using the loaded image, and no registry is reachable")
        if tag:
            declared.add(tag)
        context_text = c.text(image.get("context"), f"{iwhere}.context")
        build_args = _check_build_args(c, image.get("build_args"), f"{iwhere}.build_args")
        dockerfile_text = c.text(image.get("dockerfile", "Dockerfile"), f"{iwhere}.dockerfile",
                                 hint="a path relative to the context")
        if context_text is None or dockerfile_text is None:
            continue
        try:
            context = (base / context_text).resolve()
            dockerfile = (context / dockerfile_text).resolve()
        except (OSError, ValueError, RuntimeError) as exc:  # a NUL byte, a symlink loop
            c.fail(f"{iwhere}.context", f"{_shown(context_text)} is not a usable path: {exc}")
            continue
        if not _is_dir(context):
            shown = str(context) if len(str(context)) <= 120 else str(context)[:119] + "…"
            c.fail(f"{iwhere}.context", f"{_shown(context_text)}: no such directory next to {c.path.name} ({shown})")
        elif not _is_file(dockerfile):
            c.fail(f"{iwhere}.dockerfile", f"{_shown(dockerfile_text)}: no such file in {context}; give the "
                                           "Dockerfile's path relative to the context")
        elif tag and build_args is not None:
            images.append({"tag": tag, "context": context, "dockerfile": dockerfile, "build_args": build_args})
    c.unique(entries, "tag", where)
    return images


def _check_build_args(c: _Checker, value: Any, where: str) -> dict[str, str] | None:
    """NAME: value, values text or numbers; None when something in it is wrong (reported)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        c.fail(where, f"expected a mapping of NAME: value, found {_found(value)}")
        return None
    args: dict[str, str] | None = {}
    for key, arg in value.items():
        awhere = f"{where}.{key}"
        if not isinstance(key, str) or not _BUILD_ARG.match(key):
            c.fail(awhere, "build arg names are letters, digits and _, not starting with a digit (as in ARG NAME)")
            args = None
        elif isinstance(arg, bool) or not isinstance(arg, (str, int, float)):
            c.fail(awhere, f"expected text or a number, found {_found(arg)}")
            args = None
        else:
            unknown = [p for p in _PLACEHOLDER.findall(str(arg)) if p not in BUILD_ARG_PLACEHOLDERS]
            if unknown:
                c.fail(awhere, f"unknown placeholder {{{unknown[0]}}}; known: "
                               + ", ".join("{%s}" % p for p in BUILD_ARG_PLACEHOLDERS))
                args = None
            elif args is not None:
                args[key] = str(arg)
    return args


def _check_declared(c: _Checker, tag: Any, where: str, declared: set[str]) -> None:
    if c.text(tag, where) and tag not in declared:
        c.fail(where, f"{tag!r} is not in `images` (declared: {', '.join(sorted(declared)) or 'none'}); declare it "
                      "there so `make up` builds it before it is pushed or loaded")


def _check_kubernetes(c: _Checker, value: Any, images: list[dict], declared: set[str],
                      roles: list[dict] = ()) -> dict:
    k = c.mapping(value, "kubernetes", {"namespace", "service_account", "connection_id", "xcom_sidecar_image",
                                        "images", "rules", "secrets", "aws_role"},
                  {"namespace", "service_account", "connection_id", "rules"})
    c.text(k.get("namespace"), "kubernetes.namespace", _DNS_LABEL, "a DNS label: lowercase letters, digits, -")
    c.text(k.get("service_account"), "kubernetes.service_account", _DNS_SUBDOMAIN,
           "lowercase letters, digits, - and .")
    c.text(k.get("connection_id"), "kubernetes.connection_id", _CONN_ID, "letters, digits, . _ -")
    # Which declared images the cluster gets; all of them unless listed.
    if "images" in k:
        for i, image in enumerate(c.items(k.get("images"), "kubernetes.images")):
            _check_declared(c, image, f"kubernetes.images[{i}]", declared)
    else:
        k = {**k, "images": [i["tag"] for i in images]}
    if "xcom_sidecar_image" in k:
        c.text(k["xcom_sidecar_image"], "kubernetes.xcom_sidecar_image")
    else:
        k = {**k, "xcom_sidecar_image": _default_sidecar_image(c, k["images"], declared)}
    for i, rule in enumerate(c.items(k.get("rules"), "kubernetes.rules")):
        where = f"kubernetes.rules[{i}]"
        rule = c.mapping(rule, where, {"apiGroups", "resources", "verbs", "resourceNames"},
                         {"apiGroups", "resources", "verbs"})
        for key in ("apiGroups", "resources", "verbs"):
            if key not in rule:
                continue  # reported as missing
            items = c.string_list(rule[key], f"{where}.{key}", blank_items=key == "apiGroups")  # "" is the core group
            if items and "*" in items and key != "apiGroups":
                c.fail(f"{where}.{key}", "wildcards are refused: Airflow gets only what the operators need")
        if "resourceNames" in rule:
            c.string_list(rule["resourceNames"], f"{where}.resourceNames", non_empty=False)
    secrets = k.get("secrets")
    if secrets is None:
        secrets = {}
    if not isinstance(secrets, dict):
        c.fail("kubernetes.secrets", f"expected a mapping of secret name: {{KEY: value}}, found {_found(secrets)}")
        secrets = {}
    for name, values in secrets.items():
        swhere = f"kubernetes.secrets.{name}"
        if not isinstance(name, str) or not _DNS_SUBDOMAIN.match(name):
            c.fail(swhere, "secret names are lowercase letters, digits, - and .")
        if not isinstance(values, dict):
            c.fail(swhere, f"expected a mapping of KEY: \"text value\", found {_found(values)}")
            continue
        for key, text in values.items():
            if not isinstance(key, str) or not _SECRET_KEY.match(key):
                c.fail(f"{swhere}.{key}", "secret keys are letters, digits, - _ and .")
            elif not isinstance(text, str):
                c.fail(f"{swhere}.{key}", f"expected text, found {_found(text)}; quote it")
    if "aws_role" in k:
        _check_pod_role(c, k, secrets, roles)
    return k


def _default_sidecar_image(c: _Checker, loaded: Any, declared: set[str]) -> str | None:
    """KubernetesPodOperator's XCom sidecar when kubernetes.xcom_sidecar_image is left out: the first
    image the cluster loads. Only a loaded image runs there: the operator's own default would be
    pulled, and the cluster reaches no registry."""
    tag = next((t for t in _as_list(loaded) if isinstance(t, str) and t in declared), None)
    if tag is None and loaded == []:  # other lists name undeclared images, and those are reported
        c.fail("kubernetes.xcom_sidecar_image", "not set, and the cluster loads no image it could default to "
                                                "(kubernetes.images); set it to an image of `images` that has "
                                                "/bin/sh and pgrep")
    return tag


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _check_pod_role(c: _Checker, k: dict, secrets: dict, roles: list[dict]) -> None:
    """kubernetes.aws_role: what the namespace's pods act as on AWS (EKS's IRSA: the service account's
    token exchanged through sts:AssumeRoleWithWebIdentity for the role's credentials)."""
    where = "kubernetes.aws_role"
    pod_role = c.mapping(k["aws_role"], where, {"role", "service_account", "secret"}, {"role", "secret"})
    name = c.text(pod_role.get("role"), f"{where}.role", _ROLE_NAME, "a role name from aws.iam_roles")
    account = c.text(pod_role.get("service_account", "default"), f"{where}.service_account", _DNS_SUBDOMAIN,
                     "the service account the pods run as (KubernetesPodOperator's default: default)")
    secret = c.text(pod_role.get("secret"), f"{where}.secret", _DNS_SUBDOMAIN, "a secret from kubernetes.secrets")
    if name:
        role = next((r for r in roles if isinstance(r, dict) and r.get("name") == name), None)
        namespace = k.get("namespace") if isinstance(k.get("namespace"), str) else ""
        subject = f"{namespace}/{account}"
        if role is None:
            c.fail(f"{where}.role", f"role {name!r} is not in aws.iam_roles; add it or fix the name")
        elif not (account and _DNS_LABEL.match(namespace)):
            pass  # a missing or wrong namespace or service account is reported there
        elif subject not in _as_list(role.get("trusted_service_accounts")):
            c.fail(f"{where}.role", f"role {name!r} does not trust the pods' service account: add {subject!r} "
                                    "to its trusted_service_accounts")
    if secret and isinstance(secrets, dict):
        if secret not in secrets:
            c.fail(f"{where}.secret", f"secret {secret!r} is not in kubernetes.secrets; pods load their AWS "
                                      "settings from it (envFrom), so declare it there")
        elif isinstance(secrets[secret], dict):
            for key in STATIC_KEYS:
                if key in secrets[secret]:
                    c.fail(f"kubernetes.secrets.{secret}.{key}", f"pods act as kubernetes.aws_role; a static "
                                                                 f"{key} would be used instead of it: remove it")
