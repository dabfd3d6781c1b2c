"""The Airflow versions a project may name: MWAA's bill of materials read as the package set of its
image, the locks the images are built from (airflow/versions/derive.py), and how a project picks one."""
import importlib.util
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

_PATH = Path(__file__).resolve().parents[2] / "airflow" / "versions" / "derive.py"
_spec = importlib.util.spec_from_file_location("derive", _PATH)
derive = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(derive)

BOM = """This Docker image includes the following third-party software/licensing:
Flask-JWT-Extended
4.7.4
MIT License
https://github.com/vimalloc/flask-jwt-extended
/usr/local/airflow/.local/lib/python3.12/site-packages/flask_jwt_extended-4.7.4.dist-info/LICENSE
MIT

UNKNOWN
UNKNOWN

fluent-logger
0.11.1
Copyright (C) 2011 FURUHASHI Sadayuki

   Licensed under the Apache License, Version 2.0 (the "License");
1.0
UNKNOWN
UNKNOWN

apache-airflow
3.3.1
Apache Software License
https://airflow.apache.org/
"""


def test_each_record_gives_its_name_and_version_and_license_text_is_skipped():
    assert derive.parse_bom(BOM) == {"flask-jwt-extended": "4.7.4", "fluent-logger": "0.11.1",
                                     "apache-airflow": "3.3.1"}


def test_a_file_that_is_not_a_bill_of_materials_is_refused():
    with pytest.raises(derive.BomError, match="no package records"):
        derive.parse_bom("apache-airflow==3.3.1\n")
    with pytest.raises(derive.BomError, match="listed twice"):
        derive.parse_bom(BOM + "\nFlask_JWT_Extended\n4.7.4\n")


@pytest.mark.parametrize("version, python, packages", [("2.10.3", "3.11.9", 189), ("3.3.1", "3.12.13", 215)])
def test_the_derived_data_is_kept_in_the_repository(version, python, packages):
    folder = _PATH.parent / f"mwaa-{version}"
    meta = __import__("json").loads((folder / "version.json").read_text())
    assert (meta["airflow"], meta["python"], meta["packages"]) == (version, python, packages)
    pins = [line for line in (folder / "bom.txt").read_text().splitlines() if not line.startswith("#")]
    assert len(pins) == packages and f"apache-airflow=={version}" in pins
    assert f"apache-airflow=={version}" in (folder / "mwaa_essential_constraints.txt").read_text()


def test_airflow_2_logs_come_as_the_repr_of_their_sources():
    from sandbox.core.airflow_api import _v1_log_text
    assert _v1_log_text("[('worker', 'line one\\nline two'), ('s3', 'line three')]") == \
        "line one\nline two\nline three"
    assert _v1_log_text("plain text log") == "plain text log"
    assert _v1_log_text("[(broken") == "[(broken"


def test_the_known_versions_are_the_folders_with_a_lock():
    from sandbox.core import airflow_versions
    locked = sorted(p.parent.name for p in _PATH.parent.glob("*/requirements.lock"))
    assert sorted(f"{f}-{v}" for f, vs in airflow_versions.KNOWN.items() for v in vs) == locked


@pytest.mark.parametrize("key", ["mwaa-2.10.3", "mwaa-2.11.2", "mwaa-3.0.6"])
def test_an_mwaa_lock_holds_every_package_of_the_bill_at_its_version_and_names_its_additions(key):
    folder = _PATH.parent / key
    bom, lock = derive.pins((folder / "bom.txt").read_text()), (folder / "requirements.lock").read_text()
    locked = derive.pins(lock)
    assert {name: locked.get(name) for name in bom} == bom
    assert "apache-airflow-providers-cncf-kubernetes" in set(locked) - set(bom)
    # Every pin is hash-checked: pip refuses the whole file (--require-hashes) otherwise.
    assert lock.count("==") == len(locked) and lock.count("--hash=sha256:") >= len(locked)


def test_an_apache_lock_pins_airflow_and_the_providers_the_sandbox_uses():
    for version in ("2.10.3", "3.0.6", "3.3.2"):
        locked = derive.pins((_PATH.parent / f"apache-{version}" / "requirements.lock").read_text())
        assert locked["apache-airflow"] == version
        assert {"apache-airflow-providers-amazon", "apache-airflow-providers-cncf-kubernetes",
                "apache-airflow-providers-postgres", "aiobotocore"} <= set(locked)


def test_mwaa_lock_inputs_keep_mwaas_versions_over_airflows_constraints():
    requirements, constraints = derive.lock_inputs("mwaa-2.10.3", _PATH.parent)
    bom = derive.pins(requirements)
    assert bom["apache-airflow"] == "2.10.3"
    assert not set(derive.pins(constraints)) & set(bom)  # the bill's packages are not constrained twice
    assert "apache-airflow-providers-cncf-kubernetes==9.0.1" in constraints


def test_the_version_decides_image_database_and_compose_files():
    from sandbox.core.airflow_versions import AirflowVersion
    from sandbox.core.airflow_versions import from_setting
    from sandbox.host.project import compose_files
    own = AirflowVersion()
    assert (own.image, own.database_suffix, compose_files(own)) == ("sandbox/airflow:apache-3.3.2", "", ["compose.yaml"])
    two = from_setting("mwaa-2.10.3")
    assert (two.image, two.database_suffix, two.major) == ("sandbox/airflow:mwaa-2.10.3", "_v2_10_3", 2)
    assert compose_files(two) == ["compose.yaml", "airflow/compose.airflow2.yaml"]
    assert from_setting("3.0.6") == AirflowVersion("3.0.6", "apache")
    assert str(two) == "MWAA Airflow 2.10.3"


@pytest.mark.parametrize("given, problem", [
    ({"version": "2.10.3", "flavour": "mwaa"}, None),
    ({"version": "2.10.2", "flavour": "mwaa"}, "airflow.version: mwaa Airflow 2.10.2 is not one this sandbox runs; "
                                               "known: 2.10.3, 2.11.2, 3.0.6"),
    ({"version": 2.1, "flavour": "mwaa"}, "airflow.version: version must be quoted text"),
    ({"version": "3.3.2", "flavour": "astro"}, "airflow.flavour: flavour 'astro' is not one of apache, mwaa"),
])
def test_the_project_names_its_airflow_and_an_unknown_one_is_refused_with_the_known(given, problem):
    import yaml

    from sandbox.seeding.config import ConfigError, validate_config
    root = _PATH.parents[2]
    raw = yaml.safe_load((root / "sandbox.yaml").read_text())
    raw["airflow"].update(given)
    if problem is None:
        chosen = validate_config(raw, root / "sandbox.yaml").airflow_version
        assert (chosen.version, chosen.flavour) == (given["version"], given["flavour"])
        return
    with pytest.raises(ConfigError) as failed:
        validate_config(raw, root / "sandbox.yaml")
    assert any(problem in p for p in failed.value.problems), failed.value.problems


def test_the_package_listing_names_what_differs_from_the_bill_and_who_added_the_rest():
    from sandbox.core.airflow_versions import AirflowVersion
    from sandbox.host.airflow_packages import compare_pins, describe
    bom = {"apache-airflow": "2.10.3", "boto3": "1.35.36", "watchtower": "3.3.1"}
    lock = {**bom, "apache-airflow-providers-cncf-kubernetes": "9.0.1"}
    installed = {**lock, "boto3": "1.35.99", "humanfriendly": "10.0", "pip": "24.0"}
    del installed["watchtower"]
    c = compare_pins(AirflowVersion("2.10.3", "mwaa"), "img", installed, bom, lock)
    assert (c.differ, c.missing, c.matches) == ({"boto3": ("1.35.36", "1.35.99")}, ["watchtower"], False)
    assert (c.sandbox_added, c.project_added) == ({"apache-airflow-providers-cncf-kubernetes": "9.0.1"},
                                                  {"humanfriendly": "10.0"})
    text = describe(c)
    assert "MWAA's bill of materials: 3 packages, 1 installed at its version" in text
    assert "differs: boto3 1.35.36 in MWAA's bill of materials, 1.35.99 here" in text
    assert "missing: watchtower 3.3.1" in text and "humanfriendly 10.0" in text
