"""What every AWS object type of `sandbox.yaml` provides, and what it is given to do it.

A type knows its section's schema and rules (`check`), how to make the emulator hold what the
section asks for (`seed`, idempotent: it reports created / updated / unchanged per object), and how
to tell cheaply that a seeded object is gone (`missing`, for the reseeder). The registry
(`sandbox.seeding.objects.REGISTRY`) runs the types in the order they depend on one another.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from botocore.exceptions import ClientError

from sandbox.seeding.checker import Checker, names

if TYPE_CHECKING:
    from sandbox.seeding.config import SeedConfig
    from sandbox.seeding.export import Export

Report = Callable[[str, str, str], None]  # (kind, name, outcome)


@dataclass
class Checks:
    """What a type's validation sees: the checker collecting problems, the file, the settings other
    sections give, and the entries of the types validated before it (a task definition's roles)."""

    c: Checker
    path: Path
    region: str
    images: set[str]  # tags of `images:`, which ECR repositories push
    checked: dict[str, list] = field(default_factory=dict)
    # Names the stacks' templates give objects of a section (a role's RoleName, ...).
    from_templates: dict[str, set[str]] = field(default_factory=dict)

    def names(self, section: str, key: str = "name") -> set[str]:
        return names(self.checked.get(section, []), key) | self.from_templates.get(section, set())


@dataclass
class Seeding:
    """What a type's seeding is given: the config, a boto3 client per service, and where to report."""

    config: SeedConfig
    clients: dict[str, Any]
    report: Report
    registry: str = ""  # the emulator's ECR registry, for {registry} and pushes
    # (local image, remote ref, other local names for it) -> pushed digest
    push: Callable[[str, str, tuple[str, ...]], str] | None = None
    oidc_issuer: str | None = None  # the cluster's service-account token issuer, when there is a cluster


@dataclass
class Difference:
    """One way the emulator differs from what sandbox.yaml (or a stack's template) declares."""

    kind: str
    name: str
    what: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name}: {self.what}"


class ObjectType:
    section = ""  # its list under `aws:` in sandbox.yaml
    kind = ""  # how reports name one
    service = ""  # the boto3 client it talks to
    key = "name"  # the field that names each entry (unique within the section)
    cfn_type = ""  # the CloudFormation resource type of one, and the property that names it
    cfn_name = ""
    fields: frozenset[str] = frozenset()
    required: frozenset[str] = frozenset({"name"})

    @property
    def where(self) -> str:
        return f"aws.{self.section}"

    def check(self, checks: Checks, entries: list) -> None:
        """Reports every problem of the section's entries to `checks.c`."""
        for i, entry in enumerate(entries):
            self.check_entry(checks, checks.c.mapping(entry, f"{self.where}[{i}]", set(self.fields),
                                                      set(self.required)), f"{self.where}[{i}]")

    def check_entry(self, checks: Checks, entry: dict, where: str) -> None:
        raise NotImplementedError

    def check_references(self, checks: Checks, entries: list) -> None:
        """Run once every section is checked: what the entries name of sections after this one."""

    def seed(self, seeding: Seeding, entries: list[dict]) -> None:
        raise NotImplementedError

    def to_cfn(self, export: Export, entry: dict) -> None:
        """Adds the entry as a CloudFormation resource to `export` (sandbox.seeding.export)."""
        raise NotImplementedError

    def missing(self, client: Any, entries: list[dict]) -> list[str]:
        """Names of seeded entries the emulator no longer has; only types with a cheap check say."""
        return []

    def drift(self, seeding: Seeding, entries: list[dict]) -> list[Difference]:
        """How the emulator's objects differ from the entries (`make drift`); by default, only which
        are gone."""
        client = seeding.clients[self.service]
        live = self.live_names(client)
        return [Difference(self.kind, e[self.key], "not in the emulator") for e in entries if e[self.key] not in live]

    def live_names(self, client: Any) -> set[str]:
        """The names of every object of this type the emulator holds (`make drift` lists those no
        section or stack declares)."""
        return set()


def error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")
