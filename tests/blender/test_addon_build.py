"""Build the extension with Blender's own tool, validate it, install it into headless Blender."""

import subprocess
import sys
import zipfile

import pytest

from tests.support.blender import run_blender

pytestmark = pytest.mark.blender


def test_build_produces_a_valid_zip(addon_zip):
    names = zipfile.ZipFile(addon_zip).namelist()
    assert "blender_manifest.toml" in names and "__init__.py" in names
    assert not any("__pycache__" in n for n in names)


def test_cli_build_prints_zip_path(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "server.cli", "addon", "build", "-o", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith(".zip")


def test_install_register_unregister_register(addon_zip, tmp_path):
    results = run_blender(
        f"""
        import addon_utils
        install_extension({str(addon_zip)!r})
        name = "bl_ext.user_default.latent_studio"
        enabled = lambda: name in {{a.module for a in bpy.context.preferences.addons}}
        emit({{"after_install": enabled()}})
        prefs = bpy.context.preferences.addons[name].preferences
        emit({{"server_url": prefs.server_url}})
        addon_utils.disable(name, default_set=True)
        emit({{"after_disable": enabled()}})
        addon_utils.enable(name, default_set=True)
        emit({{"after_reenable": enabled()}})
        """,
        home=tmp_path / "home",
    )
    merged = {k: v for r in results for k, v in r.items()}
    assert merged == {
        "after_install": True,
        "server_url": "http://127.0.0.1:7860",
        "after_disable": False,
        "after_reenable": True,
    }
