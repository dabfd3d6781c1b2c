"""The tree says where code runs: what the bootstrap image ships (core/, seeding/) imports nothing
that only the developer's machine has (host/) or that only tests use (testing/)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

PACKAGE = Path(__file__).resolve().parents[2] / "sandbox"
SHIPPED = ("core", "seeding")
FORBIDDEN = ("sandbox.host", "sandbox.testing")


def imported_modules(tree: ast.AST, package: str) -> list[str]:
    """Every module an import names: `import a.b`, `from a.b import c` (as a.b and a.b.c), relative
    imports resolved against `package` (the importing module's package)."""
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            names.append(module)
            names += [f"{module}.{alias.name}" for alias in node.names]
    return names


def test_shipped_modules_import_nothing_host_only():
    files = sorted(path for folder in SHIPPED for path in (PACKAGE / folder).rglob("*.py"))
    assert files, f"no modules under {PACKAGE}/{{{','.join(SHIPPED)}}}"
    offending = []
    for path in files:
        package = ".".join(path.relative_to(PACKAGE.parent).parent.parts)
        for name in imported_modules(ast.parse(path.read_text(), str(path)), package):
            if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN):
                offending.append(f"{path.relative_to(PACKAGE.parent)}: imports {name}")
    assert not offending, "modules the bootstrap image ships import host-only code:\n" + "\n".join(offending)


def test_the_check_sees_every_import_form():
    tree = ast.parse("import sandbox.host.docker\nfrom sandbox import host\nfrom sandbox.testing.x import y\n"
                     "from ..host import stack\nfrom . import config\n"
                     "def f():\n    from sandbox.host.settings import ROOT\n")
    names = set(imported_modules(tree, "sandbox.seeding"))
    assert {"sandbox.host.docker", "sandbox.host", "sandbox.testing.x", "sandbox.host.stack", "sandbox.seeding.config",
            "sandbox.host.settings"} <= names
