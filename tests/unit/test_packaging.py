"""Distribution metadata and the extension manifest stay consistent."""

import tomllib

from gan_core import __version__


def test_manifest_version_equals_package_version(repo_root):
    manifest = tomllib.loads((repo_root / "blender_manifest.toml").read_text())
    project = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]
    assert manifest["version"] == project["version"] == __version__


def test_manifest_fields(repo_root):
    manifest = tomllib.loads((repo_root / "blender_manifest.toml").read_text())
    assert manifest["id"] == "latent_studio"
    assert manifest["blender_version_min"] == "4.2.0"
    assert manifest["license"] == ["SPDX:GPL-3.0-or-later"]
    assert set(manifest["permissions"]) == {"network", "files"}
    assert all(isinstance(v, str) and v for v in manifest["permissions"].values())

