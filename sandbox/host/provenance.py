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
from dataclasses import dataclass
from pathlib import Path

from sandbox.host.settings import ROOT, Settings

RECORD = ROOT / ".build" / "stack.json"
COMPOSE_FILE = ROOT / "compose.yaml"
CONFIG_FILE = ROOT / "sandbox.yaml"
# Every image builds from the checkout root with this allow-list: what it lets through is what the
# images are made of.
DOCKERIGNORE = ROOT / ".dockerignore"
SKIPPED_PARTS = {"__pycache__", ".pytest_cache"}


def _digest_tree(path: Path) -> str:
    sha = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        rel = file.relative_to(ROOT)
        if SKIPPED_PARTS & set(rel.parts) or file.suffix == ".pyc":
            continue
        sha.update(str(rel).encode() + b"\0" + file.read_bytes() + b"\0")
    return sha.hexdigest()[:12] if files else "missing"


def image_context_paths() -> list[Path]:
    """The paths `.dockerignore` lets into the images' build context (its `!path` lines)."""
    paths = []
    for line in DOCKERIGNORE.read_text().splitlines():
        line = line.strip()
        if line.startswith("!"):
            paths.append(ROOT / line[1:].strip("/"))
    return paths


def inputs(settings: Settings) -> dict[str, str]:
    """A short digest per input that decides what the sandbox runs, keyed by what a user would edit.
    The DAGs are not here: they are mounted, so an edit shows in the running sandbox by itself."""
    digests = {
        "compose.yaml": _digest_tree(COMPOSE_FILE),
        "sandbox.yaml": _digest_tree(CONFIG_FILE),
        "settings (.env)": hashlib.sha256(json.dumps(settings.values, sort_keys=True).encode()).hexdigest()[:12],
    }
    for path in image_context_paths():
        name = str(path.relative_to(ROOT)) + ("/" if path.is_dir() else "")
        digests[f"image input {name}"] = _digest_tree(path) if path.exists() else "missing"
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
