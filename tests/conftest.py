"""Shared pytest setup: markers that skip cleanly, paths to the repo and shared fixtures."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
TEST_DATA = REPO_ROOT / "tests" / "data"


def _has_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    has_bpy = importlib.util.find_spec("bpy") is not None
    has_cuda = _has_cuda()
    skip_bpy = pytest.mark.skip(reason="bpy (Blender as a module) is not installed: pip install bpy==5.0.1")
    skip_gpu = pytest.mark.skip(reason="no CUDA GPU on this machine")
    for item in items:
        if "blender" in item.keywords and not has_bpy:
            item.add_marker(skip_bpy)
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT
