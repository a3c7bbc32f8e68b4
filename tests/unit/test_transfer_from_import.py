"""Transfer learning from an imported StyleGAN2-ADA pickle, end to end on CPU.

The fixture pickle is imported into our format, a short run starts from it, and the run's
step-0 sample grid must be exactly what the imported network draws for the grid's latents:
proof that training really starts from the imported weights (not a fresh init).
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from gan_core.data.writer import write_images
from gan_core.generate import ModelRunner, image_grid
from gan_core.models.checkpoint import load_network
from gan_core.models.pickle_import import import_pickle
from gan_core.train.loop import TrainingConfig, train
from tests.support.legacy_fixture import PKL

SEED, GRID = 5, (2, 2)


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Every test here runs on one torch thread (see tests/unit/conftest.py)."""


def test_short_run_from_imported_pickle_starts_from_its_weights(tmp_path):
    base = import_pickle(PKL, tmp_path / "models", name="tiny-ref")
    rng = np.random.default_rng(0)
    data = write_images(tmp_path / "data.zip", [rng.integers(0, 255, (32, 32, 3), dtype=np.uint8) for _ in range(8)])

    run_dir = tmp_path / "run"
    summary = train(TrainingConfig(data=str(data), run_dir=str(run_dir), base=str(base), steps=2, snapshot_every=1,
                                   batch=4, aug="off", seed=SEED, grid_size=GRID, device="cpu"))
    assert summary["step"] == 2

    # The grid's latents follow the reference seed convention: RandomState(seed).randn(n, z_dim).
    z = np.random.RandomState(SEED).randn(GRID[0] * GRID[1], 64).astype(np.float32)
    expected = image_grid(ModelRunner(base, device="cpu").generate(z=z, psi=1.0, noise_mode="const"), GRID[0])
    grid0 = np.asarray(Image.open(run_dir / "snapshots" / "grid-000000.png").convert("RGB"))
    assert grid0.shape == expected.shape
    assert np.abs(grid0.astype(int) - expected.astype(int)).max() <= 1  # uint8 rounding only

    # Training then moves away from the base: the step-2 grid differs.
    grid2 = np.asarray(Image.open(run_dir / "snapshots" / "grid-000002.png").convert("RGB"))
    assert np.abs(grid2.astype(int) - expected.astype(int)).max() > 1

    # And the step-0 network is the imported G_ema tensor for tensor.
    imported = load_network(base, parts=("G_ema",))["G_ema"].state_dict()
    step0 = load_network(run_dir / "snapshots" / "network-000000.safetensors", parts=("G_ema",))["G_ema"].state_dict()
    assert all(np.array_equal(imported[k].numpy(), step0[k].numpy()) for k in imported)
