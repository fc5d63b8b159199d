"""The package's layers and size rules, checked on the source with ``ast`` (nothing of ``rcl`` is imported).

The layers are the map in ``rcl/__init__.py``'s docstring; the rules marked *never* there are checked
here, as are the rules every module keeps: a docstring that names its layer, no function over 80 lines,
no module over 500 lines unless its docstring says why (a line starting ``Why one module:``).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "rcl"
LAYERS = ("ground floor", "configuration", "core", "engine", "evaluation", "studies", "outer shell")
#: Layers that never import the outer shell.
INNER = ("ground floor", "configuration", "core", "engine", "evaluation")
NETWORK = ("requests", "urllib", "urllib3", "pooch", "socket", "http", "httpx", "aiohttp")
MAX_FUNCTION, MAX_MODULE = 80, 500


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


FILES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _tree(name: str) -> ast.Module:
    return ast.parse(FILES[name].read_text(), filename=str(FILES[name]))


def _map() -> dict[str, str]:
    """The map of ``rcl/__init__.py``: each listed module (``cache``, ``methods``, …) → its layer."""
    doc = ast.get_docstring(_tree("rcl")) or ""
    header = re.compile(rf"^    ({'|'.join(LAYERS)}):")
    entry = re.compile(r"^        ([a-z_]+) {2,}\S")
    out: dict[str, str] = {}
    layer = None
    for line in doc.splitlines():
        if m := header.match(line):
            layer = m.group(1)
        elif (m := entry.match(line)) and layer is not None:
            assert m.group(1) not in out, f"{m.group(1)} is listed twice in the map of rcl/__init__.py"
            out[m.group(1)] = layer
    return out


MAP = _map()


def _layer(name: str) -> str:
    """The layer of module ``rcl.x.y``: that of ``x.y`` in the map, else of ``x``."""
    short = name.removeprefix("rcl.")
    return MAP.get(short) or MAP.get(short.split(".")[0]) or "unlisted"


def _resolve(name: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The modules (dotted names) an import statement in module ``name`` imports."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    base = node.module or ""
    if node.level:
        package = name if FILES[name].name == "__init__.py" else name.rsplit(".", 1)[0]
        package = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
        base = f"{package}.{base}" if base else package
    found = [base]
    for alias in node.names:  # ``from rcl import datasets``: the submodule itself
        if f"{base}.{alias.name}" in FILES:
            found.append(f"{base}.{alias.name}")
    return found


def _all_imports(name: str) -> set[str]:
    """Everything module ``name`` imports, anywhere in the file (functions included)."""
    return {m for node in ast.walk(_tree(name)) if isinstance(node, (ast.Import, ast.ImportFrom))
            for m in _resolve(name, node)}  # fmt: skip


def _is_type_checking(node: ast.stmt) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _module_level_imports(name: str) -> set[str]:
    """What module ``name`` imports when it is imported: its body, ``if``/``try``/``with`` blocks and class
    bodies, but not function bodies or ``if TYPE_CHECKING:`` blocks."""
    out: set[str] = set()

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                out.update(_resolve(name, node))
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or _is_type_checking(node):
                continue
            else:
                for field in ("body", "orelse", "finalbody", "handlers"):
                    visit([s for s in getattr(node, field, []) if isinstance(s, ast.AST)])

    visit(_tree(name).body)
    return out


def _rcl_targets(name: str, imported: set[str]) -> set[str]:
    """The rcl modules among ``imported``, with the packages whose ``__init__`` importing them runs (a
    package's own submodules importing each other leave that package out)."""
    out = set()
    for m in imported:
        if m not in FILES:
            continue
        out.add(m)
        parts = m.split(".")
        for i in range(2, len(parts)):
            package = ".".join(parts[:i])
            if not (name == package or name.startswith(package + ".")):
                out.add(package)
    return out - {"rcl", name}


def test_the_map_lists_every_module_once():
    on_disk = {n.removeprefix("rcl.").split(".")[0] for n in FILES if n != "rcl"}
    assert set(MAP) == on_disk, (
        f"the map in rcl/__init__.py misses {sorted(on_disk - set(MAP))} and lists modules that do not exist: "
        f"{sorted(set(MAP) - on_disk)}"
    )


def test_inner_layers_never_import_the_outer_shell():
    outer = {f"rcl.{m}" for m, layer in MAP.items() if layer == "outer shell"}
    bad = {}
    for name in FILES:
        if _layer(name) in INNER:
            hits = {m for m in _all_imports(name) if m in outer or any(m.startswith(o + ".") for o in outer)}
            if hits:
                bad[name] = sorted(hits)
    assert not bad, f"modules of the core, engine or evaluation import the outer shell: {bad}"


@pytest.mark.parametrize("start", ["rcl.noise", "rcl.distances"])
def test_noise_and_distances_reach_no_network(start):
    """Neither module, nor any rcl module it imports (anywhere, transitively), imports rcl.datasets or a
    network library."""
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo += sorted(_rcl_targets(name, _all_imports(name)))
    datasets = sorted(m for m in seen if m == "rcl.datasets" or m.startswith("rcl.datasets."))
    assert not datasets, f"{start} reaches {datasets}"
    network = {n: sorted(m for m in _all_imports(n) if m.split(".")[0] in NETWORK) for n in seen}
    assert not {n: m for n, m in network.items() if m}, f"{start} reaches the network through {network}"


@pytest.mark.parametrize("name", ["rcl.cache", "rcl.rng"])
def test_ground_floor_imports_no_other_rcl_module(name):
    rcl = sorted(m for m in _all_imports(name) if m == "rcl" or m.startswith("rcl."))
    assert not rcl, f"{name} imports {rcl}"


def test_no_import_cycles_at_module_level():
    graph = {name: sorted(_rcl_targets(name, _module_level_imports(name))) for name in FILES}
    cycles, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in graph.get(node, []):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(path[path.index(nxt):] + [node, nxt]) if nxt in path else f"{node} -> {nxt}")
            elif nxt not in state:
                visit(nxt, [*path, node])
        state[node] = "done"

    for name in graph:
        if name not in state:
            visit(name, [])
    assert not cycles, f"import cycles at module level: {cycles}"


@pytest.mark.parametrize("name", sorted(FILES), ids=sorted(FILES))
def test_module_docstring_names_its_layer(name):
    doc = ast.get_docstring(_tree(name))
    assert doc, f"{FILES[name].relative_to(PACKAGE.parent)} has no module docstring"
    lines = [line for line in doc.splitlines() if line.startswith("Layer:")]
    assert lines, f"{name}: no line starting 'Layer:' in its docstring"
    expected = "package root" if name == "rcl" else _layer(name)
    assert expected in lines[0], f"{name}: {lines[0]!r} does not name its layer in the map ({expected!r})"


@pytest.mark.parametrize("name", sorted(FILES), ids=sorted(FILES))
def test_functions_and_modules_are_short(name):
    tree = _tree(name)
    functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    long = [f"{f.name} ({f.end_lineno - f.lineno + 1} lines, line {f.lineno})" for f in functions
            if f.end_lineno - f.lineno + 1 > MAX_FUNCTION]  # fmt: skip
    assert not long, f"{name}: functions over {MAX_FUNCTION} lines: {long}"
    n = len(FILES[name].read_text().splitlines())
    doc = ast.get_docstring(tree) or ""
    why = any(line.startswith("Why one module:") for line in doc.splitlines())
    assert n <= MAX_MODULE or why, f"{name}: {n} lines and no 'Why one module:' line in its docstring"
