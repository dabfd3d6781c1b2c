"""How seed files are checked: every problem collected with its field path, each value's type checked
before anything looks inside it, so no input ends in a traceback and all problems are reported at once."""
from __future__ import annotations

import datetime
import difflib
import re
from pathlib import Path
from typing import Any

TOP_LEVEL = "(top level)"
# What strings of the aws: objects may use; SeedConfig.expand replaces them.
PLACEHOLDERS = ("account_id", "registry", "oidc_provider")
PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


def found(value: Any) -> str:
    """A wrong value as a problem shows it: its YAML kind, and the value cut to a readable length."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, (datetime.date, datetime.datetime)):
        return f"the date {value.isoformat()}"
    kind = {int: "number", float: "number", str: "text", list: "a list", dict: "a mapping"}.get(type(value),
                                                                                              type(value).__name__)
    return f"{kind} {shown(value)}"


def shown(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _within(where: str, path: str) -> bool:
    return where == path or where.startswith((path + ".", path + "["))


def _field(where: str, key: Any) -> str:
    """The path of `key` inside the mapping at `where`; a top-level key is its own path (aws, not
    "(top level).aws"), so the problems of a missing section match the paths of the fields inside it."""
    return str(key) if where == TOP_LEVEL else f"{where}.{key}"


class Checker:
    """Collects problems with their field paths instead of stopping at the first.

    Each helper checks a value's type before anything looks inside it, reports what it expected
    and what it found, and returns the value (or an empty/None stand-in), so later checks never
    see a value of the wrong type.
    """

    def __init__(self, path: Path):
        self.path = path
        self.problems: list[str] = []
        self._settled: list[str] = []  # fields whose type problem is reported: nothing more is said inside them

    def fail(self, where: str, message: str) -> None:
        if any(_within(where, settled) for settled in self._settled):
            return
        self.problems.append(f"{self.path.name}: {where}: {message}")

    def settle(self, where: str, message: str) -> None:
        """Reports a field's type problem; later problems at or inside that field add nothing and are dropped."""
        self.fail(where, message)
        self._settled.append(where)

    def mapping(self, value: Any, where: str, allowed: set[str], required: set[str] = frozenset()) -> dict:
        if value is None:
            value = {}
        if not isinstance(value, dict):
            self.fail(where, f"expected a mapping, found {found(value)}")
            return {}
        for key in sorted(set(value) - allowed, key=str):
            close = difflib.get_close_matches(str(key), sorted(allowed), n=1)
            self.fail(_field(where, key), f"unknown field; {f'did you mean {close[0]}? ' if close else ''}"
                                          f"expected one of: {', '.join(sorted(allowed))}")
        for key in sorted(required - set(value)):
            # Settled: the check of the field's type that follows would report the same absence again.
            self.settle(_field(where, key), "required field is missing")
        return value

    def items(self, value: Any, where: str) -> list:
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(where, f"expected a list, found {found(value)}")
            return []
        return value

    def text(self, value: Any, where: str, pattern: re.Pattern | None = None, hint: str = "",
             optional: bool = False) -> str | None:
        """A non-empty string (matching `pattern`); with `optional`, a missing one (None) is fine."""
        if value is None and optional:
            return None
        if not isinstance(value, str) or not value:
            quote = "; quote it" if isinstance(value, (int, float, datetime.date)) else ""
            self.fail(where, f"expected a non-empty string, found {found(value)}{quote}")
            return None
        if pattern and not pattern.match(value):
            self.fail(where, f"{shown(value)} is not valid{': ' + hint if hint else ''}")
            return None
        return value

    def integer(self, value: Any, where: str, low: int, high: int) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.fail(where, f"expected an integer from {low} to {high}, found {found(value)}")
            return None
        return value

    def string_list(self, value: Any, where: str, pattern: re.Pattern | None = None, hint: str = "",
                    non_empty: bool = True, blank_items: bool = False) -> list[str] | None:
        """A list of strings, each matching `pattern`; None (and a problem) when it is not one."""
        if not isinstance(value, list) or (non_empty and not value):
            self.fail(where, f"expected a {'non-empty ' if non_empty else ''}list of strings, found {found(value)}")
            return None
        ok = True
        for i, item in enumerate(value):
            if blank_items and item == "":
                continue
            ok = self.text(item, f"{where}[{i}]", pattern, hint) is not None and ok
        return value if ok else None

    def placeholders(self, value: Any, where: str) -> None:
        if isinstance(value, str):
            for name in PLACEHOLDER.findall(value):
                if name not in PLACEHOLDERS:
                    self.fail(where, f"unknown placeholder {{{name}}}; known: "
                                     + ", ".join("{%s}" % p for p in PLACEHOLDERS))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                self.placeholders(v, f"{where}[{i}]")
        elif isinstance(value, dict):
            for k, v in value.items():
                self.placeholders(v, f"{where}.{k}")

    def unique(self, entries: list, key: str, where: str) -> None:
        """Names that are not strings are left to the check of the name itself."""
        seen: set[str] = set()
        for i, entry in enumerate(entries):
            name = entry.get(key) if isinstance(entry, dict) else None
            if not isinstance(name, str):
                continue
            if name in seen:
                self.fail(f"{where}[{i}].{key}", f"duplicate {key} {name!r}; each must appear once")
            seen.add(name)


def names(entries: list, key: str = "name") -> set[str]:
    return {e[key] for e in entries if isinstance(e, dict) and isinstance(e.get(key), str)}


def is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except (OSError, ValueError):  # a name too long for the file system, a NUL byte
        return False


def is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False

def check_declared(c: Checker, tag: Any, where: str, declared: set[str]) -> None:
    """An image tag that must be one of `images` (built by `make up` before it is pushed or loaded)."""
    if c.text(tag, where) and tag not in declared:
        c.fail(where, f"{tag!r} is not in `images` (declared: {', '.join(sorted(declared)) or 'none'}); declare it "
                      "there so `make up` builds it before it is pushed or loaded")
