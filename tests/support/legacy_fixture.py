"""The StyleGAN2-ADA pickle fixtures shared by the legacy-import and model-library tests:
the reference snapshot in tests/data/sg2ada_tiny32 and `pickles`, the synthetic-pickle
writer tests/data/make_test_pickles.py."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_WRITER_PATH = Path(__file__).resolve().parents[1] / "data" / "make_test_pickles.py"
_MODULE_NAME = "latent_studio_make_test_pickles"


def _load_writer():
    # Loaded by path: tests/data holds data, it is not a package. Registered in sys.modules
    # once, so every test module shares the same classes.
    if _MODULE_NAME not in sys.modules:
        spec = importlib.util.spec_from_file_location(_MODULE_NAME, _WRITER_PATH)
        module = importlib.util.module_from_spec(spec)
        sys.modules[_MODULE_NAME] = module
        spec.loader.exec_module(module)
    return sys.modules[_MODULE_NAME]


pickles = _load_writer()
FIXTURE = pickles.FIXTURE
PKL = FIXTURE / "network-snapshot.pkl"
