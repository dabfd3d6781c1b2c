"""The AWS object types of `sandbox.yaml`'s `aws:` section, one module each, in the order they are
checked and seeded: a type may refer to those before it (a task definition to its roles, log groups
and repositories), never to those after. A new type is one module and one line here."""
from __future__ import annotations

from sandbox.seeding.objects.base import Checks, ObjectType, Report, Seeding
from sandbox.seeding.objects.cfn_stacks import CfnStacks
from sandbox.seeding.objects.ecr_repositories import EcrRepositories
from sandbox.seeding.objects.ecs_clusters import EcsClusters
from sandbox.seeding.objects.iam_roles import IamRoles
from sandbox.seeding.objects.log_groups import LogGroups
from sandbox.seeding.objects.s3_buckets import S3Buckets
from sandbox.seeding.objects.task_definitions import TaskDefinitions

# The stacks first: what their templates declare, the other sections may use.
REGISTRY: tuple[ObjectType, ...] = (CfnStacks(), IamRoles(), S3Buckets(), LogGroups(), EcsClusters(),
                                    EcrRepositories(), TaskDefinitions())
SECTIONS = tuple(t.section for t in REGISTRY)

__all__ = ["REGISTRY", "SECTIONS", "Checks", "ObjectType", "Report", "Seeding"]
