"""Every image the sandbox runs is built here, from Dockerfiles whose base images are build args.

The bases default to upstream images (`python:3.12-slim-bookworm`, `debian:bookworm-slim`). Where
they cannot be pulled (no registry reachable), an equivalent is built locally: a debootstrap of
Debian bookworm from the host's own apt mirror, imported with `docker import`, and a Python layer
on top of it (images/base/python.Dockerfile).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from sandbox.core.airflow_versions import AirflowVersion
from sandbox.core.progress import info, step
from sandbox.host.docker import DockerError, docker, docker_pipe, docker_stream
from sandbox.host.settings import ROOT, Settings

LOCAL_DEBIAN_BASE = "sandbox-base/debian:bookworm"
LOCAL_PYTHON_BASE = "sandbox-base/python:bookworm"
# Bumped when the debootstrap recipe changes: a local base with another revision is built again.
LOCAL_BASE_REVISION_LABEL = "sandbox.base-revision"
LOCAL_BASE_REVISION = "2"
# What debian:bookworm-slim sets up, so images built on the local base stay as small: apt keeps no
# downloaded packages or caches in image layers, dpkg installs no docs, man pages or translations.
SLIM_FILES = {
    "etc/apt/apt.conf.d/docker-clean": (
        'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb '
        '/var/cache/apt/*.bin || true"; };\n'
        'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb '
        '/var/cache/apt/*.bin || true"; };\n'
        'Dir::Cache::pkgcache "";\nDir::Cache::srcpkgcache "";\n'),
    "etc/apt/apt.conf.d/docker-no-languages": 'Acquire::Languages "none";\n',
    "etc/dpkg/dpkg.cfg.d/docker": (
        "path-exclude /usr/share/doc/*\npath-include /usr/share/doc/*/copyright\n"
        "path-exclude /usr/share/man/*\npath-exclude /usr/share/info/*\n"
        "path-exclude /usr/share/locale/*\npath-include /usr/share/locale/locale.alias\n"),
}
SLIM_REMOVE = ("var/cache/apt/archives/*.deb", "var/cache/apt/*.bin", "var/lib/apt/lists/*",
               "usr/share/man/*", "usr/share/info/*", "usr/share/locale/*/")
CA_BUNDLE = ROOT / ".build" / "ca-bundle.crt"
HOST_CA_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem")


class ImageError(RuntimeError):
    pass


# The sandbox's own service images, declared like a project's task images (sandbox.yaml `images:`).
SERVICE_IMAGES = ROOT / "images.yaml"
AIRFLOW_DOCKERFILE = ROOT / "airflow" / "Dockerfile"
# On every Airflow image (and a project's on top of one): the Airflow it runs, "<flavour>-<version>".
AIRFLOW_VERSION_LABEL = "sandbox.airflow-version"
# Placeholders a declared image's build_args may use: the bases resolve_bases chose.
BASE_PLACEHOLDERS = {"{python_base}": "python", "{debian_base}": "debian"}


@dataclass(frozen=True)
class Image:
    """A locally built image: its tag, Dockerfile, and which base (python or debian) it starts from."""

    tag: str
    dockerfile: str
    base: str  # "python" | "debian"


def service_images(used: set[str]) -> list[dict]:
    """images.yaml's images that compose runs (`used`): the emulator's is skipped for LocalStack Pro."""
    from sandbox.seeding.config import load_images
    return [i for i in load_images(SERVICE_IMAGES) if i["tag"] in used]


def airflow_image(version: AirflowVersion) -> dict:
    """The Airflow image of one version (images.yaml's shape): airflow/Dockerfile with that version's lock."""
    return {"tag": version.image, "context": ROOT, "dockerfile": AIRFLOW_DOCKERFILE,
            "build_args": {"BASE_IMAGE": "{python_base}", "AIRFLOW_LOCK": f"{version.data_dir}/requirements.lock"},
            "labels": {AIRFLOW_VERSION_LABEL: version.key}}


def image_exists(tag: str) -> bool:
    return docker("image", "inspect", tag).returncode == 0


def image_label(tag: str, label: str) -> str | None:
    res = docker("image", "inspect", "--format", f'{{{{index .Config.Labels "{label}"}}}}', tag)
    return res.stdout.strip() if res.returncode == 0 else None


def slim_rootfs(rootfs: Path) -> None:
    """Applies SLIM_FILES and SLIM_REMOVE to a debootstrapped tree (docs keep their copyright files)."""
    for rel, text in SLIM_FILES.items():
        (rootfs / rel).parent.mkdir(parents=True, exist_ok=True)
        (rootfs / rel).write_text(text)
    doomed = [p for pattern in SLIM_REMOVE for p in rootfs.glob(pattern)]
    # Some doc folders are symlinks to another package's: leave the link, clean the real folder.
    doomed += [p for p in rootfs.glob("usr/share/doc/*/*") if p.name != "copyright" and not p.parent.is_symlink()]
    for path in doomed:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def _try_pull(tag: str) -> bool:
    try:
        return docker("pull", "--quiet", tag, timeout=180).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def host_apt_mirror() -> str:
    """The Debian mirror the host's apt uses, so debootstrap honours the user's mirror setting."""
    sources = sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))
    for path in sources:
        for line in path.read_text().splitlines():
            if line.startswith("URIs:") and "security" not in line:
                return line.split()[1]
    legacy = Path("/etc/apt/sources.list")
    if legacy.exists():
        for line in legacy.read_text().splitlines():
            m = re.match(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+\S+\s", line)
            if m and "security" not in m.group(1):
                return m.group(1)
    raise ImageError("Cannot build a local Debian base: no apt mirror found in /etc/apt/sources.list(.d). "
                     "Set DEBIAN_BASE_IMAGE / PYTHON_BASE_IMAGE in .env to images you can pull.")


def _build_local_debian_base() -> None:
    if shutil.which("debootstrap") is None:
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            raise ImageError("The base images cannot be pulled and debootstrap is not installed. Either make "
                             "DEBIAN_BASE_IMAGE / PYTHON_BASE_IMAGE (.env) pullable, or install debootstrap.")
        from sandbox.host.preflight import apt_install
        apt_install(["debootstrap"])
    mirror = host_apt_mirror()
    with step(f"Building local base {LOCAL_DEBIAN_BASE} (debootstrap bookworm)"), \
            tempfile.TemporaryDirectory(prefix="sandbox-rootfs-") as rootfs:
        res = subprocess.run(["debootstrap", "--variant=minbase", "bookworm", rootfs, mirror],
                             capture_output=True, text=True)
        if res.returncode != 0:
            raise ImageError(f"debootstrap failed:\n{res.stdout[-2000:]}{res.stderr[-2000:]}")
        slim_rootfs(Path(rootfs))
        docker_pipe(["tar", "-C", rootfs, "-c", "."], "import", "-c", 'CMD ["/bin/bash"]',
                    "-c", f"LABEL {LOCAL_BASE_REVISION_LABEL}={LOCAL_BASE_REVISION}", "-", LOCAL_DEBIAN_BASE)


def resolve_bases(settings: Settings, debian_ready: Callable[[str], None] | None = None) -> dict[str, str]:
    """Returns {"debian": tag, "python": tag}: the upstream bases if present or pullable, else local ones.
    `debian_ready(tag)` is called as soon as the Debian base is known, before the Python one is built."""
    wanted = {"debian": settings.get("DEBIAN_BASE_IMAGE", "debian:bookworm-slim"),
              "python": settings.get("PYTHON_BASE_IMAGE", "python:3.12-slim-bookworm")}
    local = {"debian": LOCAL_DEBIAN_BASE, "python": LOCAL_PYTHON_BASE}
    bases = {}
    for kind, tag in wanted.items():
        # A local base exists because `tag` could not be pulled on an earlier run: keep using it
        # rather than try again (up to 3 min on a network that hangs) on every `make up`.
        if (image_exists(tag) and not _local(tag)) or (not image_exists(local[kind]) and _try_pull(tag)):
            bases[kind] = tag
    if len(bases) == 2:
        if debian_ready:
            debian_ready(bases["debian"])
        return bases
    missing = ", ".join(t for k, t in wanted.items() if k not in bases)
    info(f"using local Debian bookworm bases in place of {missing}, under those names too "
         f"(`docker rmi {' '.join(local[k] + ' ' + wanted[k] for k in wanted if k not in bases)}` to try pulling again)")
    if "debian" not in bases:
        if image_label(LOCAL_DEBIAN_BASE, LOCAL_BASE_REVISION_LABEL) != LOCAL_BASE_REVISION:
            _build_local_debian_base()  # missing, or made by an older recipe
        bases["debian"] = LOCAL_DEBIAN_BASE
        # Under the upstream name at once: the cluster's build, started next, finds it by that name.
        docker("tag", LOCAL_DEBIAN_BASE, wanted["debian"], check=True)
    if debian_ready:
        debian_ready(bases["debian"])
    if "python" not in bases:  # built every time: instant from cache unless its Dockerfile or base changed
        build(Image(LOCAL_PYTHON_BASE, "images/base/python.Dockerfile", "debian"), bases)
        bases["python"] = LOCAL_PYTHON_BASE
    for kind, tag in wanted.items():
        if bases[kind] == local[kind]:
            # A team's unmodified `FROM python:3.12-slim-bookworm` / `FROM debian:bookworm-slim`
            # then builds on the local base instead of failing to pull.
            docker("tag", local[kind], tag, check=True)
    return bases


def _local(tag: str) -> bool:
    """Whether `tag` is one of the local debootstrap bases (they carry the revision label)."""
    return bool(image_label(tag, LOCAL_BASE_REVISION_LABEL))


def write_ca_bundle(settings: Settings) -> None:
    """The CA bundle the Dockerfiles hand to pip: the host's bundle plus EXTRA_CA_CERT."""
    parts = []
    for candidate in HOST_CA_BUNDLES:
        if Path(candidate).is_file():
            parts.append(Path(candidate).read_text())
            break
    extra = settings.get("EXTRA_CA_CERT")
    if extra:
        path = Path(extra).expanduser()
        if not path.is_file() or "BEGIN CERTIFICATE" not in path.read_text():
            raise ImageError(f".env: EXTRA_CA_CERT={extra!r} is not a readable PEM certificate file; "
                             "fix the path or leave it empty.")
        parts.append(path.read_text())
    CA_BUNDLE.parent.mkdir(exist_ok=True)
    content = "\n".join(parts)
    if not CA_BUNDLE.exists() or CA_BUNDLE.read_text() != content:  # unchanged file keeps the layer cache
        CA_BUNDLE.write_text(content)


# The CPU weight of a build that runs beside others (Docker's default is 1024): it takes what they leave.
BACKGROUND_CPU_SHARES = "128"


def docker_build(tag: str, dockerfile: str | Path, build_args: dict[str, str], labels: dict[str, str] | None = None,
                 context: Path = ROOT, background: bool = False, target: str | None = None) -> None:
    """`docker build` (from the repo root unless `context` says otherwise), showing Docker's steps (and
    Kubernetes' build phases, `+++`) as progress; on failure the last 40 lines go into the error.
    background=True: its RUN steps get BACKGROUND_CPU_SHARES, so what runs beside it is not slowed."""
    args = ["build", "--force-rm", "-f", str(dockerfile), "-t", tag]  # no containers left by a failed step
    if background:
        args += ["--cpu-shares", BACKGROUND_CPU_SHARES]
    if target:
        args += ["--target", target]
    for key, value in build_args.items():
        args += ["--build-arg", f"{key}={value}"]
    for key, value in (labels or {}).items():
        args += ["--label", f"{key}={value}"]
    try:
        for line in docker_stream(*args, ".", cwd=context, keep=40):
            if line.startswith(("Step ", "+++ ")) or line.startswith("#") and " DONE" not in line and "CACHED" in line:
                info(line.strip()[:120])
    except DockerError as exc:
        raise ImageError(f"building {tag} from {dockerfile} failed; last output:\n{exc.output}") from exc


def build(image: Image, bases: dict[str, str]) -> None:
    with step(f"Building {image.tag} ({image.dockerfile})"):
        docker_build(image.tag, image.dockerfile, {"BASE_IMAGE": bases[image.base]})


def build_declared(image: dict, bases: dict[str, str]) -> None:
    """One image declared in images.yaml or a project's sandbox.yaml (config.check_images' shape)."""
    args = {}
    for key, value in image["build_args"].items():
        for placeholder, kind in BASE_PLACEHOLDERS.items():
            value = value.replace(placeholder, bases[kind])
        args[key] = value
    shown = image["dockerfile"].relative_to(ROOT) if image["dockerfile"].is_relative_to(ROOT) else image["dockerfile"]
    with step(f"Building {image['tag']} ({shown})"):
        _say_python_version_once(image["dockerfile"], bases)
        docker_build(image["tag"], image["dockerfile"], args, image.get("labels"), context=image["context"])


_python_note_given = False


def _say_python_version_once(dockerfile: Path, bases: dict[str, str]) -> None:
    global _python_note_given
    if _python_note_given or not _local(bases["python"]):
        return
    from_python = re.search(r"^\s*FROM\s+(?:--\S+\s+)?(python:\S+)", dockerfile.read_text(), re.M | re.I)
    if from_python and not from_python.group(1).startswith("python:3.11"):
        info(f"note: no registry, so {from_python.group(1)} is the local base: Debian bookworm's Python 3.11 "
             "(bookworm has no newer Python package); pip, python and the CA bundle work as upstream")
        _python_note_given = True


def build_all(settings: Settings, used: set[str], airflow: AirflowVersion, project_images: list[dict] = (),
              debian_ready: Callable[[str], None] | None = None) -> list[str]:
    """The service images compose runs (`used`: stack.compose_images()), the project's version of
    Airflow (also when compose runs a project's image made on top of it), then the project's declared
    images. Docker's layer cache makes an unchanged image instant; only what changed is rebuilt.
    `debian_ready`: see resolve_bases (the cluster's images need only that base)."""
    write_ca_bundle(settings)
    bases = resolve_bases(settings, debian_ready)
    images = [*service_images(used), airflow_image(airflow), *project_images]
    for image in images:
        build_declared(image, bases)
    return [i["tag"] for i in images]
