"""The package's import graph: one-way layers (a module imports only from its own layer or below, counting imports
inside functions too) and no cycle among module-level imports. Prints the graph's size so a closing note can cite
it (`python -m pytest tests/test_layers.py -s`)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "trtrepo"

# Lowest first. A module's layer is that of its first name below trtrepo (trtrepo.ops.build → "ops").
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors",),
    ("", "spec", "contracts", "dtypes", "settings", "samples", "deps", "_hashing", "_table", "_files", "_signals"),
    ("tensorrt", "ops"),
    ("targets", "repository", "runners", "export"),
    ("build", "check", "bench", "serve", "doctor", "conformance", "freshness", "publish", "remote", "deploy"),
    ("cli", "__main__"),
)
# Known exceptions, each with its reason; the test fails when one is no longer needed (so the list only shrinks).
ALLOWED: dict[tuple[str, str], str] = {}


def _module(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module(p): p for p in sorted(PACKAGE.rglob("*.py")) if "templates" not in p.parts}


def _imports(path: Path, modules: dict[str, Path], top_level: bool) -> set[str]:
    own = next((m for m, p in modules.items() if p == path), "")
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name.startswith("trtrepo") and name != own:
                found.add(name)
    return found


def _layer(module: str) -> int:
    first = module.split(".")[1] if "." in module else ""
    for index, names in enumerate(LAYERS):
        if first in names:
            return index
    raise AssertionError(f"{module}: no layer for {first!r}: add it to LAYERS in {__file__}")


def test_imports_go_one_way() -> None:
    modules = _modules()
    upward = {(m, t) for m, p in modules.items() for t in _imports(p, modules, top_level=False)
              if _layer(t) > _layer(m)}
    unexpected = sorted(upward - set(ALLOWED))
    assert not unexpected, "imports into a higher layer: " + ", ".join(f"{m} → {t}" for m, t in unexpected)
    stale = sorted(set(ALLOWED) - upward)
    assert not stale, f"no longer needed, remove from ALLOWED: {stale}"


def test_module_level_imports_have_no_cycle() -> None:
    modules = _modules()
    graph = {m: _imports(p, modules, top_level=True) for m, p in modules.items()}
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt):], nxt]
                raise AssertionError("import cycle: " + " → ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    edges = sum(len(v) for v in graph.values())
    print(f"import graph: {len(graph)} modules, {edges} module-level edges, no cycle")
    assert len(graph) > 50  # the walk saw the package, not an empty folder


def test_the_checker_sees_an_upward_import(tmp_path: Path) -> None:
    """The walk finds imports inside functions (where the stages keep their heavy ones)."""
    file = tmp_path / "probe.py"
    file.write_text("def f():\n    from trtrepo.cli import main\n    import trtrepo.build\n")
    modules = {**_modules(), "trtrepo.probe": file}
    assert _imports(file, modules, top_level=False) == {"trtrepo.cli", "trtrepo.build"}
    assert _imports(file, modules, top_level=True) == set()
