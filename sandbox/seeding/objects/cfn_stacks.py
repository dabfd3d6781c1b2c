"""`aws.stacks`: the team's CloudFormation templates, each deployed as a stack into the emulator
before the other sections are seeded, so the objects the DAGs use are the ones the template declares.

What a template cannot say is wired here: `images` names, per AWS::ECR::Repository of the template
(by logical id), the local image of `images:` pushed into it; a parameter's value may use
{account_id}, {registry} and {oidc_provider} (the cluster's service-account issuer as IAM names its
OIDC provider, for roles that trust the cluster's service accounts as EKS's IRSA does).
"""
from __future__ import annotations

import re
from typing import Any

from sandbox.seeding import stacks, templates
from sandbox.seeding.checker import check_declared, found, is_file, shown
from sandbox.seeding.objects.base import Checks, Difference, ObjectType, Seeding
from sandbox.seeding.objects.ecr_repositories import push_image

# CloudFormation's stack names: a letter, then letters, digits and hyphens, up to 128.
_STACK_NAME = re.compile(r"^[A-Za-z][-A-Za-z0-9]{0,127}$")
ECR_REPOSITORY = "AWS::ECR::Repository"


class CfnStacks(ObjectType):
    section = "stacks"
    kind = "cloudformation stack"
    service = "cloudformation"
    fields = frozenset({"name", "template", "parameters", "images"})
    required = frozenset({"name", "template"})

    def check_entry(self, checks: Checks, stack: dict, where: str) -> None:
        from sandbox.seeding.objects import REGISTRY  # the types whose objects a template may declare

        c = checks.c
        c.text(stack.get("name"), f"{where}.name", _STACK_NAME, "a letter, then letters, digits and -, up to 128")
        parameters = stack.get("parameters")
        if parameters is None:
            parameters = {}
        if not isinstance(parameters, dict):
            c.fail(f"{where}.parameters", f"expected a mapping of parameter name: value, found {found(parameters)}")
            parameters = {}
        for key, value in parameters.items():
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                c.fail(f"{where}.parameters.{key}", f"expected text or a number, found {found(value)}")
        path = c.text(stack.get("template"), f"{where}.template", hint="a path relative to sandbox.yaml")
        if path is None:
            return
        if not is_file(checks.path.parent / path):
            c.fail(f"{where}.template", f"{shown(path)}: no such file next to {checks.path.name}")
            return
        try:
            template = templates.read_template(checks.path.parent / path)
        except ValueError as exc:
            c.fail(f"{where}.template", f"{path}: {exc}")
            return
        templates.check_template(c, template, f"{where}.template ({path})", parameters)
        resources = template.get("Resources") if isinstance(template.get("Resources"), dict) else {}
        for object_type in REGISTRY:
            if object_type.cfn_type:
                checks.from_templates.setdefault(object_type.section, set()).update(
                    r["Properties"][object_type.cfn_name] for r in resources.values()
                    if isinstance(r, dict) and r.get("Type") == object_type.cfn_type
                    and isinstance(r.get("Properties"), dict)
                    and isinstance(r["Properties"].get(object_type.cfn_name), str))
        images = stack.get("images")
        if images is None:
            return
        if not isinstance(images, dict):
            c.fail(f"{where}.images", f"expected a mapping of repository logical id: image tag, found {found(images)}")
            return
        repositories = sorted(k for k, r in resources.items() if isinstance(r, dict) and r.get("Type") == ECR_REPOSITORY)
        for logical_id, image in images.items():
            if logical_id not in repositories:
                c.fail(f"{where}.images.{logical_id}", f"the template has no {ECR_REPOSITORY} {logical_id!r} "
                                                       f"(it has: {', '.join(repositories) or 'none'})")
            check_declared(c, image, f"{where}.images.{logical_id}", checks.images)

    def check_references(self, checks: Checks, entries: list) -> None:
        """A template's task definitions log to groups that exist, as sandbox.yaml's must: a literal
        awslogs-group names a log group of a template or of aws.log_groups (ECS creates none unless
        awslogs-create-group is set and the execution role may)."""
        groups = checks.names("log_groups")
        for i, stack in enumerate(entries):
            path = stack.get("template") if isinstance(stack, dict) else None
            if not isinstance(path, str) or not is_file(checks.path.parent / path):
                continue  # reported above
            try:
                resources = templates.read_template(checks.path.parent / path).get("Resources")
            except ValueError:
                continue
            for logical_id, resource in (resources if isinstance(resources, dict) else {}).items():
                if not (isinstance(resource, dict) and resource.get("Type") == "AWS::ECS::TaskDefinition"):
                    continue
                containers = (resource.get("Properties") or {}).get("ContainerDefinitions") or []
                for j, container in enumerate(containers if isinstance(containers, list) else []):
                    log = container.get("LogConfiguration") if isinstance(container, dict) else None
                    options = (log.get("Options") or {}) if isinstance(log, dict) else {}
                    group = options.get("awslogs-group") if isinstance(options, dict) else None
                    create = str(options.get("awslogs-create-group", "")).lower() == "true" \
                        if isinstance(options, dict) else False
                    if isinstance(group, str) and group not in groups and not create:
                        checks.c.fail(f"{self.where}[{i}].template ({path})",
                                      f"Resources.{logical_id}.Properties.ContainerDefinitions[{j}].LogConfiguration."
                                      f"Options.awslogs-group: {group!r} is not seeded; add it to aws.log_groups or "
                                      "the template (ECS does not create it unless awslogs-create-group is set and "
                                      "the execution role may)")

    def seed(self, seeding: Seeding, entries: list[dict]) -> None:
        cfn, config = seeding.clients[self.service], seeding.config
        provider = stacks_oidc_provider(seeding.oidc_issuer)
        for stack in entries:
            name = stack["name"]
            body = (config.path.parent / stack["template"]).read_text()
            parameters = {key: config.expand(str(value), seeding.registry, oidc_provider=provider)
                          for key, value in (stack.get("parameters") or {}).items()}
            seeding.report(self.kind, name, stacks.deploy(cfn, name, body, parameters))
            for logical_id, image in (stack.get("images") or {}).items():
                repository = cfn.describe_stack_resource(StackName=name, LogicalResourceId=logical_id)[
                    "StackResourceDetail"]["PhysicalResourceId"]
                push_image(seeding, seeding.clients["ecr"], repository, image)

    def to_cfn(self, export, stack: dict) -> None:
        """A stack's objects are its template's: nothing to write again."""

    def drift(self, seeding: Seeding, entries: list[dict]) -> list[Difference]:
        cfn = seeding.clients[self.service]
        found = []
        for stack in entries:
            current = stacks.describe(cfn, stack["name"])
            if current is None:
                found.append(Difference(self.kind, stack["name"], "not in the emulator"))
            elif current["StackStatus"] not in stacks.COMPLETE:
                found.append(Difference(self.kind, stack["name"], f"status {current['StackStatus']}"))
        return found

    def owned(self, cfn: Any, entries: list[dict]) -> set[str]:
        """The physical ids of the stacks' resources: theirs, not objects added by hand."""
        ids = {r["PhysicalResourceId"] for s in entries if stacks.describe(cfn, s["name"]) is not None
               for page in cfn.get_paginator("list_stack_resources").paginate(StackName=s["name"])
               for r in page["StackResourceSummaries"] if r.get("PhysicalResourceId")}
        # A task definition's is its revision's ARN; drift lists families.
        return ids | {i.split(":task-definition/", 1)[1].rsplit(":", 1)[0] for i in ids if ":task-definition/" in i}

    def missing(self, cfn: Any, entries: list[dict]) -> list[str]:
        return [s["name"] for s in entries if stacks.describe(cfn, s["name"]) is None]


def stacks_oidc_provider(issuer: str | None) -> str:
    """{oidc_provider}: the issuer without its scheme (IAM's name for the provider), "" without a cluster."""
    from sandbox.seeding.objects.iam_roles import oidc_host
    return oidc_host(issuer) if issuer else ""
