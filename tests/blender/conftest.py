"""The extension zip, built once for all headless-Blender tests (Blender's own tool validates it)."""

import pytest

from server.addon_build import build_addon


@pytest.fixture(scope="session")
def addon_zip(tmp_path_factory):
    return build_addon(tmp_path_factory.mktemp("dist"))
