"""Helpers shared by the training tests (small datasets in the public zip layout, micro
networks), plus checks of the helpers themselves."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gan_core.data.writer import write_images

# Networks far smaller than the "tiny" preset (16-32 channels) so that a few hundred training
# steps fit in a CPU test budget; the architecture is the full StyleGAN2 one.
MICRO_NETWORKS = {
    "G": {"z_dim": 32, "w_dim": 32, "synthesis_kwargs": {"channel_base": 512, "channel_max": 32}},
    "D": {"channel_base": 512, "channel_max": 32},
}


def write_dataset_zip(path: Path, images: list[np.ndarray], labels=None) -> Path:
    """StyleGAN2-ADA layout: 00000/img00000000.png ... plus dataset.json."""
    return write_images(path, images, labels)


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


def test_written_zip_is_read_by_zip_dataset(tmp_path):
    from gan_core.data import ZipDataset
    path = write_dataset_zip(tmp_path / "d.zip", [black_square_on_white(), colour_pattern()])
    ds = ZipDataset(path)
    assert len(ds) == 2 and ds.resolution == 32 and ds.num_channels == 3
    img, _ = ds[1]
    assert np.array_equal(img.permute(1, 2, 0).numpy(), colour_pattern())
    assert len(ZipDataset(path, xflip=True)) == 4
