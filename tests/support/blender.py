"""Run Python code inside a fresh headless Blender (the bpy module) in a subprocess (tests/blender).

bpy can only be imported once per process and keeps global state, so each test gets its
own interpreter with HOME pointed at a temp dir (Blender's user config and extension
repos live there, never in the developer's real home).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

RESULT_MARKER = "@@LATENT_RESULT@@"

PRELUDE = textwrap.dedent(
    f"""
    import json, sys
    import bpy

    def emit(obj):
        print({RESULT_MARKER!r} + json.dumps(obj), flush=True)

    def install_extension(zip_path):
        bpy.ops.extensions.package_install_files(
            filepath=zip_path, repo="user_default", enable_on_install=True)
    """
)


def run_blender(script: str, home: Path, timeout: float = 600, env: dict | None = None) -> list:
    """Run `script` (after PRELUDE) in a new process; return the objects it emit()ted.

    Raises AssertionError with Blender's output when the process fails.
    """
    home.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, "HOME": str(home), "PYTHONUNBUFFERED": "1", **(env or {})}
    # Blender's own config dir follows HOME on Linux; keep XDG pointing there too.
    full_env["XDG_CONFIG_HOME"] = str(home / ".config")
    code = PRELUDE + "\n" + textwrap.dedent(script)
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=full_env, cwd=home
    )
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise AssertionError(f"blender script failed (exit {proc.returncode}):\n{output[-8000:]}")
    results = [json.loads(line[len(RESULT_MARKER):]) for line in proc.stdout.splitlines() if line.startswith(RESULT_MARKER)]
    return results


def merged(results: list[dict]) -> dict:
    """The dicts a Blender script reported, merged in order."""
    out = {}
    for r in results:
        out.update(r)
    return out
