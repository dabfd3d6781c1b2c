"""`aws.log_groups`: CloudWatch log groups (the awslogs driver writes only to groups that exist)."""
from __future__ import annotations

import re

from sandbox.seeding.checker import found
from sandbox.seeding.objects.base import Checks, Difference, ObjectType, Seeding

_LOG_GROUP = re.compile(r"^[\w\-./#]{1,512}$")
RETENTION_DAYS = {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288,
                  3653}


class LogGroups(ObjectType):
    section = "log_groups"
    kind = "log group"
    service = "logs"
    cfn_type, cfn_name = "AWS::Logs::LogGroup", "LogGroupName"
    fields = frozenset({"name", "retention_days"})

    def check_entry(self, checks: Checks, group: dict, where: str) -> None:
        c = checks.c
        c.text(group.get("name"), f"{where}.name", _LOG_GROUP, "up to 512 letters, digits and _ - . / #")
        retention = group.get("retention_days")
        if "retention_days" in group and (isinstance(retention, bool) or not isinstance(retention, int)
                                          or retention not in RETENTION_DAYS):
            c.fail(f"{where}.retention_days", f"{found(retention)} is not a CloudWatch retention; "
                                              f"use one of {sorted(RETENTION_DAYS)}")

    def to_cfn(self, export, group: dict) -> None:
        properties = {"LogGroupName": group["name"]}
        if group.get("retention_days"):
            properties["RetentionInDays"] = group["retention_days"]
        export.add(self.section, group["name"], "LogGroup", {"Type": self.cfn_type, "Properties": properties})

    def drift(self, seeding: Seeding, entries: list[dict]) -> list[Difference]:
        live = _live_groups(seeding.clients[self.service])
        found = []
        for group in entries:
            current = live.get(group["name"])
            if current is None:
                found.append(Difference(self.kind, group["name"], "not in the emulator"))
            elif group.get("retention_days") and current.get("retentionInDays") != group["retention_days"]:
                found.append(Difference(self.kind, group["name"], f"retention {current.get('retentionInDays')} "
                                                                  f"days, sandbox.yaml says {group['retention_days']}"))
        return found

    def live_names(self, logs) -> set[str]:
        return set(_live_groups(logs))

    def seed(self, seeding: Seeding, entries: list[dict]) -> None:
        logs = seeding.clients[self.service]
        for group in entries:
            name = group["name"]
            existing = [g for g in logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
                        if g["logGroupName"] == name]
            outcome = "unchanged"
            if not existing:
                logs.create_log_group(logGroupName=name)
                outcome = "created"
            retention = group.get("retention_days")
            if retention and (not existing or existing[0].get("retentionInDays") != retention):
                logs.put_retention_policy(logGroupName=name, retentionInDays=retention)
                outcome = "updated" if outcome == "unchanged" else outcome
            seeding.report(self.kind, name, outcome)


def _live_groups(logs) -> dict[str, dict]:
    return {g["logGroupName"]: g for page in logs.get_paginator("describe_log_groups").paginate()
            for g in page["logGroups"]}
