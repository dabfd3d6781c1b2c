"""`aws.ecr_repositories`: repositories, each with a local image of `images:` pushed into it."""
from __future__ import annotations

import re

from botocore.exceptions import ClientError

from sandbox.seeding.checker import check_declared
from sandbox.seeding.objects.base import Checks, ObjectType, Seeding, error_code

_REPO_NAME = re.compile(r"^(?=.{2,256}$)(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$")


class EcrRepositories(ObjectType):
    section = "ecr_repositories"
    kind = "ecr repository"
    service = "ecr"
    cfn_type, cfn_name = "AWS::ECR::Repository", "RepositoryName"
    fields = frozenset({"name", "image"})
    required = frozenset({"name", "image"})

    def check_entry(self, checks: Checks, repo: dict, where: str) -> None:
        checks.c.text(repo.get("name"), f"{where}.name", _REPO_NAME,
                      "2-256 lowercase letters, digits and . _ - / separators")
        check_declared(checks.c, repo.get("image"), f"{where}.image", checks.images)

    def to_cfn(self, export, repo: dict) -> None:
        """The repository; which local image goes into it is the stack entry's `images`."""
        export.add(self.section, repo["name"], "Repository",
                   {"Type": self.cfn_type, "Properties": {"RepositoryName": repo["name"]}})

    def live_names(self, ecr) -> set[str]:
        return {r["repositoryName"] for page in ecr.get_paginator("describe_repositories").paginate()
                for r in page["repositories"]}

    def seed(self, seeding: Seeding, entries: list[dict]) -> None:
        """Creates the repositories and pushes each one's local image into it."""
        ecr = seeding.clients[self.service]
        for repo in entries:
            name = repo["name"]
            try:
                ecr.describe_repositories(repositoryNames=[name])
                outcome = "unchanged"
            except ClientError as exc:
                if error_code(exc) != "RepositoryNotFoundException":
                    raise
                ecr.create_repository(repositoryName=name)
                outcome = "created"
            seeding.report(self.kind, name, outcome)
            push_image(seeding, ecr, name, repo["image"])


def push_image(seeding: Seeding, ecr, repository: str, image: str) -> None:
    """Pushes a local image to the emulator's registry as {registry}/<repository>:<tag>, and names it
    in the Docker engine as the account's ECR registry would (<account>.dkr.ecr.<region>.amazonaws.com/
    <repository>:<tag>), so a task definition written for AWS (a template's RepositoryUri) runs
    unchanged: the emulator's tasks use an image the engine has. A push of unchanged layers is cheap,
    so it always runs."""
    tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else "latest"
    before = {i.get("imageDigest") for i in ecr.list_images(repositoryName=repository)["imageIds"]
              if i.get("imageTag") == tag}
    remote = f"{seeding.registry}/{repository}:{tag}"
    config = seeding.config
    aws_name = f"{config.account_id}.dkr.ecr.{config.region}.amazonaws.com/{repository}:{tag}"
    digest = seeding.push(image, remote, (aws_name,))
    seeding.report("ecr image", remote, "unchanged" if digest in before else "pushed")
