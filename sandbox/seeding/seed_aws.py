"""Applies the `aws:` section of the seed config to the emulator (or any AWS endpoint).

Each `seed_*` function compares what exists with what the config asks for and changes only the
difference, reporting "created", "updated" or "unchanged" per object; running them again is a no-op.
"""
from __future__ import annotations

import collections
import hashlib
import json
from typing import Any, Callable

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from sandbox.core.root_keys import root_keys
from sandbox.seeding import vcf
from sandbox.seeding.config import SeedConfig

Report = Callable[[str, str, str], None]  # (kind, name, outcome)


def aws_clients(endpoint: str, region: str) -> dict[str, Any]:
    session = boto3.session.Session(region_name=region, **root_keys())
    cfg = Config(retries={"max_attempts": 5, "mode": "standard"})
    return {name: session.client(name, endpoint_url=endpoint, config=cfg)
            for name in ("iam", "s3", "logs", "ecs", "ecr", "sts")}


def _error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


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


def _policy_doc(value: Any) -> dict:
    # IAM returns documents URL-encoded strings on real AWS and dicts through boto3's parsing.
    if isinstance(value, str):
        from urllib.parse import unquote
        return json.loads(unquote(value))
    return value


def seed_iam_roles(iam, config: SeedConfig, report: Report, oidc_issuer: str | None = None) -> None:
    """`oidc_issuer`: the cluster's service-account token issuer, for roles that trust its service
    accounts (without a cluster those roles are trusted by no service account)."""
    for role in config.iam_roles:
        name = role["name"]
        trust = config.expand(trust_policy(role, config.account_id, oidc_issuer), registry="")
        try:
            current = iam.get_role(RoleName=name)["Role"]
        except ClientError as exc:
            if _error_code(exc) != "NoSuchEntity":
                raise
            iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust),
                            Description=role.get("description", ""))
            outcome = "created"
        else:
            outcome = "unchanged"
            if _policy_doc(current.get("AssumeRolePolicyDocument")) != trust:
                iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust))
                outcome = "updated"
        desired = {k: config.expand(v, registry="") for k, v in (role.get("policies") or {}).items()}
        existing = set(iam.list_role_policies(RoleName=name)["PolicyNames"])
        for policy_name, document in desired.items():
            if policy_name in existing:
                current_doc = _policy_doc(iam.get_role_policy(RoleName=name, PolicyName=policy_name)["PolicyDocument"])
                if current_doc == document:
                    continue
            iam.put_role_policy(RoleName=name, PolicyName=policy_name, PolicyDocument=json.dumps(document))
            outcome = "updated" if outcome == "unchanged" else outcome
        for stale in existing - set(desired):
            iam.delete_role_policy(RoleName=name, PolicyName=stale)
            outcome = "updated" if outcome == "unchanged" else outcome
        report("iam role", name, outcome)


def seed_s3_buckets(s3, config: SeedConfig, report: Report) -> None:
    for bucket in config.s3_buckets:
        name = bucket["name"]
        try:
            s3.head_bucket(Bucket=name)
            report("s3 bucket", name, "unchanged")
        except ClientError as exc:
            if _error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                raise
            kwargs = {} if config.region == "us-east-1" else {
                "CreateBucketConfiguration": {"LocationConstraint": config.region}}
            s3.create_bucket(Bucket=name, **kwargs)
            report("s3 bucket", name, "created")
        for obj in bucket.get("objects") or []:
            extra = {"ContentType": obj["content_type"]} if obj.get("content_type") else {}
            report("s3 object", f"s3://{name}/{obj['key']}", put_object_if_changed(s3, name, obj["key"],
                                                                                    config.object_body(obj), **extra))
        for gen in bucket.get("generated") or []:
            objects = vcf.vcf_case_objects(gen["prefix"], gen["count"], gen.get("samples", 3), gen.get("variants", 300))
            outcomes = collections.Counter(put_object_if_changed(s3, name, key, body) for key, body in objects)
            for outcome, n in sorted(outcomes.items()):
                report("s3 objects", f"s3://{name}/{gen['prefix']}* ({n} {gen['kind']} files)", outcome)


def put_object_if_changed(s3, bucket: str, key: str, body: bytes, **extra) -> str:
    """Writes the object unless one with the same content (sha256 in its metadata) is there."""
    digest = hashlib.sha256(body).hexdigest()
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
        if head.get("Metadata", {}).get("sandbox-sha256") == digest:
            return "unchanged"
        outcome = "updated"
    except ClientError as exc:
        if _error_code(exc) not in ("404", "NoSuchKey", "NotFound"):
            raise
        outcome = "created"
    s3.put_object(Bucket=bucket, Key=key, Body=body, Metadata={"sandbox-sha256": digest}, **extra)
    return outcome


def seed_log_groups(logs, config: SeedConfig, report: Report) -> None:
    for group in config.log_groups:
        name = group["name"]
        found = [g for g in logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"] if g["logGroupName"] == name]
        outcome = "unchanged"
        if not found:
            logs.create_log_group(logGroupName=name)
            outcome = "created"
        retention = group.get("retention_days")
        if retention and (not found or found[0].get("retentionInDays") != retention):
            logs.put_retention_policy(logGroupName=name, retentionInDays=retention)
            outcome = "updated" if outcome == "unchanged" else outcome
        report("log group", name, outcome)


def seed_ecs_clusters(ecs, config: SeedConfig, report: Report) -> None:
    for cluster in config.ecs_clusters:
        name = cluster["name"]
        found = ecs.describe_clusters(clusters=[name])["clusters"]
        if found and found[0]["status"] == "ACTIVE":
            report("ecs cluster", name, "unchanged")
        else:
            ecs.create_cluster(clusterName=name)
            report("ecs cluster", name, "created")


def seed_ecr_repositories(ecr, config: SeedConfig, registry: str, push: Callable[[str, str], str],
                          report: Report) -> None:
    """Creates the repositories and pushes each local image as {registry}/<repo>:<tag>.

    `push(local_image, remote_ref)` tags and pushes through the Docker engine and returns the
    pushed digest; a push of unchanged layers is cheap, so it always runs.
    """
    for repo in config.ecr_repositories:
        name = repo["name"]
        try:
            ecr.describe_repositories(repositoryNames=[name])
            outcome = "unchanged"
        except ClientError as exc:
            if _error_code(exc) != "RepositoryNotFoundException":
                raise
            ecr.create_repository(repositoryName=name)
            outcome = "created"
        report("ecr repository", name, outcome)
        tag = repo["image"].rsplit(":", 1)[1] if ":" in repo["image"].rsplit("/", 1)[-1] else "latest"
        before = {i.get("imageDigest") for i in ecr.list_images(repositoryName=name)["imageIds"]
                  if i.get("imageTag") == tag}
        digest = push(repo["image"], f"{registry}/{name}:{tag}")
        report("ecr image", f"{registry}/{name}:{tag}", "unchanged" if digest in before else "pushed")


def _contains(actual: Any, desired: Any) -> bool:
    """True when every field the config sets has that value in what ECS returned.

    ECS fills in defaults (portMappings: [], cpu: 0, ...), so equality would always differ.
    """
    if isinstance(desired, dict):
        return isinstance(actual, dict) and all(_contains(actual.get(k), v) for k, v in desired.items())
    if isinstance(desired, list):
        return isinstance(actual, list) and len(actual) == len(desired) and \
            all(_contains(a, d) for a, d in zip(actual, desired))
    return str(actual) == str(desired) if isinstance(desired, (int, str)) and actual is not None else actual == desired


def seed_task_definitions(ecs, config: SeedConfig, registry: str, report: Report) -> None:
    for td in config.task_definitions:
        desired = config.expand(td, registry)
        family = desired["family"]
        try:
            current = ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]
        except ClientError as exc:
            if _error_code(exc) not in ("ClientException", "InvalidParameterException"):
                raise
            current = None
        if current and current.get("status") == "ACTIVE" and _contains(current, desired):
            report("task definition", f"{family}:{current['revision']}", "unchanged")
            continue
        revision = ecs.register_task_definition(**desired)["taskDefinition"]["revision"]
        report("task definition", f"{family}:{revision}", "created" if current is None else "updated")
