"""Small training inputs shared by the training tests: micro networks, a quick run's config
and synthetic images. Dataset zips are written with gan_core.data.writer.write_images."""

from __future__ import annotations

import numpy as np

from gan_core.train.loop import TrainingConfig

# Networks far smaller than the "tiny" preset (16-32 channels) so that a few hundred training
# steps fit in a CPU test budget; the architecture is the full StyleGAN2 one.
MICRO_NETWORKS = {
    "G": {"z_dim": 32, "w_dim": 32, "synthesis_kwargs": {"channel_base": 512, "channel_max": 32}},
    "D": {"channel_base": 512, "channel_max": 32},
}

# 8x8 networks with 16 channels: a training step takes milliseconds, so runs with them check
# the machinery (not learning; see test_training_learns.py for that).
MICRO8_NETWORKS = {
    "G": {"z_dim": 8, "w_dim": 8, "synthesis_kwargs": {"channel_base": 128, "channel_max": 16}},
    "D": {"channel_base": 128, "channel_max": 16},
}


def micro8_config(data, run_dir, **changes) -> TrainingConfig:
    """A 4-step CPU run of the 8x8 micro networks with ADA, snapshots every 2 steps."""
    options = dict(data=str(data), run_dir=str(run_dir), steps=4, snapshot_every=2, batch=4, preset="tiny",
                   network_kwargs=MICRO8_NETWORKS, aug="ada", ada_kimg=0.05, report_every=1, grid_size=(2, 2),
                   device="cpu")
    options.update(changes)
    return TrainingConfig(**options)


def black_square_on_white(res: int = 32) -> np.ndarray:
    img = np.full([res, res, 3], 255, np.uint8)
    img[res // 4: 3 * res // 4, res // 4: 3 * res // 4] = 0
    return img


def colour_pattern(res: int = 32) -> np.ndarray:
    """Four coloured quadrants: tests colour and layout at once."""
    img = np.zeros([res, res, 3], np.uint8)
    h = res // 2
    img[:h, :h] = (220, 40, 40)
    img[:h, h:] = (40, 200, 60)
    img[h:, :h] = (50, 60, 220)
    img[h:, h:] = (240, 220, 50)
    return img


def random_discs(n: int, res: int = 32, seed: int = 0) -> list[np.ndarray]:
    """One disc of random position and colour on a light grey background per image."""
    rng = np.random.RandomState(seed)
    yy, xx = np.mgrid[0:res, 0:res]
    out = []
    for _ in range(n):
        img = np.full([res, res, 3], 200, np.uint8)
        cy, cx = rng.uniform(res * 0.25, res * 0.75, size=2)
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < (res * 0.2) ** 2] = rng.randint(0, 256, size=3)
        out.append(img)
    return out


def noise_images(n: int, res: int = 32, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.RandomState(seed)
    return [rng.randint(0, 256, size=(res, res, 3)).astype(np.uint8) for _ in range(n)]
