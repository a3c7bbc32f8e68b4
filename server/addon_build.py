"""Package addon/ + blender_manifest.toml as an installable Blender extension zip.

Uses Blender's own extension tool (shipped inside the `bpy` module) to build and then
validate the zip, so what we ship is exactly what Blender's extension platform accepts.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BPY_HINT = "Blender's extension tool comes with the bpy module: pip install bpy==5.0.1 (Python 3.11), or pip install -e '.[dev]'"


class AddonBuildError(ValueError):
    pass


def find_project_root(start: Path | None = None) -> Path:
    """The checkout that holds addon/ and blender_manifest.toml (this package lives in it)."""
    here = (start or Path(__file__)).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "blender_manifest.toml").is_file() and (candidate / "addon").is_dir():
            return candidate
    raise AddonBuildError(
        "cannot find addon/ and blender_manifest.toml: run from a Latent Studio source checkout or pass --source"
    )


def blender_ext_tool() -> Path:
    """Path of Blender's blender_ext.py inside the installed bpy module (found without importing bpy)."""
    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        raise AddonBuildError(f"the bpy module is not installed. {BPY_HINT}")
    bpy_dir = Path(next(iter(spec.submodule_search_locations)))
    tools = sorted(bpy_dir.glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    if not tools:
        raise AddonBuildError(f"bpy is installed at {bpy_dir} but has no blender_ext.py. {BPY_HINT}")
    return tools[-1]


def _run_tool(tool: Path, *args: str) -> str:
    proc = subprocess.run([sys.executable, str(tool), *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise AddonBuildError(f"blender_ext {args[0]} failed:\n{proc.stdout}{proc.stderr}".strip())
    return proc.stdout


def stage_addon(root: Path, stage: Path) -> Path:
    """Copy the add-on package and the manifest into one folder, as Blender expects."""
    shutil.copytree(root / "addon", stage, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*"))
    shutil.copy2(root / "blender_manifest.toml", stage / "blender_manifest.toml")
    return stage


def build_addon(output_dir: Path, source: Path | None = None) -> Path:
    root = find_project_root(source)
    tool = blender_ext_tool()
    output_dir = Path(output_dir).resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="latent-addon-") as tmp:
        stage = stage_addon(root, Path(tmp) / "latent_studio")
        _run_tool(tool, "validate", str(stage))
        before = set(output_dir.glob("*.zip"))
        _run_tool(tool, "build", "--source-dir", str(stage), "--output-dir", str(output_dir))
    built = sorted(set(output_dir.glob("*.zip")) - before) or sorted(output_dir.glob("latent_studio-*.zip"))
    if not built:
        raise AddonBuildError(f"blender_ext build reported success but wrote no zip into {output_dir}")
    zip_path = max(built, key=lambda p: p.stat().st_mtime)
    _run_tool(tool, "validate", str(zip_path))
    return zip_path
