"""The reference network's arrays in tests/data/sg2ada_tiny32: its state dicts and the
outputs it gave for fixed inputs (see that folder's README)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "sg2ada_tiny32"


def load_arrays(name: str) -> dict[str, np.ndarray]:
    """An .npz of the fixture, read whole (the file is closed afterwards)."""
    with np.load(FIXTURE / name) as data:
        return {k: data[k] for k in data.files}


def load_state(name: str) -> dict[str, torch.Tensor]:
    """A reference state dict (G_ema_state.npz, D_state.npz) as tensors."""
    return {k: torch.from_numpy(v) for k, v in load_arrays(name).items()}
