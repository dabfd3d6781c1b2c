"""`make drift`: what the emulator holds against what the project declares (sandbox.yaml's sections
and its stacks): a policy statement added by hand while chasing an AccessDenied, a task definition
revision a DAG registered, a role or bucket no one declared. Each object type says how its objects
differ (`ObjectType.drift`); exit status 1 when anything does, so CI can ask."""
from __future__ import annotations

from urllib.parse import urlparse

from sandbox.core.progress import info
from sandbox.host.project import load_project
from sandbox.host.settings import Settings
from sandbox.seeding.bootstrap import load_seed
from sandbox.seeding.objects import REGISTRY, Seeding
from sandbox.seeding.objects.base import Difference
from sandbox.seeding.seed_aws import aws_clients


def differences(settings: Settings) -> tuple[str, list[Difference]]:
    project = load_project(settings)
    config = load_seed(project.config, project.root / "airflow_settings.yaml")
    clients = aws_clients(settings.aws_endpoint, config.region, settings.root_keys)
    seeding = Seeding(config, clients, report=lambda *_: None,
                      registry=f"localhost:{urlparse(settings.aws_endpoint).port or 4566}")
    stacks_type = next(t for t in REGISTRY if t.section == "stacks")
    owned = stacks_type.owned(clients[stacks_type.service], config.aws[stacks_type.section])
    found: list[Difference] = []
    for object_type in REGISTRY:
        entries = config.aws[object_type.section]
        found += object_type.drift(seeding, entries)
        declared = {e[object_type.key] for e in entries}
        for name in sorted(object_type.live_names(clients[object_type.service]) - declared - owned):
            found.append(Difference(object_type.kind, name, "in the emulator, declared by neither sandbox.yaml "
                                                            "nor a stack"))
    return project.name, found


def drift(settings: Settings) -> int:
    name, found = differences(settings)
    if not found:
        info(f"No drift: the emulator holds what {name}'s sandbox.yaml and stacks declare.")
        return 0
    info(f"{len(found)} difference(s) between the emulator and {name}'s sandbox.yaml (carry what should stay "
         "back into sandbox.yaml or the template; `make up` puts back what it declares):")
    for difference in found:
        info(f"  {difference}")
    return 1
