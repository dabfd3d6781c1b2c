"""The seed config (`sandbox.yaml`): loading, validation and placeholder expansion.

Validation runs over the whole file before anything is seeded and reports every problem at once,
each naming the file, the field and what to do. Every field's type is checked before it is used, so
no input ends in a traceback. It also rejects what real AWS would reject but an emulator may accept
(Fargate cpu/memory pairs, role ARNs and log groups that are not seeded, IAM policy documents AWS
would refuse, task definitions that do not fit ECS's RegisterTaskDefinition request), so a
definition that works here also registers on AWS, and nothing is applied half-way. The rules of each
AWS object type live with the type (`sandbox.seeding.objects`); this module checks the rest and
runs the types' checks in their order.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.core import airflow_versions
from sandbox.metrics.pricing import Prices, validate_prices
from sandbox.seeding.airflow_settings import STATIC_KEYS_REFUSED, static_aws_keys, validate_pools
from sandbox.seeding.checker import (PLACEHOLDER, TOP_LEVEL, Checker, check_declared, found, is_dir, is_file,
                                     shown)
from sandbox.seeding.errors import ConfigError, read_yaml
from sandbox.seeding.objects import REGISTRY, SECTIONS, Checks
from sandbox.seeding.objects.iam_roles import ROLE_NAME

# The emulator's account: what aws.account_id is when left out.
DEFAULT_ACCOUNT_ID = "000000000000"
# What an image's build_args may use; the host's image builder replaces them (sandbox/host/images.py).
BUILD_ARG_PLACEHOLDERS = ("python_base", "debian_base")

_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_CONN_ID = re.compile(r"^[\w.-]{1,250}$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")
_BUILD_ARG = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_IMAGE_TAG = re.compile(r"^[a-z0-9]+(?:[._/-][a-z0-9]+)*:[\w][\w.-]{0,127}$")
# Keys that would make a pod act as someone other than kubernetes.aws_role (the SDK reads them first).
STATIC_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def role_arn(account_id: str, name: str) -> str:
    return f"arn:aws:iam::{account_id}:role/{name}"


@dataclass
class SeedConfig:
    """The validated config. Fields mirror sections of sandbox.yaml."""

    path: Path
    region: str
    account_id: str
    # The aws: objects by section (aws.iam_roles, ...: sandbox.seeding.objects.SECTIONS), in registry order.
    aws: dict[str, list[dict]]
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

    def expand(self, value: Any, registry: str, oidc_provider: str = "") -> Any:
        """Replaces {account_id}, {registry} and {oidc_provider} in every string inside `value`."""
        subs = {"account_id": self.account_id, "registry": registry, "oidc_provider": oidc_provider}
        if isinstance(value, str):
            return PLACEHOLDER.sub(lambda m: subs[m.group(1)], value)
        if isinstance(value, list):
            return [self.expand(v, registry, oidc_provider) for v in value]
        if isinstance(value, dict):
            return {k: self.expand(v, registry, oidc_provider) for k, v in value.items()}
        return value

    def role_arn(self, name: str) -> str:
        """The ARN of a role of aws.iam_roles, in this config's account."""
        return role_arn(self.account_id, name)

    def object_body(self, obj: dict) -> bytes:
        """The bytes of a seed object: inline `content`, or `file` relative to the config."""
        if "content" in obj:
            return obj["content"].encode()
        return (self.path.parent / obj["file"]).read_bytes()


def load_config(path: str | Path) -> SeedConfig:
    """Reads and validates the seed config; raises ConfigError listing every problem."""
    path = Path(path)
    raw = read_yaml(path, ConfigError, "the seed config is required (copy sandbox.yaml from the repository)")
    return validate_config(raw, path)


def load_images(path: Path) -> list[dict]:
    """A file holding only an `images:` list (the sandbox's own images.yaml), checked like sandbox.yaml's."""
    raw = read_yaml(path, ConfigError, "the sandbox's images.yaml is part of the checkout")
    c = Checker(path)
    top = c.mapping(raw, TOP_LEVEL, {"images"}, {"images"})
    images = check_images(c, top.get("images"), "images", path.parent)
    if c.problems:
        raise ConfigError(path, c.problems)
    return images




def validate_config(raw: Any, path: Path) -> SeedConfig:
    c = Checker(path)
    top = c.mapping(raw, TOP_LEVEL, {"images", "aws", "airflow", "kubernetes", "prices"}, {"aws"})
    declared: set[str] = set()
    images = check_images(c, top.get("images"), "images", path.parent, declared)
    aws = c.mapping(top.get("aws"), "aws", {"region", "account_id", "airflow_role", *SECTIONS}, {"region"})
    region = c.text(aws.get("region"), "aws.region", _REGION, "expected an AWS region such as us-east-1") or ""
    account_id = aws.get("account_id", DEFAULT_ACCOUNT_ID)
    if not (isinstance(account_id, str) and re.fullmatch(r"\d{12}", account_id)):
        c.fail("aws.account_id", f"expected 12 digits as a quoted string, found {found(account_id)}; leave it "
                                 f"out for the emulator's account ({DEFAULT_ACCOUNT_ID})")
        account_id = DEFAULT_ACCOUNT_ID

    checks = Checks(c, path, region, declared)
    for object_type in REGISTRY:
        entries = c.items(aws.get(object_type.section), object_type.where)
        object_type.check(checks, entries)
        c.unique(entries, object_type.key, object_type.where)
        checks.checked[object_type.section] = entries
    for object_type in REGISTRY:
        object_type.check_references(checks, checks.checked[object_type.section])
    role_names = checks.names("iam_roles")
    airflow_role = aws.get("airflow_role")
    if airflow_role is not None and c.text(airflow_role, "aws.airflow_role", ROLE_NAME, "a role name from "
                                           "aws.iam_roles") and airflow_role not in role_names:
        c.fail("aws.airflow_role", f"role {airflow_role!r} is not in aws.iam_roles "
                                   f"({', '.join(sorted(role_names)) or 'none'}); add it or fix the name")
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

    kubernetes = _check_kubernetes(c, top.get("kubernetes"), images, declared, checks.checked["iam_roles"],
                                   checks.from_templates.get("iam_roles", set())) \
        if top.get("kubernetes") is not None else None
    prices = validate_prices(top.get("prices"), "prices", c.fail)

    if c.problems:
        raise ConfigError(path, c.problems)
    return SeedConfig(path=path, region=region, account_id=account_id, aws=checks.checked,
                      connections=connections, variables=variables, kubernetes=kubernetes, images=images,
                      pools=pools, airflow_role=airflow_role, airflow_version=airflow_version, prices=prices, raw=raw)


def _check_connection(c: Checker, conn: Any, where: str) -> None:
    conn = c.mapping(conn, where, {"conn_id", "conn_type", "description", "host", "port", "login",
                                   "password", "schema", "extra"}, {"conn_id", "conn_type"})
    c.text(conn.get("conn_id"), f"{where}.conn_id", _CONN_ID, "letters, digits, . _ -")
    c.text(conn.get("conn_type"), f"{where}.conn_type")
    for key in ("description", "host", "login", "password", "schema"):
        if conn.get(key) is not None and not isinstance(conn[key], str):
            c.fail(f"{where}.{key}", f"expected text, found {found(conn[key])}; quote it so YAML keeps it as written")
    if "port" in conn:
        c.integer(conn["port"], f"{where}.port", 1, 65535)
    for key in static_aws_keys(conn):
        c.fail(f"{where}.{key}" if key in ("login", "password") else f"{where}.extra.{key}", STATIC_KEYS_REFUSED)
    if "extra" in conn:
        extra = conn["extra"]
        if not isinstance(extra, dict):
            c.fail(f"{where}.extra", "expected a mapping of extra fields (it is stored as JSON), "
                                     f"found {found(extra)}")
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


def _check_variables(c: Checker, variables: Any) -> dict[str, str]:
    if variables is None:
        return {}
    if not isinstance(variables, dict):
        c.fail("airflow.variables", f"expected a mapping of name: value, found {found(variables)}")
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
            c.fail(f"airflow.variables.{key}", f"{found(value)} cannot be stored as JSON (an unquoted date?); "
                                               "quote the value")
        else:  # lists, numbers, mappings are stored as JSON, as Variable.get(deserialize_json=True) reads them
            normalized[key] = json.dumps(value)
    return normalized



def check_images(c: Checker, value: Any, where: str, base: Path, declared: set[str] | None = None) -> list[dict]:
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
            c.fail(f"{iwhere}.context", f"{shown(context_text)} is not a usable path: {exc}")
            continue
        if not is_dir(context):
            full = str(context) if len(str(context)) <= 120 else str(context)[:119] + "…"
            c.fail(f"{iwhere}.context", f"{shown(context_text)}: no such directory next to {c.path.name} ({full})")
        elif not is_file(dockerfile):
            c.fail(f"{iwhere}.dockerfile", f"{shown(dockerfile_text)}: no such file in {context}; give the "
                                           "Dockerfile's path relative to the context")
        elif tag and build_args is not None:
            images.append({"tag": tag, "context": context, "dockerfile": dockerfile, "build_args": build_args})
    c.unique(entries, "tag", where)
    return images


def _check_build_args(c: Checker, value: Any, where: str) -> dict[str, str] | None:
    """NAME: value, values text or numbers; None when something in it is wrong (reported)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        c.fail(where, f"expected a mapping of NAME: value, found {found(value)}")
        return None
    args: dict[str, str] | None = {}
    for key, arg in value.items():
        awhere = f"{where}.{key}"
        if not isinstance(key, str) or not _BUILD_ARG.match(key):
            c.fail(awhere, "build arg names are letters, digits and _, not starting with a digit (as in ARG NAME)")
            args = None
        elif isinstance(arg, bool) or not isinstance(arg, (str, int, float)):
            c.fail(awhere, f"expected text or a number, found {found(arg)}")
            args = None
        else:
            unknown = [p for p in PLACEHOLDER.findall(str(arg)) if p not in BUILD_ARG_PLACEHOLDERS]
            if unknown:
                c.fail(awhere, f"unknown placeholder {{{unknown[0]}}}; known: "
                               + ", ".join("{%s}" % p for p in BUILD_ARG_PLACEHOLDERS))
                args = None
            elif args is not None:
                args[key] = str(arg)
    return args


def _check_kubernetes(c: Checker, value: Any, images: list[dict], declared: set[str],
                      roles: list[dict] = (), template_roles: set[str] = frozenset()) -> dict:
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
            check_declared(c, image, f"kubernetes.images[{i}]", declared)
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
        c.fail("kubernetes.secrets", f"expected a mapping of secret name: {{KEY: value}}, found {found(secrets)}")
        secrets = {}
    for name, values in secrets.items():
        swhere = f"kubernetes.secrets.{name}"
        if not isinstance(name, str) or not _DNS_SUBDOMAIN.match(name):
            c.fail(swhere, "secret names are lowercase letters, digits, - and .")
        if not isinstance(values, dict):
            c.fail(swhere, f"expected a mapping of KEY: \"text value\", found {found(values)}")
            continue
        for key, text in values.items():
            if not isinstance(key, str) or not _SECRET_KEY.match(key):
                c.fail(f"{swhere}.{key}", "secret keys are letters, digits, - _ and .")
            elif not isinstance(text, str):
                c.fail(f"{swhere}.{key}", f"expected text, found {found(text)}; quote it")
    if "aws_role" in k:
        _check_pod_role(c, k, secrets, roles, template_roles)
    return k


def _default_sidecar_image(c: Checker, loaded: Any, declared: set[str]) -> str | None:
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


def _check_pod_role(c: Checker, k: dict, secrets: dict, roles: list[dict], template_roles: set[str]) -> None:
    """kubernetes.aws_role: what the namespace's pods act as on AWS (EKS's IRSA: the service account's
    token exchanged through sts:AssumeRoleWithWebIdentity for the role's credentials)."""
    where = "kubernetes.aws_role"
    pod_role = c.mapping(k["aws_role"], where, {"role", "service_account", "secret"}, {"role", "secret"})
    name = c.text(pod_role.get("role"), f"{where}.role", ROLE_NAME, "a role name from aws.iam_roles")
    account = c.text(pod_role.get("service_account", "default"), f"{where}.service_account", _DNS_SUBDOMAIN,
                     "the service account the pods run as (KubernetesPodOperator's default: default)")
    secret = c.text(pod_role.get("secret"), f"{where}.secret", _DNS_SUBDOMAIN, "a secret from kubernetes.secrets")
    if name:
        role = next((r for r in roles if isinstance(r, dict) and r.get("name") == name), None)
        namespace = k.get("namespace") if isinstance(k.get("namespace"), str) else ""
        subject = f"{namespace}/{account}"
        if role is None and name in template_roles:
            pass  # a stack's role: its trust is the template's, and STS checks it when a pod assumes it
        elif role is None:
            c.fail(f"{where}.role", f"role {name!r} is not in aws.iam_roles or a stack's template; add it or "
                                    "fix the name")
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
