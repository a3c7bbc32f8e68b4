"""The layers, enforced by reading every import statement (with `ast`, never importing).

Every `import` and `from ... import` counts, wherever it stands (top level, inside a
function, under `if TYPE_CHECKING:`), and relative imports are resolved to the absolute
module they name. Only the server's cycle check leaves out `if TYPE_CHECKING:` imports,
since those never run. A failure names the file, the line and the import.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOPS = ("gan_core", "server", "addon", "tests", "benchmarks")


@dataclass(frozen=True)
class Import:
    file: str  # repo-relative path of the importing file
    line: int
    statement: str  # as written (normalised by ast.unparse)
    target: str  # the absolute module it resolves to
    type_checking: bool  # under `if TYPE_CHECKING:`: never runs

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: `{self.statement}` (-> {self.target})"


def module_name(relative: Path) -> str:
    parts = relative.with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def python_files(top: str) -> list[Path]:
    return sorted(p for p in (REPO / top).rglob("*.py") if "__pycache__" not in p.parts)


def known_modules() -> set[str]:
    """Every module and package (namespace folders too) under the repository's top folders."""
    names = set()
    for top in TOPS:
        for path in python_files(top):
            name = module_name(path.relative_to(REPO))
            parts = name.split(".")
            names.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return names


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    guarded = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            for child in node.body:
                guarded.update(id(n) for n in ast.walk(child))
    return guarded


def imports_in(source: str, file: str, module: str, is_package: bool, known: set[str]) -> list[Import]:
    """Every import in `source` (the text of `module`), resolved to absolute module names.

    `from a.b import c` means the module a.b.c when that exists, else a.b (c is a name in it).
    """
    tree = ast.parse(source, filename=file)
    guarded = _type_checking_nodes(tree)
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".") if package else []
                parts = parts[: max(len(parts) - (node.level - 1), 0)]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        statement = " ".join(ast.unparse(node).split())
        for target in dict.fromkeys(targets):
            found.append(Import(file, node.lineno, statement, target, id(node) in guarded))
    return sorted(found, key=lambda i: (i.line, i.target))


KNOWN = known_modules()


def imports_under(top: str) -> list[Import]:
    found = []
    for path in python_files(top):
        relative = path.relative_to(REPO)
        found += imports_in(path.read_text(encoding="utf-8"), relative.as_posix(), module_name(relative),
                            path.name == "__init__.py", KNOWN)
    return found


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


# ----------------------------------------------------------------------------- layers

# (who, what it may not import, exceptions, why)
LAYERS = [
    ("gan_core", ("server", "addon", "flask", "waitress", "bpy"), (),
     "the library knows nothing of the server, the add-on or Blender"),
    ("gan_core.nn", ("gan_core",), ("gan_core.rules",),
     "the networks stand alone: from gan_core they may use only the rulebook"),
    ("gan_core.data", ("gan_core.nn", "gan_core.train"), (),
     "datasets are built and read without networks or training"),
    ("gan_core.rules", ("gan_core",), (),
     "the rulebook is a leaf: pure constants and checks"),
    ("addon", ("gan_core", "server"), (),
     "the add-on runs inside Blender and talks to the server over HTTP only"),
]


@pytest.mark.parametrize("who, forbidden, allowed, why", LAYERS, ids=[rule[0] for rule in LAYERS])
def test_layer_imports(who, forbidden, allowed, why):
    top = who.split(".")[0]
    offending = [
        imp for imp in imports_under(top)
        if within(module_name(Path(imp.file)), who)
        and any(within(imp.target, f) for f in forbidden)
        and not any(within(imp.target, a) for a in (who, *allowed))  # a layer may use its own modules
    ]
    rule = f"{who} may not import {', '.join(forbidden)}" + (f" (except {', '.join(allowed)})" if allowed else "")
    assert not offending, f"{rule}: {why}\n" + "\n".join(f"  {imp}" for imp in offending)


def test_request_checks_do_not_load_torch():
    """The modules the server and CLI use to check input load without torch (seconds to import)."""
    code = ("import sys, gan_core.rules, gan_core.latent, gan_core.train.config, gan_core.data; "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120, cwd=REPO)


# ----------------------------------------------------------------------------- server cycles


def find_cycles(edges: dict[str, dict[str, Import]]) -> list[list[str]]:
    """One cycle (as [a, b, ..., a]) per strongly connected group of modules (Tarjan)."""
    index, low, on_stack, stack, groups = {}, {}, set(), [], []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, {})):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(set(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return [_cycle_in(group, edges) for group in groups]


def _cycle_in(group: set[str], edges: dict[str, dict[str, Import]]) -> list[str]:
    """A shortest path from the group's first module back to itself, inside the group."""
    start = min(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt_frontier = []
        for node in frontier:
            for nxt in sorted(edges.get(node, {})):
                if nxt == start:
                    return paths[node] + [start]
                if nxt in group and nxt not in paths:
                    paths[nxt] = paths[node] + [nxt]
                    nxt_frontier.append(nxt)
        frontier = nxt_frontier
    raise AssertionError(f"no cycle through {start}")  # Tarjan guarantees one


def server_import_graph() -> dict[str, dict[str, Import]]:
    """module -> {imported server module -> the first import that does it}; runtime imports only."""
    edges: dict[str, dict[str, Import]] = defaultdict(dict)
    for imp in imports_under("server"):
        source = module_name(Path(imp.file))
        if imp.type_checking or not within(imp.target, "server") or imp.target == source:
            continue
        edges[source].setdefault(imp.target, imp)
    return edges


def test_no_import_cycles_among_server_modules():
    edges = server_import_graph()
    cycles = find_cycles(edges)
    lines = []
    for cycle in cycles:
        lines.append("  cycle: " + " -> ".join(cycle))
        lines += [f"    {edges[a][b]}" for a, b in zip(cycle, cycle[1:])]
    assert not cycles, "import cycles among server modules:\n" + "\n".join(lines)


# ----------------------------------------------------------------------------- tests


def is_test_module(name: str) -> bool:
    last = name.rpartition(".")[2]
    return last.startswith("test_") or last.endswith("_test")


TEST_FOLDERS = sorted({p.relative_to(REPO).parts[1] for p in python_files("tests") if len(p.relative_to(REPO).parts) > 2})


# ids name the folder with its path: a bare "gpu" or "blender" id would match the markers
# that tests/conftest.py skips on, and skip this check with them.
@pytest.mark.parametrize("folder", TEST_FOLDERS, ids=[f"tests/{f}" for f in TEST_FOLDERS])
def test_no_test_module_imports_another(folder):
    """Shared helpers live in tests/support (or a conftest), so each test file stands alone."""
    offending = [imp for imp in imports_under(f"tests/{folder}")
                 if within(imp.target, "tests") and is_test_module(imp.target)]
    assert not offending, (f"tests/{folder}: modules import test modules; move the shared helpers to tests/support:\n"
                           + "\n".join(f"  {imp}" for imp in offending))


# ----------------------------------------------------------------------------- the checker itself


def test_imports_are_resolved_wherever_they_stand():
    known = {"pkg", "pkg.sub", "pkg.sub.mod", "pkg.sub.other", "pkg.top"}
    source = (
        "import os\n"
        "from . import other\n"
        "from .other import name\n"
        "from .. import top\n"
        "from ..sub import mod as m\n"
        "from pkg.sub import mod, thing\n"
        "def f():\n"
        "    from pkg import top\n"
        "if TYPE_CHECKING:\n"
        "    import pkg.top\n"
    )
    found = imports_in(source, "pkg/sub/mod.py", "pkg.sub.mod", False, known)
    assert [(i.line, i.target, i.type_checking) for i in found] == [
        (1, "os", False), (2, "pkg.sub.other", False), (3, "pkg.sub.other", False), (4, "pkg.top", False),
        (5, "pkg.sub.mod", False), (6, "pkg.sub", False), (6, "pkg.sub.mod", False), (8, "pkg.top", False),
        (10, "pkg.top", True),
    ]
    # In a package's __init__, one dot is the package itself.
    [init] = imports_in("from .other import x\n", "pkg/sub/__init__.py", "pkg.sub", True, known)
    assert init.target == "pkg.sub.other" and init.statement == "from .other import x"


def test_cycle_finder_names_a_cycle_and_ignores_a_tree():
    def graph(pairs):
        edges = defaultdict(dict)
        for a, b in pairs:
            edges[a][b] = Import("f.py", 1, f"import {b}", b, False)
        return edges

    assert find_cycles(graph([("a", "b"), ("b", "c"), ("a", "c")])) == []
    assert find_cycles(graph([("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")])) == [["a", "b", "c", "a"]]
