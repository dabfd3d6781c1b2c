"""The project the sandbox runs: a directory laid out like an astro CLI project, plus sandbox.yaml.

    dags/                  required; mounted read-only at /opt/airflow/dags
    plugins/, include/     optional; /opt/airflow/plugins and /opt/airflow/include (`from include.x import y`)
    requirements.txt       optional; installed into the Airflow image under Airflow's constraints
    airflow_settings.yaml  optional; astro-format connections, variables and pools
    sandbox.yaml           required; images, AWS and Kubernetes objects (and Airflow objects)
    images/<name>/         task images, declared in sandbox.yaml
    tests/                 the project's tests, run by `make test` with the sandbox's pytest plugin

`SANDBOX_PROJECT` (.env or environment; relative to the checkout or absolute) selects it; unset, the
checkout's own dags/, images/ and sandbox.yaml are the project. Everything is checked before
anything starts, and each problem names the path and what to do.
"""
from __future__ import annotations

import hashlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from sandbox.core.airflow_versions import AirflowVersion, from_setting, problem
from sandbox.core.airflow_versions import declared as declared_version
from sandbox.host.settings import ROOT, Settings

AIRFLOW_PROJECT_IMAGE = "sandbox/airflow-project"  # tagged with a digest of the project's path
PROJECT_AIRFLOW_DOCKERFILE = ROOT / "airflow" / "project.Dockerfile"
EMPTY_DIR = ROOT / ".build" / "empty"  # mounted where a project has no plugins/ or include/
NO_STARTUP = ROOT / ".build" / "no-startup.sh"  # mounted where a project has no startup.sh (MWAA's)
AIRFLOW_UID = 50000  # the Airflow containers' user: mounted files must be readable by it
# astro files the sandbox does not use, and what it does instead.
IGNORED_ASTRO_FILES = {
    "Dockerfile": "astro's runtime image is not used: the sandbox runs the Airflow sandbox.yaml names "
                  "(airflow.version / airflow.flavour) with this project's requirements.txt installed on top",
    "packages.txt": "OS packages are not installed into the Airflow image; put what tasks need into a "
                    "task image (images/<name>/Dockerfile, declared in sandbox.yaml)",
    "plugins.zip": "MWAA's plugins archive is not read; unzip it into plugins/, which the sandbox mounts "
                   "where MWAA unpacks the archive",
}


class ProjectError(RuntimeError):
    pass


@dataclass(frozen=True)
class Project:
    root: Path
    is_default: bool
    # .env's AIRFLOW_VERSION ("mwaa-2.10.3", "apache-3.0.6"): wins over sandbox.yaml, to try a version.
    version_override: str = ""

    @property
    def name(self) -> str:
        return "the sandbox's own project" if self.is_default else str(self.root)

    @property
    def config(self) -> Path:
        return self.root / "sandbox.yaml"

    @property
    def dags(self) -> Path:
        return self.root / "dags"

    def optional(self, name: str) -> Path | None:
        path = self.root / name
        return path if path.exists() else None

    @property
    def tests(self) -> Path | None:
        return None if self.is_default else self.optional("tests")

    def requirements_digest(self) -> str | None:
        """The digest of requirements.txt's packages (comments and blank lines do not count), or None."""
        path = self.root / "requirements.txt"
        if not path.is_file():  # load_project reports a requirements.txt that is not a file
            return None
        # pip's comment rule: `#` at the start or after whitespace (a URL's #sha256= stays)
        lines = [re.sub(r"(^|\s)#.*", "", ln).strip() for ln in path.read_text().splitlines()]
        packages = "\n".join(sorted(ln for ln in lines if ln))
        return hashlib.sha256(packages.encode()).hexdigest()[:12] if packages else None

    def declared(self) -> dict:
        """sandbox.yaml as written ({} when unreadable): what compose needs from it before `make up`
        validates it (a config that does not validate stops `make up` before anything starts)."""
        import yaml
        try:
            raw = yaml.safe_load(self.config.read_text()) or {}
        except (OSError, yaml.YAMLError):
            return {}
        return raw if isinstance(raw, dict) else {}

    def airflow_version(self, declared: dict | None = None) -> AirflowVersion:
        """The Airflow .env's AIRFLOW_VERSION or sandbox.yaml (`airflow: {version, flavour}`) names, or
        the sandbox's own. One that cannot run counts as unset here: load_project and `make validate`
        refuse it before anything starts."""
        if self.version_override:
            chosen = from_setting(self.version_override)
        else:
            chosen = declared_version((self.declared() if declared is None else declared).get("airflow"))
        return AirflowVersion() if problem(chosen.version, chosen.flavour) else chosen

    def airflow_image(self, version: AirflowVersion | None = None) -> str:
        """The Airflow image of the project's version, or one per project and version with its
        requirements on top (Docker's cache rebuilds it only when requirements.txt or the base changed)."""
        version = version or self.airflow_version()
        if self.requirements_digest() is None:
            return version.image
        digest = hashlib.sha256(f"{self.root}\0{version.key}".encode()).hexdigest()[:12]
        return f"{AIRFLOW_PROJECT_IMAGE}:{digest}"

    @property
    def world(self) -> str:
        """The name of this project's own world: its Airflow database and its emulator state. Each
        project keeps its own, so switching SANDBOX_PROJECT shows only the new project's DAGs, runs,
        connections, variables, pools and AWS objects, and switching back finds the old ones as they
        were. The checkout's own project keeps the names it always had ("airflow", the volume's root)."""
        if self.is_default:
            return ""
        slug = re.sub(r"[^a-z0-9]+", "_", self.root.name.lower()).strip("_")[:24] or "project"
        return f"{slug}_{hashlib.sha256(str(self.root).encode()).hexdigest()[:8]}"

    def airflow_role_arn(self, declared: dict | None = None) -> str:
        """The ARN of sandbox.yaml's aws.airflow_role ("" without one): what Airflow's containers act as."""
        from sandbox.seeding.config import DEFAULT_ACCOUNT_ID, role_arn
        aws = (self.declared() if declared is None else declared).get("aws")
        if not isinstance(aws, dict) or not isinstance(aws.get("airflow_role"), str):
            return ""
        return role_arn(aws.get("account_id") or DEFAULT_ACCOUNT_ID, aws["airflow_role"])

    def compose_env(self) -> dict[str, str]:
        """What compose.yaml interpolates for this project: mounts, the Airflow image and its world, and
        the compose files of its Airflow's major version."""
        declared = self.declared()
        version = self.airflow_version(declared)
        database = (f"airflow_{self.world}" if self.world else "airflow") + version.database_suffix
        return {
            "COMPOSE_FILE": os.pathsep.join(compose_files(version)),
            "SANDBOX_PROJECT_DIR": str(self.root),
            "SANDBOX_DAGS_DIR": str(self.dags),
            "SANDBOX_PLUGINS_DIR": str(self.optional("plugins") or EMPTY_DIR),
            "SANDBOX_INCLUDE_DIR": str(self.optional("include") or EMPTY_DIR),
            "SANDBOX_STARTUP_SCRIPT": str(self.optional("startup.sh") or NO_STARTUP),
            "SANDBOX_AIRFLOW_IMAGE": self.airflow_image(version),
            "SANDBOX_AIRFLOW_VERSION": version.key,
            "SANDBOX_AIRFLOW_DB": database,
            "SANDBOX_EMULATOR_STATE": f"/var/lib/ministack/projects/{self.world}" if self.world else "/var/lib/ministack",
            "SANDBOX_AIRFLOW_ROLE_ARN": self.airflow_role_arn(declared),
        }

    def notices(self) -> list[str]:
        """What exists in the project but is not used, said once at `make up`."""
        return [f"{self.root / name}: {why}" for name, why in IGNORED_ASTRO_FILES.items()
                if (self.root / name).exists()]


def prepare_mounts() -> None:
    """What compose mounts where a project has no plugins/, include/ or startup.sh."""
    EMPTY_DIR.mkdir(parents=True, exist_ok=True)
    if not NO_STARTUP.exists():
        NO_STARTUP.write_text("")
        NO_STARTUP.chmod(0o644)


def compose_files(version: AirflowVersion) -> list[str]:
    """compose.yaml, and for Airflow 2 the override that runs its services (airflow/compose.airflow2.yaml)."""
    return ["compose.yaml"] + (["airflow/compose.airflow2.yaml"] if version.major == 2 else [])


def selected_project(settings: Settings) -> Project:
    value = settings.get("SANDBOX_PROJECT", "").strip()
    override = settings.get("AIRFLOW_VERSION", "").strip()
    if not value:
        return Project(ROOT, is_default=True, version_override=override)
    root = Path(value).expanduser()
    root = (root if root.is_absolute() else ROOT / root).resolve()
    return Project(root, is_default=root == ROOT, version_override=override)


def load_project(settings: Settings) -> Project:
    """The selected project, checked: raises ProjectError listing every problem."""
    project = selected_project(settings)
    where = f"SANDBOX_PROJECT={settings.get('SANDBOX_PROJECT')!r}" if not project.is_default else "the checkout"
    if not project.root.is_dir():
        raise ProjectError(f"{where}: {project.root} is not a directory. Point SANDBOX_PROJECT (.env or the "
                           "environment) at a project directory with dags/ and sandbox.yaml (see "
                           "examples/genomics), or unset it to run the sandbox's own project.")
    problems = []
    if project.version_override:
        chosen = from_setting(project.version_override)
        why = problem(chosen.version, chosen.flavour)
        if why:
            problems.append(f"AIRFLOW_VERSION={project.version_override!r} (.env or the environment): {why}; "
                            "write it as <flavour>-<version>, e.g. mwaa-2.10.3, or leave it empty for sandbox.yaml's")
    if not project.dags.is_dir():
        problems.append(f"{project.dags}: missing; a project keeps its DAG files in dags/ (create it, even empty)")
    if not project.config.is_file():
        problems.append(f"{project.config}: missing; a project declares its images and AWS/Kubernetes objects "
                        "there (copy examples/genomics/sandbox.yaml and adapt it)")
    for name, want_dir in (("plugins", True), ("include", True), ("requirements.txt", False),
                           ("airflow_settings.yaml", False), ("startup.sh", False), ("tests", True)):
        path = project.optional(name)
        if path is not None and path.is_dir() != want_dir:
            problems.append(f"{path}: expected a {'directory' if want_dir else 'file'}")
    for tree in (project.dags, project.optional("plugins"), project.optional("include"), project.optional("startup.sh")):
        if tree is not None and tree.exists():
            problems += _unreadable(tree)
    for name in ("sandbox.yaml", "requirements.txt", "airflow_settings.yaml"):
        path = project.root / name
        if path.is_file() and not os.access(path, os.R_OK):
            problems.append(f"{path}: not readable; fix its permissions")
    if problems:
        raise ProjectError(f"project {project.root}: {len(problems)} problem(s); nothing was started.\n"
                           + "\n".join(f"  - {p}" for p in problems))
    return project


def _unreadable(tree: Path) -> list[str]:
    """Files the Airflow containers' user could not read through the read-only mount."""
    problems = []
    for path in [tree, *(tree.rglob("*") if tree.is_dir() else ())]:
        if "__pycache__" in path.parts:
            continue
        try:
            st = path.stat()
        except OSError:  # e.g. an editor's lock file, a link to nowhere
            problems.append(f"{path}: a broken link or unreadable entry; remove it or point it at a file")
            continue
        need = stat.S_IROTH | (stat.S_IXOTH if path.is_dir() else 0)
        if (st.st_mode & need) != need and st.st_uid != AIRFLOW_UID:
            problems.append(f"{path}: not readable by Airflow's user (uid {AIRFLOW_UID}) in the containers; "
                            f"`chmod o+r{'x' if path.is_dir() else ''} {path}`")
    return problems
