"""`make export`: what the project's sandbox.yaml seeds, as a CloudFormation template ready for a real
account (.build/export/<project>.cfn.yaml), linted with cfn-lint; and the `aws.stacks` entry that
deploys it into the sandbox instead (.build/export/<project>.stack.yaml), for the round trip."""
from __future__ import annotations

from pathlib import Path

import yaml

from sandbox.core.progress import info, step
from sandbox.host.project import load_project
from sandbox.host.settings import ROOT, Settings
from sandbox.seeding.bootstrap import load_seed
from sandbox.seeding.export import OIDC_PARAMETER, export_config, to_yaml

EXPORT_DIR = ROOT / ".build" / "export"


class ExportError(RuntimeError):
    pass


def lint(path: Path, region: str) -> tuple[list[str], list[str]]:
    """cfn-lint's errors and warnings for the template, as "file:line: RULE message"."""
    from cfnlint.api import ManualArgs, lint_file

    errors, warnings = [], []
    for match in lint_file(path, config=ManualArgs(regions=[region])):
        line = f"{path.name}:{match.linenumber}: {match.rule.id} {match.message}"
        (errors if match.rule.severity == "error" else warnings).append(line)
    return errors, warnings


def export(settings: Settings) -> Path:
    project = load_project(settings)
    config = load_seed(project.config, project.root / "airflow_settings.yaml")
    slug = "sandbox" if project.is_default else project.root.name
    with step(f"Writing {project.config.name}'s AWS objects as a CloudFormation template"):
        exported = export_config(config)
        if not exported.resources:
            raise ExportError(f"{project.config}: no aws: objects to export (a stack's objects are already its "
                              "template's)")
        template = exported.template(f"The AWS objects of {slug}'s sandbox.yaml, exported by `make export` "
                                     "from what the sandbox seeded and enforced.")
        EXPORT_DIR.mkdir(parents=True, exist_ok=True)
        path = EXPORT_DIR / f"{slug}.cfn.yaml"
        path.write_text(to_yaml(template))
        stack = {"name": f"{slug}-export", "template": str(path)}
        if OIDC_PARAMETER in exported.parameters:
            stack["parameters"] = {OIDC_PARAMETER: "{oidc_provider}"}
        images = {exported.ids[("ecr_repositories", r["name"])]: r["image"] for r in config.aws["ecr_repositories"]}
        if images:
            stack["images"] = images
        (EXPORT_DIR / f"{slug}.stack.yaml").write_text(
            "# The aws.stacks entry that deploys the exported template into the sandbox (in place of the\n"
            "# sections it was exported from: all but s3_buckets' objects, which are data).\n"
            + yaml.safe_dump({"stacks": [stack]}, sort_keys=False))
    with step(f"Linting {path.relative_to(ROOT)} (cfn-lint)"):
        errors, warnings = lint(path, config.region)
    for line in warnings:
        info(f"warning {line}")
    for line in errors:
        info(f"error   {line}")
    if errors:
        raise ExportError(f"cfn-lint found {len(errors)} error(s) in {path}; the export is not ready to deploy")
    info(f"{path.relative_to(ROOT)}: {len(template['Resources'])} resources, cfn-lint: no errors, "
         f"{len(warnings)} warning(s)")
    info(f"Deploy it: aws cloudformation deploy --template-file {path.relative_to(ROOT)} --stack-name {slug} "
         f"--capabilities CAPABILITY_NAMED_IAM"
         + (f" --parameter-overrides {OIDC_PARAMETER}=<your EKS cluster's OIDC provider>"
            if OIDC_PARAMETER in exported.parameters else ""))
    return path
