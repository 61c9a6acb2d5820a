"""diffpg's imports point one way: read from the source (ast), every import anywhere in a module, the
module graph has no cycle, and no module imports one of a higher layer (docs/design.md):

    errors, types, sharding, distributed  <  envs, policies  <  rollouts  <  estimators, diagnostics,
    oracles, landscape, trust, finite_differences  <  training  <  deploy, gymnasium_eval  <  report  <  cli

``diffpg/__init__.py`` and ``__main__`` sit on top: they re-export and start everything.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "diffpg"
LAYERS = [("errors", "types", "sharding", "distributed"), ("envs", "policies"), ("rollouts",),
          ("estimators", "diagnostics", "oracles", "landscape", "trust", "finite_differences"), ("training",),
          ("deploy", "gymnasium_eval"), ("report",), ("cli",), ("__init__", "__main__")]
LAYER = {name: level for level, names in enumerate(LAYERS) for name in names}


def module_name(path: Path) -> str:
    parts = ("diffpg",) + path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imports(name: str) -> set[str]:
    """The diffpg modules that ``name`` imports, anywhere in its source."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            origin = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:  # a submodule where one has that name, else the module itself
                found.add(f"{origin}.{alias.name}" if f"{origin}.{alias.name}" in MODULES else origin)
    return {target for target in found if target in MODULES and target != name}


GRAPH = {name: imports(name) for name in MODULES}


def layer(name: str) -> int:
    parts = name.split(".")
    return LAYER["__init__" if len(parts) == 1 else parts[1]]


def test_no_module_imports_a_higher_layer():
    up = {(source, target) for source, targets in GRAPH.items() for target in targets
          if layer(target) > layer(source)}
    assert up == set(), "imports that point up the layers"


def test_the_module_graph_has_no_cycle():
    """Depth-first search; a package's ``__init__`` counts as the module ``diffpg.x`` itself."""
    state, stack = {}, []

    def visit(name):
        state[name] = "open"
        stack.append(name)
        for target in sorted(GRAPH[name]):
            if state.get(target) == "open":
                pytest.fail("import cycle: " + " -> ".join(stack[stack.index(target):] + [target]))
            if target not in state:
                visit(target)
        stack.pop()
        state[name] = "done"

    for name in sorted(GRAPH):
        if name not in state:
            visit(name)


def test_the_walk_sees_the_imports_it_must():
    """The reader of imports is right on known edges, so that an empty answer above means something."""
    assert "diffpg.training.trainer" in GRAPH["diffpg.training.run"]
    assert "diffpg.estimators" in GRAPH["diffpg.training.trainer"]  # from .. import estimators
    assert "diffpg.rollouts" in GRAPH["diffpg.training.window"]
