"""The build context of a project's requirements layer (airflow/project.Dockerfile), written so that
`pip install -r requirements.txt` in it reads every requirements and constraints file from the
context itself:

    requirements.txt             the constraints the Airflow flavour installs under, and `-r project/requirements.txt`
    project/requirements.txt     the project's file; each -c/-r it names points into this context
    project/<path>               each file it includes by relative path (nested includes too), where the project has it
    versions/mwaa-<v>/<file>     MWAA's constraint files, and the checkout's copy of Apache Airflow's
                                 constraints wherever the project names their URL

Apache flavour (and the default): the project's requirements under the pins of the image's own packages
(/opt/sandbox/airflow-requirements.txt, `pip freeze --all` of the image). MWAA flavour: as MWAA installs
a requirements.txt (aws/amazon-mwaa-docker-images, python/mwaa/utils/user_requirements.py): always
under its essential constraints, and under Airflow's constraints unless the file names constraints of
its own. Constraint URLs are never fetched: what a URL serves can change without Docker's layer cache
noticing, so the checkout's copy of Apache Airflow's constraints stands in for their URL, and any
other URL is refused with what to do instead.

    prepare(project.root / "requirements.txt", project.airflow_version(), ROOT / ".build" / "airflow-project")
"""
from __future__ import annotations

import optparse
import posixpath
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from sandbox.core.airflow_versions import AirflowVersion
from sandbox.core.progress import info
from sandbox.host.project import ProjectError
from sandbox.host.settings import ROOT

VERSIONS_DIR = ROOT / "airflow" / "versions"
IMAGE_PINS = "/opt/sandbox/airflow-requirements.txt"  # in every Airflow image (airflow/Dockerfile)
ENTRY = "requirements.txt"
PROJECT_DIR = "project"

# pip's comment rule: `#` at the start of a line or after whitespace (a URL's #sha256= stays).
COMMENT = re.compile(r"(^|\s+)#.*$")
# What pip fetches rather than opens (http, https, file), and any other scheme:// it cannot open.
URL = re.compile(r"(https?|file):|[a-z][a-z0-9+.-]*://", re.I)
# MWAA's test for "the file names its own constraints" (user_requirements.py _requirements_has_constraints),
# per line of the file as written: a commented-out `# -c ...` counts, on purpose (MWAA's documented way
# to opt out of Airflow's constraints), and `--constraint=URL` does not (the regex wants the space).
MWAA_OWN_CONSTRAINTS = re.compile(r"-c |--constraint ")
AIRFLOW_CONSTRAINTS_URL = re.compile(
    r"https?://(?:raw\.githubusercontent\.com/apache/airflow/|github\.com/apache/airflow/raw/)"
    r"(?:refs/(?:tags|heads)/)?constraints-(?P<version>[^/]+)/"
    r"constraints-(?P<variant>no-providers-|source-providers-)?(?P<python>3\.\d+)\.txt")
WHY_NO_URLS = ("the sandbox fetches no constraint file: what a URL serves can change without Docker's layer "
               "cache noticing")


class ProjectRequirementsError(ProjectError):
    """A requirements file (or one it includes) names something the build cannot read; the message
    names the file and line, what it names, and what to do."""


def prepare(requirements: Path, version: AirflowVersion, context: Path) -> None:
    """Writes the build context of airflow/project.Dockerfile for `requirements` (a project's
    requirements.txt; its folder is the project) and the Airflow `version` it goes on top of. A file
    is written only when its content changes, so an unchanged context keeps Docker's layer cache, and
    files a previous run left that are no longer wanted are removed."""
    write_context(context, context_files(requirements, version))


def context_files(requirements: Path, version: AirflowVersion) -> dict[str, bytes]:
    """Each file of the build context (path relative to it, posix) and its content."""
    reader = _Reader(requirements.parent.resolve())
    top = f"{PROJECT_DIR}/{requirements.name}"
    reader.read(requirements, top)
    lines = [f"# Written by sandbox/host/project_requirements.py: what airflow/project.Dockerfile installs "
             f"for {version}."]
    if version.flavour == "mwaa":
        lines += _mwaa_constraints(requirements, version, reader.files)
    else:
        lines += ["# The project's requirements.txt under the pins of the image's own packages.",
                  f"-c {IMAGE_PINS}"]
    lines.append(f"-r {top}")
    return {ENTRY: ("\n".join(lines) + "\n").encode(), **reader.files}


def _mwaa_constraints(requirements: Path, version: AirflowVersion, files: dict[str, bytes]) -> list[str]:
    essential = _copy(files, VERSIONS_DIR / version.key / "mwaa_essential_constraints.txt", version)
    lines = ["# As MWAA installs a requirements.txt: under MWAA's essential constraints always,"]
    own = [ln for ln in _text(requirements).splitlines() if MWAA_OWN_CONSTRAINTS.search(ln)]
    if own:
        lines += ["# and not under Airflow's: the file names constraints of its own (MWAA tests each line for",
                  "# \"-c \" or \"--constraint \", comments included) in:", f"#   {own[0].strip()}",
                  f"-c {essential}"]
    else:
        bundled = _copy(files, VERSIONS_DIR / version.key / "airflow_constraints.txt", version)
        lines += ["# and under Airflow's, as the file names no constraints of its own (no \"-c \" or",
                  "# \"--constraint \" in any line).", f"-c {essential}", f"-c {bundled}"]
    return lines


def _copy(files: dict[str, bytes], source: Path, version: AirflowVersion) -> str:
    if not source.is_file():
        raise ProjectRequirementsError(f"{source}: missing; the checkout keeps it for {version}: restore it "
                                       f"(git checkout -- {_shown(source)})")
    name = f"versions/{source.parent.name}/{source.name}"
    files[name] = source.read_bytes()
    return name


def held_airflow_constraints() -> dict[tuple[str, str], Path]:
    """The checkout's copies of Apache Airflow's constraints, by (Airflow version, Python version):
    airflow/versions/mwaa-<v>/airflow_constraints.txt, whose header names the URL it was copied from."""
    held = {}
    for path in VERSIONS_DIR.glob("mwaa-*/airflow_constraints.txt"):
        for line in path.read_text().splitlines()[:10]:
            found = AIRFLOW_CONSTRAINTS_URL.search(line)
            if found and not found["variant"]:
                held[(found["version"], found["python"])] = path
                break
    return dict(sorted(held.items(), key=lambda item: [[int(n) for n in part.split(".")] for part in item[0]]))


@dataclass
class _Reader:
    """Reads the project's requirements file and what it includes, rewriting each -c/-r into the context."""
    root: Path
    files: dict[str, bytes] = field(default_factory=dict)
    reading: list[str] = field(default_factory=list)  # the chain of includes being read, to refuse a cycle
    replaced: set[str] = field(default_factory=set)  # URLs already said to be replaced

    def read(self, source: Path, name: str) -> None:
        self.reading.append(name)
        text = _text(source)
        lines = text.splitlines()
        for first, last, line in logical_lines(text):
            target = include(line)
            if target is None:
                continue
            option, value = target
            if URL.match(value):
                found = self.airflow_constraints(f"{source}:{first}", line, option, value)
            else:
                # As pip: relative to the folder of the file that names it.
                found = self.project_file(f"{source}:{first}: {line}", source.parent / value)
            resolved = posixpath.relpath(found, posixpath.dirname(name))
            # One line for the logical one, blanks for its continuation lines: pip's messages keep the
            # project file's line numbers. pip ignores everything else on a line that includes a file.
            lines[first - 1:last] = [f"{option} {shlex.quote(resolved)}"] + [""] * (last - first)
        self.files[name] = ("\n".join(lines) + "\n").encode()
        self.reading.pop()

    def airflow_constraints(self, location: str, line: str, option: str, url: str) -> str:
        """The context's name of the checkout's copy of the constraints at `url`, or why there is none."""
        where = f"{location}: {line}"
        todo = (f"save the file into the project (curl -fsSLo constraints.txt '{url}') and name it by its path "
                f"relative to the file that names it: `{option} constraints.txt`")
        found = AIRFLOW_CONSTRAINTS_URL.fullmatch(url)
        if not found:
            raise ProjectRequirementsError(f"{where}: {WHY_NO_URLS}, and only Apache Airflow's "
                                           f"constraints URLs are replaced by the checkout's copy; {todo}")
        held = held_airflow_constraints()
        copy = held.get((found["version"], found["python"]))
        if copy is None or found["variant"]:
            listed = ", ".join(f"constraints-{v}/constraints-{py}.txt" for v, py in held)
            raise ProjectRequirementsError(
                f"{where}: {WHY_NO_URLS}, and the checkout holds no copy of that file (it holds "
                f"Apache Airflow's {listed}, from airflow/versions/mwaa-<version>/airflow_constraints.txt); {todo}")
        name = f"versions/{copy.parent.name}/{copy.name}"
        self.files[name] = copy.read_bytes()
        if url not in self.replaced:
            self.replaced.add(url)
            info(f"{location}: {url} is read from the checkout's copy, {_shown(copy)}")
        return name

    def project_file(self, where: str, named: Path) -> str:
        """The context's name of a file the project names (read in turn), or why it cannot be used."""
        path = named.resolve()
        if not path.is_relative_to(self.root):
            raise ProjectRequirementsError(
                f"{where}: {path} is outside the project ({self.root}); the Airflow image is "
                f"built from the project's requirements files only: copy it into the project and name it by "
                f"its relative path")
        if not path.is_file():
            raise ProjectRequirementsError(f"{where}: no such file ({path}); add it to the "
                                           f"project or remove the line")
        name = f"{PROJECT_DIR}/{path.relative_to(self.root).as_posix()}"
        if name in self.reading:
            raise ProjectRequirementsError(f"{where}: includes {' -> '.join(self.reading)} again: pip would "
                                           f"never finish; remove one of the includes")
        if name not in self.files:
            self.read(path, name)
        return name


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProjectRequirementsError(f"{path}: cannot be read as UTF-8 text ({exc}); save it as UTF-8") from exc


def logical_lines(text: str) -> list[tuple[int, int, str]]:
    """The lines pip reads from a requirements file, each with its first and last physical line: a line
    ending in a backslash joined with the next (unless it is a comment), comments and blanks dropped.
    As pip's req_file.preprocess, without its ${VAR} expansion (the build has no such variables)."""
    joined: list[tuple[int, int, str]] = []
    pending: list[str] = []
    start = 0
    for number, line in enumerate(text.splitlines(), 1):
        is_comment = COMMENT.match(line) is not None
        if line.endswith("\\") and not is_comment:
            if not pending:
                start = number
            pending.append(line.strip("\\"))
            continue
        if is_comment:
            line = " " + line  # as pip: so the comment is matched below
        if pending:
            joined.append((start, number, "".join(pending) + line))
            pending = []
        else:
            joined.append((number, number, line))
    if pending:
        joined.append((start, start + len(pending) - 1, "".join(pending)))
    stripped = [(first, last, COMMENT.sub("", line).strip()) for first, last, line in joined]
    return [(first, last, line) for first, last, line in stripped if line]


class _OptionParser(optparse.OptionParser):
    def error(self, msg: str):
        raise ValueError(msg)


def _line_parser() -> optparse.OptionParser:
    """pip's requirements-file options (req_file.py SUPPORTED_OPTIONS and SUPPORTED_OPTIONS_REQ) as optparse
    sees them: which take a value decides what a -c/-r value is, and optparse gives pip's spellings
    (`--constraint=X`, `-cX`, an unambiguous prefix such as `--constr`)."""
    parser = _OptionParser(add_help_option=False)
    for names in (("-c", "--constraint"), ("-r", "--requirement"), ("-i", "--index-url", "--pypi-url"),
                  ("--extra-index-url",), ("-e", "--editable"), ("-f", "--find-links"), ("--no-binary",),
                  ("--only-binary",), ("--trusted-host",), ("--use-feature",), ("-C", "--config-settings"),
                  ("--global-option",), ("--hash",)):
        parser.add_option(*names, action="append")
    for name in ("--no-index", "--prefer-binary", "--require-hashes", "--pre"):
        parser.add_option(name, action="store_true")
    return parser


_PARSER = _line_parser()


def include(line: str) -> tuple[str, str] | None:
    """("-r" or "-c", the file) a logical line makes pip read, or None. As pip's req_file: only a line
    without a requirement includes, its first -r wins over any -c, and the rest of it is ignored."""
    if not line.startswith("-"):
        return None  # a requirement (maybe with --hash ...): pip reads no file for it
    try:
        opts, _ = _PARSER.parse_args(shlex.split(line), _PARSER.get_default_values())
    except ValueError:
        return None  # pip refuses the line itself, with its own message
    if opts.requirement:
        return "-r", opts.requirement[0]
    if opts.constraint:
        return "-c", opts.constraint[0]
    return None


def write_context(context: Path, files: dict[str, bytes]) -> None:
    """`files` into `context`, each written only when its content differs; anything else there is removed."""
    context.mkdir(parents=True, exist_ok=True)
    wanted_dirs = {context} | {parent for name in files for parent in (context / name).parents}
    for path in sorted(context.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_dir() and not path.is_symlink():
            if path not in wanted_dirs:
                path.rmdir()  # deepest first: its stale files are gone by now
        elif path.relative_to(context).as_posix() not in files:
            path.unlink()
    for name, content in files.items():
        path = context / name
        if path.is_file() and path.read_bytes() == content:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
