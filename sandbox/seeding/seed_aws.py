"""Applies the `aws:` section of the seed config to the emulator (or any AWS endpoint): each object
type of the registry in its order (`sandbox.seeding.objects`).

Each type compares what exists with what the config asks for and changes only the difference,
reporting "created", "updated" or "unchanged" per object; running it again is a no-op.
"""
from __future__ import annotations

from typing import Any, Callable

import boto3
from botocore.config import Config

from sandbox.core.root_keys import root_keys
from sandbox.seeding.config import SeedConfig
from sandbox.seeding.objects import REGISTRY, Report, Seeding

__all__ = ["Report", "aws_clients", "missing_objects", "seed_aws_objects"]


def aws_clients(endpoint: str, region: str, keys: dict[str, str] | None = None) -> dict[str, Any]:
    """A root client per service the object types talk to, and STS; `keys`: the root's (default: the
    environment's, as compose gives them to the sandbox's services)."""
    session = boto3.session.Session(region_name=region, **(keys or root_keys()))
    cfg = Config(retries={"max_attempts": 5, "mode": "standard"})
    services = {t.service for t in REGISTRY} | {"sts"}
    return {name: session.client(name, endpoint_url=endpoint, config=cfg) for name in sorted(services)}


def seed_aws_objects(config: SeedConfig, clients: dict[str, Any], report: Report, registry: str,
                     push: Callable[[str, str, tuple[str, ...]], str], oidc_issuer: str | None = None) -> None:
    seeding = Seeding(config, clients, report, registry=registry, push=push, oidc_issuer=oidc_issuer)
    for object_type in REGISTRY:
        object_type.seed(seeding, config.aws[object_type.section])


def missing_objects(config: SeedConfig, clients: dict[str, Any]) -> list[str]:
    """Seeded objects the emulator no longer has, as "<kind> <name>"; only the cheapest checks
    (IAM roles, buckets, clusters), since the reseeder asks every few seconds."""
    return [f"{t.kind} {name}" for t in REGISTRY
            for name in t.missing(clients[t.service], config.aws[t.section])]
