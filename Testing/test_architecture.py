"""The layer rules of DESIGN: no import cycle in ``luprrt``, ``slicer`` only in ``luprrt.mrml``,
Slicer modules use the core's public names only.

The import graph is read from the source (``ast``), so a cycle is found even when Python would
tolerate it at run time (a late import inside a function still makes two modules depend on
each other). Imports under ``if TYPE_CHECKING:`` are left out: they never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CORE = REPO / "LuPRRTExtension" / "luprrt"
MODULE_FOLDERS = ("LobeQuant", "LesionDosimetry", "ResponseAssess", "LuPRRTExtension")
SLICER_BOUND = {"slicer", "qt", "ctk", "vtk", "slicer.util"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(CORE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(path: Path) -> list[tuple[str, tuple[str, ...], int]]:
    """(absolute module, imported names, line) of every import of a file, TYPE_CHECKING blocks left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    in_core = CORE in path.parents
    package = "" if not in_core else (
        _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0])
    found = []

    def visit(node):
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend((alias.name, (), node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level and not in_core:
                module = ""  # a Slicer module's own helper package, not the core
            elif node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((module, tuple(alias.name for alias in node.names), node.lineno))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _core_files() -> list[Path]:
    return sorted(p for p in CORE.rglob("*.py") if "__pycache__" not in p.parts)


def _core_modules() -> set[str]:
    return {_module_name(p) for p in _core_files()}


def _resolve(module: str, names: tuple[str, ...], known: set[str]) -> list[str]:
    """The core modules an import statement loads (``from pkg import mod`` loads ``pkg.mod``)."""
    targets = [module] if module in known else []
    targets += [f"{module}.{name}" for name in names if f"{module}.{name}" in known]
    return targets


def import_graph() -> dict[str, set[str]]:
    """Core module -> core modules it imports.

    Importing ``pkg.mod`` runs ``pkg/__init__`` first, so it counts as an edge to ``pkg`` too, except
    when the importer lives in ``pkg`` itself (that package is already being imported then).
    """
    known = _core_modules()
    graph = {}
    for path in _core_files():
        name = _module_name(path)
        own_packages = {".".join(name.split(".")[:k]) for k in range(1, name.count(".") + 1)}
        edges = set()
        for module, names, _ in _imports(path):
            for target in _resolve(module, names, known):
                parts = target.split(".")
                edges.update(".".join(parts[:k]) for k in range(2, len(parts) + 1))
        graph[name] = edges - own_packages - {name, "luprrt"}  # the root package holds only __version__
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first = last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_the_core_import_graph_has_no_cycle():
    graph = import_graph()
    assert len(graph) > 40 and "luprrt.liver" in graph["luprrt.workflows.lobequant"]
    assert "luprrt.liver.tn" in graph["luprrt.liver"]
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_the_cycle_finder_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_only_mrml_imports_slicer_in_the_core():
    offenders = []
    for path in _core_files():
        for module, _, line in _imports(path):
            if module.split(".")[0] in SLICER_BOUND and path.name != "mrml.py":
                offenders.append(f"{path.relative_to(REPO)}:{line} imports {module}")
    assert not offenders, offenders


@pytest.mark.parametrize("folder", MODULE_FOLDERS)
def test_slicer_modules_use_the_public_core_api(folder):
    """No private name (``_x``) and no private module of ``luprrt`` in a module's files."""
    known = _core_modules()
    offenders = []
    for path in sorted((REPO / folder).rglob("*.py")):
        if CORE in path.parents or "Testing" in path.relative_to(REPO / folder).parts:
            continue
        for module, names, line in _imports(path):
            if not module.startswith("luprrt"):
                continue
            private = [n for n in names if n.startswith("_")]
            private_modules = [m for m in module.split(".") if m.startswith("_")]
            if module not in known:
                offenders.append(f"{path.relative_to(REPO)}:{line} imports unknown {module}")
            if private or private_modules:
                offenders.append(f"{path.relative_to(REPO)}:{line} imports private {module} {private}")
    assert not offenders, offenders
