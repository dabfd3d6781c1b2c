"""The error every seed file's validation raises: all of a file's problems at once, before anything changes."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class ConfigError(Exception):
    """A seed file is not valid; `problems` lists each one ("file: field: what to do")."""

    what = "the seed config"

    def __init__(self, path: Path, problems: list[str]):
        self.path = path
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{path}: {len(problems)} problem(s) in {self.what}; nothing was changed.\n{lines}")


def read_yaml(path: Path, error: type[ConfigError], missing: str) -> Any:
    """A seed file's YAML; a missing, unreadable or malformed file raises `error` (`missing` says what
    to do about a missing one)."""
    if not path.is_file():
        raise error(path, [f"{path}: file not found; {missing}"])
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise error(path, [f"{path.name}: not valid YAML: {exc}"]) from None
