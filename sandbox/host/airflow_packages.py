"""`make packages`: the Python packages in the project's Airflow image, against what they should be.

flavour mwaa: every package of MWAA's bill of materials for that version must be there at the bill's
version; what the sandbox adds (the cncf.kubernetes provider and what it needs) and what the
project's requirements.txt adds are named apart. flavour apache: the image against its lock.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sandbox.core.airflow_versions import AirflowVersion, pins
from sandbox.host.docker import docker
from sandbox.host.project import Project
from sandbox.host.settings import ROOT

# In every venv, and not in a bill of materials (pip-licenses leaves them out).
PACKAGING_TOOLS = {"pip", "setuptools", "wheel"}


@dataclass
class Comparison:
    version: AirflowVersion
    image: str
    installed: dict[str, str]
    reference: dict[str, str]  # the bill of materials (mwaa) or the lock (apache)
    lock: dict[str, str]
    differ: dict[str, tuple[str, str]] = field(default_factory=dict)  # name: (reference's, installed)
    missing: list[str] = field(default_factory=list)
    sandbox_added: dict[str, str] = field(default_factory=dict)
    project_added: dict[str, str] = field(default_factory=dict)

    @property
    def matches(self) -> bool:
        return not self.differ and not self.missing


def compare_pins(version: AirflowVersion, image: str, installed: dict[str, str], reference: dict[str, str],
                 lock: dict[str, str]) -> Comparison:
    result = Comparison(version, image, installed, reference, lock)
    for name, wanted in sorted(reference.items()):
        if name not in installed:
            result.missing.append(name)
        elif installed[name] != wanted:
            result.differ[name] = (wanted, installed[name])
    for name, have in sorted(installed.items()):
        if name in reference or name in PACKAGING_TOOLS:
            continue
        (result.sandbox_added if name in lock else result.project_added)[name] = have
    return result


def installed_in(image: str) -> dict[str, str]:
    res = docker("run", "--rm", "--entrypoint", "pip", image, "list", "--format=freeze", check=True, capture=True)
    return pins(res.stdout)


def compare(project: Project) -> Comparison:
    version = project.airflow_version()
    image = project.airflow_image(version)
    folder = ROOT / version.data_dir
    lock = pins((folder / "requirements.lock").read_text())
    reference = pins((folder / "bom.txt").read_text()) if version.flavour == "mwaa" else lock
    return compare_pins(version, image, installed_in(image), reference, lock)


def describe(c: Comparison) -> str:
    what = "MWAA's bill of materials" if c.version.flavour == "mwaa" else "its lock"
    same = len(c.reference) - len(c.differ) - len(c.missing)
    lines = [f"{c.version}, image {c.image}: {len(c.installed)} packages installed.",
             f"  {what}: {len(c.reference)} packages, {same} installed at its version"
             + (" (all)" if c.matches else "")]
    lines += [f"  differs: {name} {want} in {what}, {have} here" for name, (want, have) in c.differ.items()]
    lines += [f"  missing: {name} {c.reference[name]}" for name in c.missing]
    if c.sandbox_added:
        lines.append(f"  added by the sandbox ({len(c.sandbox_added)}; pods need the cncf.kubernetes provider): "
                     + ", ".join(f"{n} {v}" for n, v in c.sandbox_added.items()))
    if c.project_added:
        lines.append(f"  added by the project's requirements.txt ({len(c.project_added)}): "
                     + ", ".join(f"{n} {v}" for n, v in c.project_added.items()))
    return "\n".join(lines)
