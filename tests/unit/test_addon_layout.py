"""The add-on's import rules: a bpy-free core, relative imports only, never gan_core or server."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ADDON = ROOT / "addon"
# What Blender gives an extension besides the standard library (requests ships with Blender).
BLENDER_MODULES = {"bpy", "bpy_extras", "mathutils", "addon_utils", "requests", "urllib3"}


def _absolute_imports(path):
    """Top-level names of the absolute imports in one file."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_addon_imports_only_blender_stdlib_and_itself():
    allowed = BLENDER_MODULES | set(sys.stdlib_module_names) | {"__future__"}
    bad = {str(p.relative_to(ROOT)): sorted(_absolute_imports(p) - allowed) for p in ADDON.rglob("*.py")}
    assert {k: v for k, v in bad.items() if v} == {}, "the add-on's own modules must be imported relatively"


def test_core_imports_no_blender_module():
    blender_only = {"bpy", "bpy_extras", "mathutils", "addon_utils"}
    found = {str(p.relative_to(ROOT)): sorted(_absolute_imports(p) & blender_only) for p in (ADDON / "core").rglob("*.py")}
    assert {k: v for k, v in found.items() if v} == {}


def test_core_imports_in_plain_python():
    """Importing the package and every core module loads no bpy (and never the server side)."""
    modules = sorted(p.stem for p in (ADDON / "core").glob("*.py") if p.stem != "__init__")
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module('addon.core.' + name)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('bpy', 'mathutils', 'gan_core', 'server')))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
    assert len(modules) >= 8
