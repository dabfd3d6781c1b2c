"""Unit tests of the contract the emulator's patches hold MiniStack to (localstack/contract.py).

The check runs here against fake modules; against the real MiniStack it runs in the emulator's image
(tests/e2e/test_emulator_contract.py), or here when ministack happens to be installed.
"""

import ast
import importlib.util
import pathlib
import re
import types

import pytest

pytestmark = pytest.mark.unit

LOCALSTACK = pathlib.Path(__file__).resolve().parents[2] / "localstack"
_spec = importlib.util.spec_from_file_location("contract", LOCALSTACK / "contract.py")
contract = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(contract)

PATCHES = ("ecs_fidelity.py", "iam_fidelity.py", "durability.py", "cfn_fidelity.py")


def _fake(name, **attrs):
    module = types.ModuleType(name)
    vars(module).update(attrs)
    return module


def _importer(*modules):
    by_name = {m.__name__: m for m in modules}

    def import_module(name):
        if name not in by_name:
            raise ModuleNotFoundError(f"No module named {name!r}")
        return by_name[name]
    return import_module


def test_a_missing_name_and_a_changed_signature_are_reported_by_name():
    def emit(config, message, ts):
        pass

    def kept(task, docker_client=None):
        pass
    fake = _fake("fake.ecs", _emit=emit, _kept=kept)
    broken = contract.check({"fake.ecs": {"_emit": "(config, message)", "_gone": "(data)",
                                          "_kept": "(task, docker_client=None)"}},
                            sources={}, import_module=_importer(fake))
    assert broken == ["fake.ecs._emit: signature (config, message) expected, found (config, message, ts)",
                      "fake.ecs._gone: missing"]


def test_kinds_values_entries_and_dotted_names_are_checked():
    async def handle(method, path):
        pass

    def run(data):
        pass

    def other(data):
        pass

    class Store:
        def get(self, key, default=None):
            pass
    fake = _fake("fake.ecs", handle=handle, sync_handle=run, _run=run, _ACTION_MAP={"RunTask": other},
                 _SEQ=(("STOPPING", False),), _sessions=[], _tasks=Store(), _Error=ValueError)
    broken = contract.check({"fake.ecs": {
        "handle": "async (method, path)",
        "sync_handle": "async (data)",
        "_ACTION_MAP": {"RunTask": "_run", "StopTask": "_stop"},
        "_SEQ": (("DEACTIVATING", False),),
        "_sessions": "dict",
        "_tasks.get": "(key, default=None)",
        "_tasks.get_scoped": "(key)",
        "_Error": "class",
    }}, sources={}, import_module=_importer(fake))
    assert broken == [
        "fake.ecs.sync_handle: signature async (data) expected, found (data)",
        "fake.ecs._ACTION_MAP['RunTask']: '_run' expected, found 'other'",
        "fake.ecs._ACTION_MAP['StopTask']: '_stop' expected, found None",
        "fake.ecs._SEQ: value (('DEACTIVATING', False),) expected, found (('STOPPING', False),)",
        "fake.ecs._sessions: dict expected, found list",
        "fake.ecs._tasks.get_scoped: missing",
    ]


def test_a_module_that_is_gone_and_a_changed_source_are_reported():
    def _start_task_worker(task):
        pass
    fake = _fake("fake.ecs", _start_task_worker=_start_task_worker)
    broken = contract.check({"fake.gone": {"x": "()"}},
                            sources={"fake.ecs": {"_start_task_worker": ("0" * 64, "a patch copies it")}},
                            import_module=_importer(fake))
    assert broken[0] == "fake.ecs._start_task_worker: source changed (sha256 now " + \
        contract._source_hash(_start_task_worker) + "): a patch copies it"
    assert broken[1].startswith("fake.gone: cannot be imported (No module named 'fake.gone')")


def test_a_function_ecs_fidelity_replaces_has_its_signature_in_the_contract():
    unrecorded = [name for name, expectation in contract.expected()[contract.ECS].items()
                  if expectation == contract.NO_SIGNATURE]
    assert not unrecorded, (f"ecs_fidelity._REPLACED has {unrecorded}, whose MiniStack signature "
                            "localstack/contract.py does not record: add them to CONTRACT")


def ministack_names_used(source, known):
    """(module, name) for each attribute of a MiniStack module that a patch module imports, reads,
    calls or sets. ``known``: the contract, to follow ``ecs.ecs_metadata.x`` into a submodule."""
    tree = ast.parse(source)
    aliases, used = {}, set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "ministack":
            for alias in node.names:
                if node.module in ("ministack", "ministack.services", "ministack.core"):  # a module
                    aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
                else:
                    used.add((node.module, alias.name))
    for node in ast.walk(tree):  # ecs_fidelity keeps the module in a global: `ecs = module`
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            aliases.update((t.id, aliases[node.value.id]) for t in node.targets if isinstance(t, ast.Name))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        if isinstance(node.value, ast.Name) and node.value.id in aliases:
            used.add((aliases[node.value.id], node.attr))
        inner = node.value
        if (isinstance(inner, ast.Attribute) and isinstance(inner.value, ast.Name) and inner.value.id in aliases
                and known.get(aliases[inner.value.id], {}).get(inner.attr) == "module"):
            used.add((aliases[inner.value.id].rsplit(".", 1)[0] + "." + inner.attr, node.attr))
    return used


def test_every_ministack_name_the_patches_use_is_in_the_contract():
    known = contract.expected()
    unpinned = sorted(
        f"{module}.{name} ({patch})"
        for patch in PATCHES
        for module, name in ministack_names_used((LOCALSTACK / patch).read_text(), known)
        if not any(key == name or key.startswith(name + ".") for key in known.get(module, {})))
    assert not unpinned, ("The patches use MiniStack names localstack/contract.py does not pin; record "
                          "their signature (or kind, or value) in CONTRACT:\n  " + "\n  ".join(unpinned))


def test_the_ast_scan_finds_module_globals_imports_and_submodules():
    source = ("def apply():\n    global ecs\n    from ministack.services import ecs as module\n"
              "    ecs = module\n    module._ACTION_MAP['x'] = 1\n"
              "def f():\n    from ministack.core.persistence import PERSIST_STATE\n"
              "    ecs.ecs_metadata.set_task_status(1)\n    ecs._tasks.get(1)\n")
    known = {"ministack.services.ecs": {"ecs_metadata": "module"}}
    assert ministack_names_used(source, known) == {
        ("ministack.services.ecs", "_ACTION_MAP"), ("ministack.services.ecs", "ecs_metadata"),
        ("ministack.services.ecs", "_tasks"), ("ministack.core.persistence", "PERSIST_STATE"),
        ("ministack.services.ecs_metadata", "set_task_status")}


def test_the_readme_names_each_replaced_function_and_their_number():
    readme = (LOCALSTACK / "README.md").read_text()
    how = re.search(r"^## How\n(.*?)^## ", readme, re.S | re.M).group(1)
    replaced = contract.ecs_fidelity._REPLACED
    assert f" {len(replaced)} functions " in how, "README.md's How gives another number of replaced functions"
    assert not [n for n in replaced if f"`{n}`" not in how], "README.md's How leaves out a replaced function"


def test_the_installed_ministack_keeps_the_contract():
    pytest.importorskip("ministack", reason="ministack is installed in the emulator's image, not in this venv")
    assert contract.check() == []
