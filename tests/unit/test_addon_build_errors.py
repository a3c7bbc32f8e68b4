"""`addon build` without bpy names exactly what to install."""

import importlib.util

import pytest

from server import addon_build as addon


def test_missing_bpy_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(addon.AddonBuildError, match=r"pip install bpy==5\.0\.1"):
        addon.build_addon(tmp_path)


def test_not_a_checkout_is_a_clear_error(tmp_path):
    with pytest.raises(addon.AddonBuildError, match="cannot find addon/"):
        addon.find_project_root(tmp_path)
