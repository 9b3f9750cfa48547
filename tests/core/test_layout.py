"""The package's structure stays what the docs say: stages in layers, imports running one way only (from
the commands down to the core), no import cycle even through imports inside functions, typed errors in
``errors.py``, and no library module that prints."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "policy_topics"
# Lowest first. A module may import from its own layer and the layers before it, never from a later one.
LAYERS = [
    {"errors", "paths", "taxonomy", "files", "reporting", "_legacy"},
    {"data"},
    {"features"},
    {"models"},
    {"evaluation"},
    {"tracking"},
    {"serving"},
    {"search"},
    {"jobs"},
    {"cli"},
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1:  # the package itself: the version and the legacy finder
        return 0
    return next(i for i, names in enumerate(LAYERS) if parts[1] in names)


def imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) of every import of a project module, at module level or inside a function;
    ``from policy_topics.x import y`` counts as importing ``policy_topics.x.y`` when that is a module."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES else node.module
                     for a in node.names]
        else:
            continue
        for name in names:
            if name.split(".")[0] == "policy_topics":
                yield node.lineno, name


GRAPH = {name: {target for _, target in imported_modules(path)} - {name} for name, path in MODULES.items()}


def test_every_module_belongs_to_a_layer():
    unplaced = [m for m in MODULES if m != "policy_topics" and not any(m.split(".")[1] in n for n in LAYERS)]
    assert unplaced == []


def test_every_imported_project_module_exists():
    missing = [f"{MODULES[m].name}: {t}" for m, targets in GRAPH.items() for t in targets if t not in MODULES]
    assert missing == []


def test_every_name_imported_from_a_project_module_exists():
    import importlib

    missing = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "policy_topics":
                module = importlib.import_module(node.module)
                missing += [f"{name}:{node.lineno}: {node.module}.{a.name}" for a in node.names
                            if not hasattr(module, a.name) and f"{node.module}.{a.name}" not in MODULES]
    assert missing == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_run_from_the_commands_down_to_the_core(module: str):
    upward = [f"line {line}: {target} (layer {layer(target)})" for line, target in imported_modules(MODULES[module])
              if target in MODULES and layer(target) > layer(module)]
    assert upward == [], f"{module} (layer {layer(module)}) imports a later layer"


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as a path that ends where it starts, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target):], target]
            if target not in state and (found := visit(target, [*path, target])):
                return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start, [start])):
            return found
    return None


def test_there_is_no_import_cycle_even_through_imports_inside_functions():
    assert find_cycle(GRAPH) is None, " -> ".join(find_cycle(GRAPH) or [])


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_all_exception_classes_live_in_errors_py():
    elsewhere = []
    for name, path in MODULES.items():
        if name == "policy_topics.errors":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            bases = [getattr(base, "id", getattr(base, "attr", "")) for base in getattr(node, "bases", [])]
            if isinstance(node, ast.ClassDef) and any(b.endswith(("Error", "Exception")) for b in bases):
                elsewhere.append(f"{name}.{node.name}")
    assert elsewhere == []


def test_only_the_command_line_prints():
    printing = [f"{name}:{node.lineno}" for name, path in MODULES.items() if not name.startswith("policy_topics.cli")
                for node in ast.walk(ast.parse(path.read_text()))
                if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print"]
    assert printing == []


def test_importing_the_serving_path_loads_no_training_code():
    import subprocess
    import sys

    probe = ("import sys; import policy_topics.serving.http, policy_topics.models.predictor; "
             "print(' '.join(sorted(m for m in sys.modules if m.startswith('policy_topics.') or m in "
             "('datasets', 'torch', 'hydra', 'optuna'))))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert not {"policy_topics.models.out_of_core", "policy_topics.jobs.train", "datasets", "torch",
                "optuna"} & set(loaded)
