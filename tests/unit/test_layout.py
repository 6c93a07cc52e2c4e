"""The layout stays true: imports point one way (app -> waitlist core / pipeline -> platform; tools may import
anything, nothing imports a tool) and no two modules import each other, directly or round a circle,
at the top of a file or inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("reqsys", "childsys", "taskapp", "shared")

# room -> the rooms it must never import
FORBIDDEN = {
    "shared.platform": ("reqsys", "childsys", "taskapp", "shared.waitlist", "shared.pipeline", "shared.tools"),
    "shared.waitlist": ("reqsys", "childsys", "taskapp", "shared.pipeline", "shared.tools"),
    "shared.pipeline": ("reqsys", "childsys", "taskapp", "shared.waitlist", "shared.tools"),
    "reqsys": ("childsys", "taskapp", "shared.tools"),
    "childsys": ("reqsys", "taskapp", "shared.tools"),
    "taskapp": ("reqsys", "childsys", "shared.waitlist", "shared.pipeline", "shared.tools"),
}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_imports(root: Path) -> dict[str, set[str]]:
    """Each project module -> the project modules it imports anywhere in the file (functions included)."""
    files = [p for package in PACKAGES for p in (root / package).rglob("*.py") if "migrations" not in p.parts]
    modules = {module_name(p, root): p for p in files}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module)
                # `from shared.pipeline import monitor` imports the module shared.pipeline.monitor
                found.update(f"{node.module}.{alias.name}" for alias in node.names
                             if f"{node.module}.{alias.name}" in modules)
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def in_room(module: str, room: str) -> bool:
    return module == room or module.startswith(room + ".")


def wrong_directions(graph: dict[str, set[str]]) -> list[str]:
    wrong = []
    for module, imported in sorted(graph.items()):
        for room, banned in FORBIDDEN.items():
            if in_room(module, room):
                wrong += [f"{module} imports {target}" for target in sorted(imported)
                          if any(in_room(target, b) for b in banned)]
    return wrong


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), ignoring a package's import of its own
    submodules (an `__init__` that re-exports is not a circle a reader trips over)."""
    edges = {m: {t for t in targets if not t.startswith(m + ".")} for m, targets in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_imports_point_one_way():
    assert wrong_directions(project_imports(ROOT)) == []


def test_no_import_circles():
    assert circles(project_imports(ROOT)) == []


@pytest.fixture
def tree(tmp_path):
    for package in PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    for room in ("platform", "waitlist", "pipeline", "tools"):
        (tmp_path / "shared" / room).mkdir()
        (tmp_path / "shared" / room / "__init__.py").write_text("")
    (tmp_path / "shared" / "tools" / "provision.py").write_text("LIMIT = 5\n")
    (tmp_path / "shared" / "platform" / "web.py").write_text("")
    return tmp_path


def test_the_check_catches_an_import_up_or_into_a_tool(tree):
    (tree / "taskapp" / "jobs.py").write_text("def f():\n    from shared.tools.provision import LIMIT\n")
    (tree / "shared" / "platform" / "db.py").write_text("import reqsys\n")
    assert wrong_directions(project_imports(tree)) == [
        "shared.platform.db imports reqsys", "taskapp.jobs imports shared.tools.provision"]


def test_the_check_catches_a_circle_hidden_in_a_function(tree):
    (tree / "childsys" / "services.py").write_text("from childsys.capacity import check\n")
    (tree / "childsys" / "capacity.py").write_text("def check():\n    from childsys import services\n")
    assert circles(project_imports(tree)) == [["childsys.capacity", "childsys.services"]]
