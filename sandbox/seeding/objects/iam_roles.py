"""`aws.iam_roles`: roles with their trust (services, accounts, the cluster's service accounts) and
inline policies."""
from __future__ import annotations

import json
import re
from typing import Any

from botocore.exceptions import ClientError

from sandbox.seeding.checker import found
from sandbox.seeding.objects.base import Checks, Difference, ObjectType, Seeding, error_code
from sandbox.seeding.policy_documents import check_policy_document, decoded

ROLE_NAME = re.compile(r"^[\w+=,.@-]{1,64}$")
_POLICY_NAME = re.compile(r"^[\w+=,.@-]{1,128}$")
_SERVICE_PRINCIPAL = re.compile(r"^[a-z0-9][a-z0-9.-]*\.[a-z]{2,}$")
_ACCOUNT = re.compile(r"^(\{account_id\}|\d{12})$")
_SERVICE_ACCOUNT_REF = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?/[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
# IAM quota: a role's inline policies together, whitespace not counted.
ROLE_INLINE_POLICY_CHARS = 10_240


class IamRoles(ObjectType):
    section = "iam_roles"
    kind = "iam role"
    service = "iam"
    cfn_type, cfn_name = "AWS::IAM::Role", "RoleName"
    fields = frozenset({"name", "description", "trusted_services", "trusted_accounts", "trusted_service_accounts",
                        "policies"})

    def check_entry(self, checks: Checks, role: dict, where: str) -> None:
        c = checks.c
        c.text(role.get("name"), f"{where}.name", ROLE_NAME, "up to 64 of letters, digits and +=,.@_-")
        description = role.get("description")
        if description is not None and (not isinstance(description, str) or len(description) > 1000):
            c.fail(f"{where}.description", f"expected text of up to 1000 characters (IAM's limit), "
                                           f"found {found(description)}")
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
            return
        if not isinstance(policies, dict):
            c.fail(f"{where}.policies", f"expected a mapping of policy name: policy document, found {found(policies)}")
            return
        chars = 0
        for name, document in policies.items():
            pwhere = f"{where}.policies.{name}"
            if not isinstance(name, str) or not _POLICY_NAME.match(name):
                c.fail(pwhere, "policy names are up to 128 letters, digits and +=,.@_-")
            if check_policy_document(c, document, pwhere):
                # IAM counts a role's inline policies together, without whitespace.
                chars += len("".join(json.dumps(document, separators=(",", ":")).split()))
        if chars > ROLE_INLINE_POLICY_CHARS:
            c.fail(f"{where}.policies", f"the role's inline policies are {chars} characters together; IAM allows "
                                        f"{ROLE_INLINE_POLICY_CHARS} per role (whitespace not counted): use wildcards "
                                        "in Action/Resource or split the permissions over roles")

    def seed(self, seeding: Seeding, entries: list[dict]) -> None:
        """Roles that trust service accounts are trusted by none when there is no cluster (no issuer)."""
        iam, config = seeding.clients[self.service], seeding.config
        for role in entries:
            name = role["name"]
            trust = config.expand(trust_policy(role, config.account_id, seeding.oidc_issuer), registry="")
            try:
                current = iam.get_role(RoleName=name)["Role"]
            except ClientError as exc:
                if error_code(exc) != "NoSuchEntity":
                    raise
                iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust),
                                Description=role.get("description", ""))
                outcome = "created"
            else:
                outcome = "unchanged"
                if decoded(current.get("AssumeRolePolicyDocument")) != trust:
                    iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust))
                    outcome = "updated"
            desired = {k: config.expand(v, registry="") for k, v in (role.get("policies") or {}).items()}
            existing = set(iam.list_role_policies(RoleName=name)["PolicyNames"])
            for policy_name, document in desired.items():
                if policy_name in existing:
                    current_doc = decoded(iam.get_role_policy(RoleName=name, PolicyName=policy_name)["PolicyDocument"])
                    if current_doc == document:
                        continue
                iam.put_role_policy(RoleName=name, PolicyName=policy_name, PolicyDocument=json.dumps(document))
                outcome = "updated" if outcome == "unchanged" else outcome
            for stale in existing - set(desired):
                iam.delete_role_policy(RoleName=name, PolicyName=stale)
                outcome = "updated" if outcome == "unchanged" else outcome
            seeding.report(self.kind, name, outcome)

    def to_cfn(self, export, role: dict) -> None:
        trusted = {k: v for k, v in role.items() if k != "trusted_service_accounts"}
        statements = [s for s in trust_policy(trusted, "{account_id}")["Statement"] if s["Effect"] == "Allow"]
        service_accounts = sorted(role.get("trusted_service_accounts") or [])
        properties: dict = {"RoleName": role["name"]}
        if role.get("description"):
            properties["Description"] = role["description"]
        if service_accounts:
            export.needs_oidc_provider()
            statements.append({
                "Effect": "Allow", "Principal": {"Federated": "arn:aws:iam::{account_id}:oidc-provider/{oidc_provider}"},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {"StringEquals": {"{oidc_provider}:sub": [
                    "system:serviceaccount:" + ref.replace("/", ":", 1) for ref in service_accounts]}}})
            properties["AssumeRolePolicyDocument"] = export.sub_json({"Version": "2012-10-17", "Statement": statements})
        else:
            properties["AssumeRolePolicyDocument"] = export.sub({"Version": "2012-10-17", "Statement": statements})
        if role.get("policies"):
            properties["Policies"] = [{"PolicyName": name, "PolicyDocument": export.sub(document)}
                                      for name, document in role["policies"].items()]
        export.add(self.section, role["name"], "Role", {"Type": self.cfn_type, "Properties": properties})

    def drift(self, seeding: Seeding, entries: list[dict]) -> list[Difference]:
        iam, config = seeding.clients[self.service], seeding.config
        found: list[Difference] = []
        for role in entries:
            name = role["name"]

            def differs(what: str) -> None:
                found.append(Difference(self.kind, name, what))
            try:
                current = iam.get_role(RoleName=name)["Role"]
            except ClientError as exc:
                if error_code(exc) != "NoSuchEntity":
                    raise
                differs("not in the emulator")
                continue
            # Service-account trust depends on the cluster's issuer: compared are the other statements.
            want = config.expand(trust_policy(role, config.account_id, "https://issuer"), registry="")
            for change in statement_changes(_not_web_identity(want), _not_web_identity(
                    decoded(current.get("AssumeRolePolicyDocument")))):
                differs(f"trust policy: {change}")
            desired = {k: config.expand(v, registry="") for k, v in (role.get("policies") or {}).items()}
            live = set(iam.list_role_policies(RoleName=name)["PolicyNames"])
            for policy in sorted(set(desired) - live):
                differs(f"inline policy {policy}: not in the emulator")
            for policy in sorted(live - set(desired)):
                document = decoded(iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"])
                differs(f"inline policy {policy}: added, not in sandbox.yaml: "
                        + "; ".join(describe_statement(s) for s in statements(document)))
            for policy in sorted(live & set(desired)):
                document = decoded(iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"])
                for change in statement_changes(desired[policy], document):
                    differs(f"inline policy {policy}: {change}")
            for attached in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
                differs(f"managed policy {attached['PolicyArn']} attached, not in sandbox.yaml")
        return found

    def live_names(self, iam: Any) -> set[str]:
        return {r["RoleName"] for page in iam.get_paginator("list_roles").paginate() for r in page["Roles"]}

    def missing(self, iam: Any, entries: list[dict]) -> list[str]:
        roles = {r["RoleName"] for r in iam.list_roles()["Roles"]}
        return [r["name"] for r in entries if r["name"] not in roles]


def statements(document: Any) -> list[dict]:
    """A policy document's statements, each with Action/Resource (and their Not forms) as sorted lists,
    so two writings of one statement compare equal."""
    found = (document or {}).get("Statement", []) if isinstance(document, dict) else []
    found = [found] if isinstance(found, dict) else found
    return [{k: sorted(v) if isinstance(v, list) else [v] if k in _LISTED and isinstance(v, str) else v
             for k, v in s.items() if k != "Sid"} for s in found if isinstance(s, dict)]


_LISTED = {"Action", "NotAction", "Resource", "NotResource"}


def describe_statement(statement: dict) -> str:
    """A statement in one line: "Allow s3:DeleteObject on arn:aws:s3:::data/*"."""
    actions = statement.get("Action") or [f"all but {a}" for a in statement.get("NotAction", [])]
    resources = statement.get("Resource") or [f"all but {r}" for r in statement.get("NotResource", [])]
    text = f"{statement.get('Effect', '?')} {', '.join(map(str, actions))} on {', '.join(map(str, resources))}"
    principal = statement.get("Principal")
    if principal:
        text += f" for {json.dumps(principal, sort_keys=True)}"
    if statement.get("Condition"):
        text += f" if {json.dumps(statement['Condition'], sort_keys=True)}"
    return text


def statement_changes(desired: Any, live: Any) -> list[str]:
    """The statements the live document has that the desired one has not ("added"), and the other way."""
    want, have = statements(desired), statements(live)
    key = lambda s: json.dumps(s, sort_keys=True)  # noqa: E731
    wanted, had = {key(s) for s in want}, {key(s) for s in have}
    return ([f"statement added: {describe_statement(s)}" for s in have if key(s) not in wanted]
            + [f"statement missing: {describe_statement(s)}" for s in want if key(s) not in had])


def _not_web_identity(document: dict) -> dict:
    return {"Statement": [s for s in statements(document) if s.get("Action") != ["sts:AssumeRoleWithWebIdentity"]]}


def oidc_host(issuer: str) -> str:
    """The cluster's OIDC issuer as IAM names its provider: the URL without its scheme."""
    return issuer.split("://", 1)[-1].rstrip("/")


def trust_policy(role: dict, account_id: str, oidc_issuer: str | None = None) -> dict:
    """Who may assume the role. Service accounts are trusted as EKS's IRSA does it: tokens of the
    cluster's OIDC issuer whose subject is the service account, through AssumeRoleWithWebIdentity."""
    statements = []
    if role.get("trusted_services"):
        statements.append({"Effect": "Allow", "Principal": {"Service": sorted(role["trusted_services"])},
                           "Action": "sts:AssumeRole"})
    accounts = [a.replace("{account_id}", account_id) for a in role.get("trusted_accounts") or []]
    if accounts:
        statements.append({"Effect": "Allow", "Principal": {"AWS": [f"arn:aws:iam::{a}:root" for a in sorted(accounts)]},
                           "Action": "sts:AssumeRole"})
    service_accounts = sorted(role.get("trusted_service_accounts") or [])
    if service_accounts and oidc_issuer:
        host = oidc_host(oidc_issuer)
        statements.append({
            "Effect": "Allow",
            "Principal": {"Federated": f"arn:aws:iam::{account_id}:oidc-provider/{host}"},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {f"{host}:sub": [
                "system:serviceaccount:" + ref.replace("/", ":", 1) for ref in service_accounts]}}})
    if not statements:
        # Service accounts only, and no cluster (K8S_PROVIDER=none): no one may assume it. IAM
        # refuses a trust policy without statements, so say it with a Deny.
        statements.append({"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"})
    return {"Version": "2012-10-17", "Statement": statements}
