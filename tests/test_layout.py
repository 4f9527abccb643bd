"""The runtime's layers: which of bot_runtime's packages may import which, checked by parsing.

The packages mirror a call's parts (see docs/architecture.md); a cycle between them, or a
low layer reaching up into the call, would bring back the one flat folder they replaced.
"""

import ast
import importlib
import importlib.util
import pkgutil
from functools import cache
from pathlib import Path

import bot_runtime

# Modules at the top of bot_runtime that start the process: they may import anything.
ENTRY_MODULES = {"bot_runtime.startup", "bot_runtime.dev_runner", "bot_runtime.python_tools"}
PACKAGES = sorted(
    info.name for info in pkgutil.iter_modules(bot_runtime.__path__, "bot_runtime.") if info.ispkg
)
MODULES = sorted(info.name for info in pkgutil.walk_packages(bot_runtime.__path__, "bot_runtime."))


@cache
def imports_of(module: str) -> frozenset[str]:
    """The bot_runtime modules ``module`` imports, anywhere in its file (functions too)."""
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None
    tree = ast.parse(Path(spec.origin).read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "bot_runtime":
                found |= {f"bot_runtime.{alias.name}" for alias in node.names}
            else:
                found.add(node.module)
    return frozenset(name for name in found if name.startswith("bot_runtime."))


def package_of(module: str) -> str | None:
    """The sub-package a module belongs to; None for a module at bot_runtime's top."""
    parts = module.split(".")
    candidate = ".".join(parts[:2])
    return candidate if candidate in PACKAGES else None


def importers_of(target: str) -> list[tuple[str, str]]:
    return [
        (module, imported)
        for module in MODULES
        for imported in imports_of(module)
        if imported == target or imported.startswith(f"{target}.")
    ]


def test_the_walk_finds_every_package_and_module():
    # pkgutil.iter_modules stops at the top; a test that walked only that would check nothing.
    assert {"bot_runtime.call", "bot_runtime.turns", "bot_runtime.tools"} <= set(PACKAGES)
    assert "bot_runtime.call.transfer" in MODULES and "bot_runtime.turns.barge_in" in MODULES


def test_each_package_says_in_one_line_what_lives_there():
    for package in PACKAGES:
        doc = importlib.import_module(package).__doc__ or ""
        assert doc.strip() and "\n" not in doc.strip(), f"{package} needs a one-line docstring"


def test_nothing_below_the_call_imports_it():
    outside = [
        (module, imported)
        for module, imported in importers_of("bot_runtime.call")
        if package_of(module) != "bot_runtime.call" and module not in ENTRY_MODULES
    ]
    assert not outside, f"only the call and entry modules may import bot_runtime.call: {outside}"


def test_turn_taking_depends_on_no_other_package_of_ours():
    for module in MODULES:
        if package_of(module) != "bot_runtime.turns":
            continue
        others = {package_of(name) for name in imports_of(module)} - {"bot_runtime.turns", None}
        assert not others, f"{module} imports {sorted(others)}; turns/ stands on pipecat alone"


def test_the_tool_specs_depend_on_no_other_package_of_ours():
    packages = {package_of(name) for name in imports_of("bot_runtime.tools.specs")} - {None}
    assert not packages, f"tools/specs.py imports {sorted(packages)}"


def test_the_modules_at_the_top_import_no_package():
    for module in MODULES:
        if package_of(module) is None and module not in ENTRY_MODULES:
            packages = {package_of(name) for name in imports_of(module)} - {None}
            assert not packages, f"{module} is a foundation module but imports {packages}"


def test_the_packages_import_each_other_without_a_cycle():
    edges = {package: set() for package in PACKAGES}
    for module in MODULES:
        source = package_of(module)
        for imported in imports_of(module):
            target = package_of(imported)
            if source and target and target != source:
                edges[source].add(target)
    done: set[str] = set()

    def visit(package: str, path: tuple[str, ...]) -> None:
        assert package not in path, f"packages import each other in a cycle: {path + (package,)}"
        if package in done:
            return
        for target in edges[package]:
            visit(target, path + (package,))
        done.add(package)

    for package in PACKAGES:
        visit(package, ())
