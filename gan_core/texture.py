"""Measures for tileable textures: how visible the wrap-around seam is, and whether an
enlarged texture is just one block repeated.

Both are ratios to the image's own neighbour-to-neighbour differences, so they do not
depend on contrast: a seamless image's edges differ no more than any two neighbouring
columns (seam score about 1), a plain image's opposite edges are unrelated pixels (well
above 1). Numpy only; images are uint8 or float, numpy [N, H, W, C] (the library's edge
format; one [H, W, C] image is allowed) or a torch tensor [N, C, H, W].
"""

from __future__ import annotations

import numpy as np


class TextureMeasureError(ValueError):
    """Images the measures cannot read (wrong shape, too small)."""


def _as_nhwc(images) -> np.ndarray:
    if hasattr(images, "detach"):  # a torch tensor [N, C, H, W] (no torch import needed)
        images = images.detach().float().cpu().numpy()
        if images.ndim != 4:
            raise TextureMeasureError(f"a tensor of images must be [N, C, H, W], got {list(images.shape)}")
        images = images.transpose(0, 2, 3, 1)
    x = np.asarray(images, dtype=np.float64)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[0] == 0:
        raise TextureMeasureError(f"images must be [N, H, W, C] (or [H, W, C]), got {list(x.shape)}")
    if x.shape[1] < 3 or x.shape[2] < 3:
        raise TextureMeasureError(f"images must be at least 3x3 to have interior neighbours, got {list(x.shape)}")
    return x


def _ratio(num: float, den: float) -> float:
    if den == 0:
        return 1.0 if num == 0 else float("inf")
    return float(num / den)


def interior_difference(images) -> float:
    """Mean absolute difference between neighbouring columns and rows inside the images."""
    x = _as_nhwc(images)
    cols = np.abs(x[:, :, 1:] - x[:, :, :-1])
    rows = np.abs(x[:, 1:] - x[:, :-1])
    return float((cols.sum() + rows.sum()) / (cols.size + rows.size))


def _grid_difference(x: np.ndarray, grid: int) -> float:
    """Mean neighbour difference across the interior lines every `grid` px (x = grid, 2 grid...)."""
    h, w = x.shape[1:3]
    if isinstance(grid, bool) or not isinstance(grid, (int, np.integer)) or grid < 1 \
            or h % grid or w % grid or min(h, w) // grid < 2:
        raise TextureMeasureError(f"grid must divide the image side into at least 2 parts, got {grid!r} "
                                  f"for {h}x{w} images")
    cols = np.abs(x[:, :, grid:w:grid] - x[:, :, grid - 1:w - 1:grid])
    rows = np.abs(x[:, grid:h:grid] - x[:, grid - 1:h - 1:grid])
    return float((cols.sum() + rows.sum()) / (cols.size + rows.size))


def seam_score(images, grid: int | None = None) -> float:
    """Mean |last column - first column| and |last row - first row| over the batch, divided
    by the mean difference between interior neighbouring columns and rows. About 1 (<= 1.1)
    for a seamless texture; a plain image, whose opposite edges are unrelated, scores well
    above 1. A flat image scores 1.

    `grid`: divide instead by the difference across the interior lines every `grid` px only.
    A StyleGAN2 image is built up from a 4x4 input, so the lines at multiples of side / 4
    (where the wrap-around edge also lies) can be rougher than the average pair of
    neighbours (faint grid lines, strongest in small or barely trained networks); with
    grid=side // 4 the score asks whether the seam is rougher than those lines."""
    x = _as_nhwc(images)
    cols = np.abs(x[:, :, -1] - x[:, :, 0])
    rows = np.abs(x[:, -1] - x[:, 0])
    seam = (cols.sum() + rows.sum()) / (cols.size + rows.size)
    return _ratio(seam, interior_difference(x) if grid is None else _grid_difference(x, grid))


def repetition_score(images, period: int) -> float:
    """Mean |image - image circularly shifted by `period` px| (along x and along y), divided
    by the interior neighbour difference. 0 for an exact tiling of a period x period block;
    around 1 or more when pixels one period apart are as unrelated as neighbours or more.
    Used to check that an enlarged texture (size multiplier) is not one block repeated."""
    x = _as_nhwc(images)
    h, w = x.shape[1:3]
    if isinstance(period, bool) or not isinstance(period, (int, np.integer)) or not 0 < period < min(h, w):
        raise TextureMeasureError(f"period must be a whole number of pixels from 1 to {min(h, w) - 1}, got {period!r}")
    dx = np.abs(x - np.roll(x, period, axis=2))
    dy = np.abs(x - np.roll(x, period, axis=1))
    return _ratio((dx.mean() + dy.mean()) / 2, interior_difference(x))
