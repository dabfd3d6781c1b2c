"""What sandbox.yaml seeds, written as one CloudFormation template (`make export`): the project's
IAM roles with their trust and inline policies (the least privilege the sandbox enforced), buckets,
log groups, ECR repositories, ECS clusters and task definitions, each type writing its own resources
(`ObjectType.to_cfn`). The account, region, partition and registry become pseudo parameters, a role,
log group or repository the template holds is referenced (`!GetAtt`, `!Ref`) so CloudFormation
creates it first, and roles that trust the cluster's service accounts take the EKS cluster's OIDC
provider as a parameter. The stacks' own templates are left where they are.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from sandbox.seeding.config import SeedConfig

OIDC_PARAMETER = "OidcProvider"
_ROLE_ARN = re.compile(r"^arn:aws:iam::\{account_id\}:role/([\w+=,.@-]+)$")
_REGISTRY_IMAGE = re.compile(r"^\{registry\}/([^:@]+)(.*)$")


def logical_id(name: str, suffix: str) -> str:
    """A resource's logical id from its name: "ecs-task-execution", "Role" -> "EcsTaskExecutionRole"."""
    words = re.split(r"[^A-Za-z0-9]+", name)
    base = "".join(w[:1].upper() + w[1:] for w in words if w)
    return (base if base[:1].isalpha() else "R" + base) + suffix


@dataclass
class Export:
    config: SeedConfig
    resources: dict[str, dict] = field(default_factory=dict)
    parameters: dict[str, dict] = field(default_factory=dict)
    ids: dict[tuple[str, str], str] = field(default_factory=dict)  # (section, name) -> logical id

    def add(self, section: str, name: str, suffix: str, resource: dict) -> str:
        base = logical_id(name, suffix)
        lid, n = base, 2
        while lid in self.resources:
            lid, n = f"{base}{n}", n + 1
        self.resources[lid] = resource
        self.ids[(section, name)] = lid
        return lid

    def sub_text(self, text: str) -> str:
        """`text` for Fn::Sub: the sandbox's placeholders as pseudo parameters (and the OIDC provider
        parameter), an ARN's partition and region too, any other `${` kept literal."""
        out = text.replace("${", "${!").replace("{account_id}", "${AWS::AccountId}").replace(
            "{registry}", "${AWS::AccountId}.dkr.ecr.${AWS::Region}.${AWS::URLSuffix}").replace(
            "{oidc_provider}", "${" + OIDC_PARAMETER + "}")
        if out.startswith("arn:aws:"):
            out = "arn:${AWS::Partition}:" + out[len("arn:aws:"):]
            out = out.replace(f":{self.config.region}:", ":${AWS::Region}:", 1)
        return out

    def sub(self, value: Any) -> Any:
        """`value` with every string that holds a placeholder or an ARN as a Fn::Sub."""
        if isinstance(value, dict):
            return {k: self.sub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.sub(v) for v in value]
        if not isinstance(value, str):
            return value
        out = self.sub_text(value)
        return value if out == value.replace("${", "${!") else {"Fn::Sub": out}

    def sub_json(self, document: Any) -> dict:
        """A document with ${...} in its keys (a condition key on the OIDC provider) as a Fn::Sub of its
        JSON: CloudFormation evaluates no function in a key."""
        def walk(value: Any) -> Any:
            if isinstance(value, dict):
                return {self.sub_text(k): walk(v) for k, v in value.items()}
            if isinstance(value, list):
                return [walk(v) for v in value]
            return self.sub_text(value) if isinstance(value, str) else value
        return {"Fn::Sub": json.dumps(walk(document), indent=1)}

    def role(self, arn: Any) -> Any:
        """A role ARN: the role's Arn when the template holds it, else the ARN with pseudo parameters."""
        m = _ROLE_ARN.match(arn) if isinstance(arn, str) else None
        if m and ("iam_roles", m.group(1)) in self.ids:
            return {"Fn::GetAtt": [self.ids[("iam_roles", m.group(1))], "Arn"]}
        return self.sub(arn)

    def image(self, image: Any) -> Any:
        """An image of the emulator's registry: the repository's URI when the template holds it."""
        m = _REGISTRY_IMAGE.match(image) if isinstance(image, str) else None
        if m and ("ecr_repositories", m.group(1)) in self.ids:
            return {"Fn::Sub": f"${{{self.ids[('ecr_repositories', m.group(1))]}.RepositoryUri}}{m.group(2)}"}
        return self.sub(image)

    def log_group(self, name: Any) -> Any:
        if isinstance(name, str) and ("log_groups", name) in self.ids:
            return {"Ref": self.ids[("log_groups", name)]}
        return name

    def needs_oidc_provider(self) -> None:
        self.parameters.setdefault(OIDC_PARAMETER, {
            "Type": "String",
            "Description": "The EKS cluster's OIDC provider (its service-account issuer without https://), "
                           "whose service accounts the roles that name them trust (IRSA)."})

    def template(self, description: str) -> dict:
        template: dict[str, Any] = {"AWSTemplateFormatVersion": "2010-09-09", "Description": description}
        if self.parameters:
            template["Parameters"] = self.parameters
        template["Resources"] = self.resources
        return template


def export_config(config: SeedConfig) -> Export:
    from sandbox.seeding.objects import REGISTRY

    export = Export(config)
    for object_type in REGISTRY:  # in order: a type refers only to those before it
        for entry in config.aws[object_type.section]:
            object_type.to_cfn(export, entry)
    return export


class _Dumper(yaml.SafeDumper):
    """YAML with CloudFormation's short tags where they read better (!Ref, !Sub, !GetAtt A.B)."""


def _represent_dict(dumper: _Dumper, value: dict):
    if len(value) == 1:
        (key, argument), = value.items()
        if key == "Ref" and isinstance(argument, str):
            return dumper.represent_scalar("!Ref", argument)
        if key == "Fn::Sub" and isinstance(argument, str):
            return dumper.represent_scalar("!Sub", argument, style="|" if "\n" in argument else None)
        if key == "Fn::GetAtt" and isinstance(argument, list) and len(argument) == 2:
            return dumper.represent_scalar("!GetAtt", ".".join(argument))
    return dumper.represent_dict(value)


_Dumper.add_representer(dict, _represent_dict)


def to_yaml(template: dict) -> str:
    return yaml.dump(template, Dumper=_Dumper, sort_keys=False, width=120, default_flow_style=False)
