"""What a running sandbox was started from, and whether this checkout may reuse it.

Two checkouts (a user's second clone, CI's fresh clone on an engine that restarted an old sandbox)
share the compose project name, so "the services are up" says nothing about whose DAGs, images and
config they run. `make up` therefore records, in this checkout's `.build/stack.json`, the IDs of the
containers it started and a digest of every input that decides their behaviour. A running sandbox
is this checkout's only when its containers are the recorded ones; it is current only when the
inputs still hash the same. A fresh clone has no record, so it never reuses a sandbox it did not
start.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from sandbox.host.images import SERVICE_IMAGES
from sandbox.host.project import compose_files, selected_project
from sandbox.host.settings import ROOT, Settings

RECORD = ROOT / ".build" / "stack.json"
COMPOSE_FILE = ROOT / "compose.yaml"
SKIPPED_PARTS = {"__pycache__", ".pytest_cache", ".git", ".venv", "node_modules"}


def _digest_tree(path: Path) -> str:
    sha = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        rel = file.relative_to(path if path.is_dir() else path.parent)
        if SKIPPED_PARTS & set(rel.parts) or file.suffix == ".pyc":
            continue
        sha.update(str(rel).encode() + b"\0" + file.read_bytes() + b"\0")
    return sha.hexdigest()[:12] if files else "missing"


def context_paths(context: Path) -> list[Path]:
    """What a build context sends to Docker: the `!path` lines of its `.dockerignore` when that is an
    allow-list (the checkout's own is), else the whole folder."""
    ignore = context / ".dockerignore"
    lines = [ln.strip() for ln in ignore.read_text().splitlines()] if ignore.is_file() else []
    allowed = [context / ln[1:].strip("/") for ln in lines if ln.startswith("!")]
    return allowed if "*" in lines and allowed else [context]


def _declared_contexts(config: Path) -> list[Path]:
    """The build contexts a sandbox.yaml / images.yaml declares (read leniently: validation is elsewhere)."""
    try:
        images = (yaml.safe_load(config.read_text()) or {}).get("images") or []
        return [(config.parent / str(i["context"])).resolve() for i in images if isinstance(i, dict) and "context" in i]
    except (OSError, yaml.YAMLError, AttributeError):
        return []


def _declared_templates(config: Path) -> list[Path]:
    """The CloudFormation templates a sandbox.yaml's aws.stacks deploy (read leniently, as above)."""
    try:
        stacks = ((yaml.safe_load(config.read_text()) or {}).get("aws") or {}).get("stacks") or []
        return [(config.parent / str(s["template"])).resolve() for s in stacks if isinstance(s, dict) and "template" in s]
    except (OSError, yaml.YAMLError, AttributeError):
        return []


def inputs(settings: Settings) -> dict[str, str]:
    """A short digest per input that decides what the sandbox runs, keyed by what a user would edit.
    The DAGs are not here: they are mounted, so an edit shows in the running sandbox by itself."""
    project = selected_project(settings)
    digests = {"project": project.name, "compose.yaml": _digest_tree(COMPOSE_FILE)}
    for name in compose_files(project.airflow_version())[1:]:  # Airflow 2's override
        digests[name] = _digest_tree(ROOT / name)
    # Each setting apart, so a change is named ("setting K8S_PROVIDER"), wherever it was made: .env,
    # or the environment (which wins, for compose too). Compose's own variables count even when
    # .env does not list them. Values are hashed: some are secrets.
    compose_vars = set(re.findall(r"\$\{(\w+)", COMPOSE_FILE.read_text())) - set(project.compose_env())
    values = {**{k: os.environ[k] for k in compose_vars if k in os.environ}, **settings.values}
    for key, value in sorted(values.items()):
        digests[f"setting {key}"] = hashlib.sha256(value.encode()).hexdigest()[:12]
    for name in ("sandbox.yaml", "airflow_settings.yaml", "requirements.txt"):
        digests[name] = _digest_tree(project.root / name) if (project.root / name).is_file() else "missing"
    for path in _declared_templates(project.config):
        name = str(path.relative_to(project.root)) if path.is_relative_to(project.root) else str(path)
        digests[f"template {name}"] = _digest_tree(path) if path.is_file() else "missing"
    contexts = {c for config in (SERVICE_IMAGES, project.config) for c in _declared_contexts(config)}
    for path in sorted({p for c in contexts for p in context_paths(c)}):
        name = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
        digests[f"image input {name}{'/' if path.is_dir() else ''}"] = _digest_tree(path) if path.exists() else "missing"
    return digests


def read_record() -> dict:
    try:
        record = json.loads(RECORD.read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def write_record(containers: dict[str, str], settings: Settings) -> None:
    RECORD.parent.mkdir(parents=True, exist_ok=True)
    RECORD.write_text(json.dumps({"checkout": str(ROOT), "containers": containers, "inputs": inputs(settings)},
                                 indent=1, sort_keys=True))


def forget_record() -> None:
    RECORD.unlink(missing_ok=True)


@dataclass(frozen=True)
class Verdict:
    """What to do about the sandbox that is (or is not) running: `action` and why, in words."""

    action: str  # "start": nothing runs · "reuse" · "update": ours, inputs changed · "replace": not ours
    reason: str


def judge(running: dict[str, dict], healthy: bool, record: dict, current_inputs: dict[str, str]) -> Verdict:
    """`running`: the compose project's containers by service ({"ID", "working_dir"}); `healthy`: every
    service healthy and bootstrap done; `record`: this checkout's record of what it started."""
    if not running:
        return Verdict("start", "no sandbox is running")
    recorded = record.get("containers") or {}
    foreign = sorted(s for s, c in running.items() if recorded.get(s) != c.get("ID"))
    if foreign:
        origins = sorted({c.get("working_dir") or "an unknown checkout" for c in running.values()})
        where = ", ".join(origins)
        if not recorded:
            why = f"this checkout ({ROOT}) has no record of starting it"
        else:
            why = f"its containers ({', '.join(foreign)}) are not the ones this checkout started"
        return Verdict("replace", f"the running sandbox was started from {where}; {why}")
    changed = sorted(k for k, v in current_inputs.items() if (record.get("inputs") or {}).get(k) != v)
    if changed:
        return Verdict("update", f"this checkout's sandbox is running, but changed since it started: {', '.join(changed)}")
    if not healthy:
        return Verdict("update", "this checkout's sandbox is running but not healthy")
    return Verdict("reuse", f"reusing the running sandbox (started from this checkout, {ROOT}; inputs unchanged)")
