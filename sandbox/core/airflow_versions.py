"""The Airflow versions a project may name (sandbox.yaml `airflow: {version, flavour}`).

flavour `mwaa`: the package set of MWAA's image for that version (its bill of materials, derived from
aws/amazon-mwaa-docker-images by airflow/versions/derive_mwaa.py), plus what the sandbox needs beyond
it (the cncf.kubernetes provider at the version Airflow's constraints pin). flavour `apache`: plain
Apache Airflow with the amazon, postgres and cncf.kubernetes providers its constraints pin. Unset: the
sandbox's own Airflow (DEFAULT). Each has airflow/versions/<flavour>-<version>/requirements.lock,
hash-checked at build; nothing is resolved at `make up`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT = "3.3.2"
FLAVOURS = ("apache", "mwaa")
# Kept equal to the folders airflow/versions/<flavour>-<version>/ that hold a lock (a unit test checks).
KNOWN = {
    "apache": ("2.10.3", "2.11.2", "3.0.6", DEFAULT),
    "mwaa": ("2.10.3", "2.11.2", "3.0.6"),
}


_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)", re.M)


def canonical(name: str) -> str:
    """PEP 503's normalized name, as pip compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(text: str) -> dict[str, str]:
    """{canonical name: version} of the `name==version` lines of a requirements, lock, constraints or
    `pip freeze` text."""
    return {canonical(name): version for name, version in _PIN.findall(text)}


def known(flavour: str) -> tuple[str, ...]:
    return KNOWN.get(flavour, ())


def problem(version: object, flavour: object) -> str | None:
    """Why `airflow.version` / `airflow.flavour` cannot be run, or None."""
    if flavour not in FLAVOURS:
        return f"flavour {flavour!r} is not one of {', '.join(FLAVOURS)}"
    if not isinstance(version, str):
        return f"version must be quoted text such as \"{known(flavour)[-1]}\", found {version!r}"
    if version not in known(flavour):
        return f"{flavour} Airflow {version} is not one this sandbox runs; known: {', '.join(known(flavour))}"
    return None


@dataclass(frozen=True)
class AirflowVersion:
    version: str = DEFAULT
    flavour: str = "apache"

    @property
    def key(self) -> str:
        """The folder under airflow/versions/ and the Airflow image's tag."""
        return f"{self.flavour}-{self.version}"

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    @property
    def is_default(self) -> bool:
        return self == AirflowVersion()

    @property
    def image(self) -> str:
        return f"sandbox/airflow:{self.key}"

    @property
    def data_dir(self) -> str:
        """Relative to the checkout: the lock, and for mwaa the constraints MWAA applies."""
        return f"airflow/versions/{self.key}"

    @property
    def database_suffix(self) -> str:
        """Appended to the project's Airflow database name: one database per Airflow version, so a
        switch never runs one version against a schema another migrated (Airflow has no downgrade
        at start). The sandbox's own version keeps the names databases always had."""
        return "" if self.version == DEFAULT else "_v" + re.sub(r"\W", "_", self.version)

    def __str__(self) -> str:
        return f"{'MWAA' if self.flavour == 'mwaa' else 'Apache'} Airflow {self.version}"


def declared(airflow: object) -> AirflowVersion:
    """The version sandbox.yaml's `airflow:` mapping names, its defaults filled in (flavour apache, the
    sandbox's version); the sandbox's own when it names neither. Not checked: see problem()."""
    if not isinstance(airflow, dict) or not ("version" in airflow or "flavour" in airflow):
        return AirflowVersion()
    return AirflowVersion(airflow.get("version", DEFAULT), airflow.get("flavour", "apache"))


def from_setting(value: str) -> AirflowVersion:
    """AIRFLOW_VERSION's "<flavour>-<version>", or a bare version (apache). Not checked: see problem()."""
    flavour, _, version = value.strip().rpartition("-")
    return AirflowVersion(version, flavour or "apache")
