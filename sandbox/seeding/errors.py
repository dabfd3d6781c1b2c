"""The error every seed file's validation raises: all of a file's problems at once, before anything changes."""
from __future__ import annotations

from pathlib import Path


class ConfigError(Exception):
    """A seed file is not valid; `problems` lists each one ("file: field: what to do")."""

    what = "the seed config"

    def __init__(self, path: Path, problems: list[str]):
        self.path = path
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{path}: {len(problems)} problem(s) in {self.what}; nothing was changed.\n{lines}")
