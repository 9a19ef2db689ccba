"""The import graph: no cycles in training_jobs/ or lambdas/, and lambdas/ stays deployable.

Imports inside functions count too: a cycle that only closes at run time still couples the
modules, and it is how the training_jobs cycle (models, sagemaker_env, smollm2, data.sentiment,
export) had hidden.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAMBDAS = ROOT / "lambdas"
FORBIDDEN_IN_LAMBDAS = ("local", "bench", "cdk_app", "stacks", "tests", "training_jobs")


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, name: str) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def graph(root: Path, package_roots: tuple[str, ...]) -> dict[str, set[str]]:
    modules = {
        module_name(path, root): path
        for top in package_roots
        for path in (root / top).rglob("*.py")
        if "__pycache__" not in path.parts
    }
    edges: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for imported in imports_of(path, name):
            # "a.b.c" may name a module or something inside one: take the longest module prefix.
            parts = imported.split(".")
            for end in range(len(parts), 0, -1):
                candidate = ".".join(parts[:end])
                if candidate in modules:
                    if candidate != name:
                        targets.add(candidate)
                    break
        edges[name] = targets
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module."""
    import networkx as nx

    found = nx.strongly_connected_components(nx.DiGraph([(a, b) for a, targets in edges.items() for b in targets]))
    return sorted(sorted(component) for component in found if len(component) > 1)


def test_the_cycle_finder_finds_a_cycle_through_a_function_level_import():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_training_jobs_has_no_import_cycles():
    edges = graph(ROOT, ("training_jobs",))
    assert "training_jobs.common.errors" in edges and edges["training_jobs.common.errors"] == set()
    assert cycles(edges) == []


@pytest.mark.parametrize("top", sorted(p.name for p in LAMBDAS.iterdir() if (p / "__init__.py").is_file()))
def test_lambdas_have_no_cycles_and_import_nothing_that_is_not_deployed(top):
    edges = graph(LAMBDAS, (top, "shared", "serving"))
    assert cycles(edges) == []
    for path in (LAMBDAS / top).rglob("*.py"):
        name = module_name(path, LAMBDAS)
        for imported in imports_of(path, name):
            assert imported.split(".")[0] not in FORBIDDEN_IN_LAMBDAS, f"{name} imports {imported}"
