"""Derives, once per Airflow version, the package data the sandbox's Airflow image is built from.

`mwaa`: reads a local copy of aws/amazon-mwaa-docker-images (a git directory) and writes
airflow/versions/mwaa-<version>/:

    bom.txt                          name==version of every Python package in MWAA's image (its bill of
                                     materials, a pip-licenses dump, parsed here)
    mwaa_essential_constraints.txt   MWAA's constraints no customer may override (copied)
    airflow_constraints.txt          the Airflow constraints MWAA applies to a customer's requirements
                                     unless the file names its own (copied)
    version.json                     Airflow and Python versions, the source commit and paths

    python airflow/versions/derive.py mwaa --mirror <git dir> 2.10.3 3.3.1 ...

`lock`: resolves airflow/versions/<flavour>-<version>/requirements.lock with every file's sha256, for
Python 3.11 and newer on Linux (uv's universal resolution; uv pinned in requirements-derive.txt):

    mwaa-<v>     MWAA's bill of materials, exactly, plus the cncf.kubernetes provider (pods) and what it
                 needs, under Airflow's constraints for the packages the bill does not list
    apache-<v>   apache-airflow[amazon,postgres]==<v>, the cncf.kubernetes provider and aiobotocore
                 (deferrable ECS), under Airflow's constraints (kept in mwaa-<v>/)
    apache-3.3.2 (the sandbox's own) its requirements.in, which pins every package

    python airflow/versions/derive.py lock mwaa-2.10.3 apache-3.0.6 ...

Nothing here runs at `make up`: the files are kept in the repository, and the image is built from them
with `pip install --require-hashes --no-deps`.
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # the checkout, for the sandbox package
from sandbox.core.airflow_versions import canonical, pins  # noqa: E402 (after the path it needs)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_VERSION = re.compile(r"^\d+(\.\d+)*((a|b|rc|\.post|\.dev|post|dev)\d*)*(\+[A-Za-z0-9.]+)?$")
_PYTHON = re.compile(r"^ENV PYTHON_VERSION=(\S+)$", re.M)


class BomError(ValueError):
    pass


def parse_bom(text: str) -> dict[str, str]:
    """{name: version} from a pip-licenses plain-vertical dump. A record starts after a blank line (or
    the header) with a name line followed by a version line; license texts in between are skipped."""
    lines = text.splitlines()
    found: dict[str, str] = {}
    for i in range(1, len(lines) - 1):
        starts = i == 1 or not lines[i - 1].strip()
        if starts and _NAME.match(lines[i]) and _VERSION.match(lines[i + 1]):
            key = canonical(lines[i])
            if key in found:
                raise BomError(f"{lines[i]} is listed twice")
            found[key] = lines[i + 1]
    if not found:
        raise BomError("no package records found: not a pip-licenses plain-vertical dump")
    return found


def _show(mirror: Path, rev: str, path: str) -> str:
    res = subprocess.run(["git", "--git-dir", str(mirror), "show", f"{rev}:{path}"], capture_output=True, text=True)
    if res.returncode != 0:
        raise BomError(f"{path} not found at {rev} in {mirror}: {res.stderr.strip()}")
    return res.stdout


def derive(mirror: Path, version: str, rev: str = "HEAD", out: Path = HERE) -> Path:
    base = f"images/airflow/{version}"
    commit = subprocess.run(["git", "--git-dir", str(mirror), "rev-parse", rev], capture_output=True,
                            text=True, check=True).stdout.strip()
    bom = parse_bom(_show(mirror, commit, f"{base}/BillOfMaterials/{version}/Python-Packages-BOM.txt"))
    if bom.get("apache-airflow") != version:
        raise BomError(f"the {version} bill of materials has apache-airflow {bom.get('apache-airflow')!r}")
    python = _PYTHON.search(_show(mirror, commit, f"{base}/Dockerfiles/Dockerfile.base"))
    target = out / f"mwaa-{version}"
    target.mkdir(parents=True, exist_ok=True)
    (target / "bom.txt").write_text(
        f"# MWAA {version}'s Python packages (its bill of materials at {commit[:12]}), derived by derive.py\n"
        + "".join(f"{name}=={v}\n" for name, v in sorted(bom.items())))
    for name in ("mwaa_essential_constraints.txt", "airflow_constraints.txt"):
        (target / name).write_text(_show(mirror, commit, f"{base}/etc/{name}"))
    (target / "version.json").write_text(json.dumps({
        "airflow": version, "python": python.group(1) if python else None, "packages": len(bom),
        "source": {"repository": "aws/amazon-mwaa-docker-images", "commit": commit, "path": base},
    }, indent=1) + "\n")
    return target


AIRFLOW_PROVIDERS = ("apache-airflow-providers-cncf-kubernetes",)  # what MWAA's image lacks and pods need
APACHE_EXTRAS = ("apache-airflow-providers-cncf-kubernetes", "apache-airflow-providers-amazon[aiobotocore]")


def lock_inputs(key: str, out: Path = HERE) -> tuple[str, str]:
    """(requirements, constraints) to resolve for airflow/versions/<key>/."""
    flavour, _, version = key.partition("-")
    folder = out / key
    if (folder / "requirements.in").is_file():
        return (folder / "requirements.in").read_text(), ""
    airflow_constraints = out / f"mwaa-{version}" / "airflow_constraints.txt"
    if not airflow_constraints.is_file():
        raise BomError(f"no Airflow constraints for {version} ({airflow_constraints}); derive mwaa {version} first")
    constraints = airflow_constraints.read_text()
    if flavour == "mwaa":
        bom = (out / key / "bom.txt").read_text()
        listed = pins(bom)
        # MWAA's own versions win; Airflow's constraints only place what the bill does not list.
        kept = [line for line in constraints.splitlines()
                if (pinned := pins(line)) and not pinned.keys() & listed.keys()]
        return bom + "".join(f"{p}\n" for p in AIRFLOW_PROVIDERS), "\n".join(kept) + "\n"
    if flavour == "apache":
        return (f"apache-airflow[amazon,postgres]=={version}\n"
                + "".join(f"{p}\n" for p in APACHE_EXTRAS)), constraints
    raise BomError(f"{key}: expected <mwaa|apache>-<version>")


def lock(key: str, out: Path = HERE) -> Path:
    import tempfile
    requirements, constraints = lock_inputs(key, out)
    target = out / key / "requirements.lock"
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "requirements.in").write_text(requirements)
        (Path(tmp) / "constraints.txt").write_text(constraints)
        res = subprocess.run(
            ["uv", "pip", "compile", "requirements.in", "--constraint", "constraints.txt", "--universal",
             "--python-version", "3.11", "--generate-hashes", "--no-header", "--no-annotate",
             "-o", str(target)],
            cwd=tmp, capture_output=True, text=True)
    if res.returncode != 0:
        raise BomError(f"uv could not resolve {key}:\n{res.stderr[-3000:]}")
    body = target.read_text()
    if key.startswith("mwaa-"):
        bom = pins((out / key / "bom.txt").read_text())
        locked = pins(body)
        moved = {n: (v, locked.get(n)) for n, v in bom.items() if locked.get(n) != v}
        if moved:
            raise BomError(f"the lock moved packages off MWAA's versions: {moved}")
    target.write_text(f"# {key}: every package the Airflow image installs, with the sha256 of each of its files.\n"
                      f"# Generated by airflow/versions/derive.py lock {key}; do not edit.\n" + body)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    mwaa = commands.add_parser("mwaa", help="MWAA's bill of materials and constraints per version")
    mwaa.add_argument("--mirror", type=Path, required=True, help="git directory of aws/amazon-mwaa-docker-images")
    mwaa.add_argument("--rev", default="HEAD")
    mwaa.add_argument("versions", nargs="+")
    lock_cmd = commands.add_parser("lock", help="requirements.lock per <flavour>-<version> folder")
    lock_cmd.add_argument("keys", nargs="+")
    args = parser.parse_args(argv)
    if args.command == "lock":
        for key in args.keys:
            try:
                target = lock(key)
            except BomError as exc:
                print(f"ERROR {key}: {exc}", file=sys.stderr)
                return 1
            print(f"{key}: {len(pins(target.read_text()))} packages -> {target}")
        return 0
    for version in args.versions:
        try:
            target = derive(args.mirror, version, args.rev)
        except BomError as exc:
            print(f"ERROR {version}: {exc}", file=sys.stderr)
            return 1
        print(f"{version}: {json.loads((target / 'version.json').read_text())['packages']} packages -> {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
