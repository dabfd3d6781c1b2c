"""The registry of AWS object types: each section of `aws:` has one type, checked and seeded in an
order where a type refers only to those before it."""
from __future__ import annotations

from pathlib import Path

import boto3
import pytest
import yaml

from sandbox.seeding.config import ConfigError, load_config, validate_config
from sandbox.seeding.objects import REGISTRY, SECTIONS

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
CONFIGS = [ROOT / "sandbox.yaml", *sorted(ROOT.glob("examples/*/sandbox.yaml"))]


def test_each_section_has_one_type_and_a_client():
    assert len(set(SECTIONS)) == len(REGISTRY)
    assert len({t.kind for t in REGISTRY}) == len(REGISTRY)
    services = boto3.session.Session().get_available_services()
    for object_type in REGISTRY:
        assert object_type.service in services, object_type.section


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_config_keeps_every_section_in_registry_order(path):
    config = load_config(path)
    assert list(config.aws) == list(SECTIONS)
    raw = yaml.safe_load(path.read_text())
    for section in SECTIONS:
        assert config.aws[section] == (raw["aws"].get(section) or []), section


def test_a_misspelt_section_names_the_known_one():
    raw = yaml.safe_load((ROOT / "sandbox.yaml").read_text())
    raw["aws"]["task_definition"] = raw["aws"].pop("task_definitions")
    with pytest.raises(ConfigError) as exc:
        validate_config(raw, ROOT / "sandbox.yaml")
    assert any(p.startswith("sandbox.yaml: aws.task_definition: unknown field; did you mean task_definitions?")
               for p in exc.value.problems)
