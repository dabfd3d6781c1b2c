"""`aws.ecs_clusters`: the clusters tasks run in."""
from __future__ import annotations

import re
from typing import Any

from botocore.exceptions import ClientError

from sandbox.seeding.objects.base import Checks, ObjectType, Seeding

_CLUSTER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")


class EcsClusters(ObjectType):
    section = "ecs_clusters"
    kind = "ecs cluster"
    service = "ecs"
    cfn_type, cfn_name = "AWS::ECS::Cluster", "ClusterName"
    fields = frozenset({"name"})

    def check_entry(self, checks: Checks, cluster: dict, where: str) -> None:
        checks.c.text(cluster.get("name"), f"{where}.name", _CLUSTER_NAME, "letters, digits, - and _")

    def seed(self, seeding: Seeding, entries: list[dict]) -> None:
        ecs = seeding.clients[self.service]
        for cluster in entries:
            name = cluster["name"]
            existing = ecs.describe_clusters(clusters=[name])["clusters"]
            if existing and existing[0]["status"] == "ACTIVE":
                seeding.report(self.kind, name, "unchanged")
            else:
                ecs.create_cluster(clusterName=name)
                seeding.report(self.kind, name, "created")

    def to_cfn(self, export, cluster: dict) -> None:
        export.add(self.section, cluster["name"], "Cluster",
                   {"Type": self.cfn_type, "Properties": {"ClusterName": cluster["name"]}})

    def live_names(self, ecs: Any) -> set[str]:
        arns = [a for page in ecs.get_paginator("list_clusters").paginate() for a in page["clusterArns"]]
        return {a.rsplit("/", 1)[-1] for a in arns}

    def missing(self, ecs: Any, entries: list[dict]) -> list[str]:
        names = [c["name"] for c in entries]
        if not names:
            return []
        try:
            active = {c["clusterName"] for c in ecs.describe_clusters(clusters=names)["clusters"]
                      if c.get("status") == "ACTIVE"}
        except ClientError:
            active = set()
        return [n for n in names if n not in active]
