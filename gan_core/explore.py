"""The latent-space explorer: an N x N grid of neighbours around a centre latent.

A neighbour is the centre z turned by an angle towards a random direction: `distance` is
that angle as a fraction of a right angle, so 0 is the centre itself and 1 is a latent as
unrelated to it as two random seeds are (two gaussian vectors of high dimension are almost
orthogonal). Turning keeps the length of z, so every neighbour stays on the shell that
gaussian z lives on (the mapping network normalises z's length away anyway; the direction
is what decides the image).

Layout: cells are numbered row by row; the centre latent sits in cell
`center_index(n)` = row (n-1)//2, column (n-1)//2 (the middle for odd n, the upper left of
the middle four for even n), exactly as given, so recentring on a picked cell shows that
cell's image again. The directions come from `RandomState(seed)`: the same centre, grid,
distance and seed give the same latents on every machine.

Each cell carries its z and its truncated w (`ModelRunner.map_z`), and the images are
synthesised from exactly those w: a client can reuse either and get the same image.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Callable, ContextManager

import numpy as np

from gan_core import rules
from gan_core.latent import seed_to_z


class ExploreError(ValueError):
    """An explore request that cannot be served as asked; the message says why."""


def _ruled(check, value, name):
    try:
        return check(value, name)
    except rules.RuleError as exc:
        raise ExploreError(str(exc)) from None


def center_index(grid: int) -> int:
    """The cell that holds the centre latent (row-major index)."""
    middle = (grid - 1) // 2
    return middle * grid + middle


def center_z(z_dim: int, seed=None, z=None) -> np.ndarray:
    """The centre as float32 [z_dim], from a seed (the reference's convention) or a z vector."""
    if (seed is None) == (z is None):
        raise ExploreError("center needs either a seed or a z vector")
    if seed is not None:
        try:
            return seed_to_z(seed, z_dim)
        except ValueError as exc:
            raise ExploreError(f"center.seed: {exc}") from None
    try:
        vector = np.asarray(z, dtype=np.float64)
    except (TypeError, ValueError):
        raise ExploreError("center.z must be a list of numbers") from None
    if vector.ndim != 1 or vector.shape[0] != z_dim:
        raise ExploreError(f"center.z must have {z_dim} numbers for this model, got shape {list(vector.shape)}")
    with np.errstate(over="ignore"):
        vector = vector.astype(np.float32)
    if not np.all(np.isfinite(vector)):
        raise ExploreError("center.z contains numbers too large for a latent (or NaN)")
    if not np.any(vector):
        raise ExploreError("center.z is all zeros: a latent needs a direction")
    return vector


def neighbour_latents(center, grid: int, distance: float, seed: int) -> np.ndarray:
    """float32 [grid * grid, z_dim]: the centre in `center_index(grid)`, around it the
    centre turned by `distance` * 90 degrees towards seeded random directions."""
    grid = _ruled(rules.check_explore_grid, grid, "grid")
    distance = _ruled(rules.check_explore_distance, distance, "distance")
    seed = _ruled(lambda v, n: rules.check_int(v, n, 0, rules.MAX_SEED), seed, "seed")
    c32 = np.asarray(center, dtype=np.float32)
    if c32.ndim != 1 or c32.shape[0] < 2 or not np.all(np.isfinite(c32)) or not np.any(c32):
        raise ExploreError("the centre must be a finite, non-zero vector of at least 2 numbers")
    c = c32.astype(np.float64)
    length = float(np.linalg.norm(c))
    unit = c / length
    raw = np.random.RandomState(seed).randn(grid * grid, c.shape[0])
    # Directions at right angles to the centre: turning towards them leaves its length alone.
    across = raw - np.outer(raw @ unit, unit)
    norms = np.linalg.norm(across, axis=1, keepdims=True)
    across = across / np.maximum(norms, 1e-12)
    angle = distance * math.pi / 2
    out = (math.cos(angle) * c + math.sin(angle) * length * across).astype(np.float32)
    out[center_index(grid)] = c32  # exactly the centre: a picked cell regenerates itself
    return out


# The matrix and convolution libraries choose their kernels (and how they split the work
# over threads) by shape, so the last bits of a cell's pixels can depend on how many others
# share its batch. On the CPU every cell is therefore mapped and synthesised on its own (one
# shape, one path: a picked cell is bit for bit the same in the middle of the next grid;
# batching gains the CPU little at the sizes explored). Elsewhere (CUDA) the synthesis is
# batched, at least MIN_BATCH at a time, and exactness there is not yet measured.
MIN_BATCH = 4


def _batches(n: int, batch_size: int) -> list[tuple[int, int]]:
    """[start, stop) of each batch: as few as `batch_size` allows, sizes within one of each
    other (9 cells in batches of 8: 4 + 5, not 8 + 1, so nothing needs padding)."""
    count = -(-n // max(batch_size, MIN_BATCH))
    edges = [i * n // count for i in range(count + 1)]
    return list(zip(edges[:-1], edges[1:]))


@dataclass
class ExploreGrid:
    """One explored neighbourhood: latents and images of every cell, row by row."""

    grid: int
    z: np.ndarray        # float32 [grid*grid, z_dim]
    w: np.ndarray        # float32 [grid*grid, w_dim], truncated with the request's psi
    images: np.ndarray   # uint8 [grid*grid, H, W, 3]

    @property
    def center_index(self) -> int:
        return center_index(self.grid)

    def grid_image(self) -> np.ndarray:
        """All cells in one uint8 image, `grid` columns."""
        from gan_core.generate import image_grid

        return image_grid(self.images, self.grid)

    def cells(self) -> list[dict]:
        """[{index, row, col, z, w}] with plain float lists (float32 values, exact in JSON)."""
        return [{"index": i, "row": i // self.grid, "col": i % self.grid,
                 "z": self.z[i].tolist(), "w": self.w[i].tolist()} for i in range(len(self.z))]


def explore(runner, *, seed=None, z=None, grid: int = rules.EXPLORE_DEFAULT_GRID,
            distance: float = rules.EXPLORE_DEFAULT_DISTANCE, neighbourhood_seed: int = 0, psi: float = 1.0,
            noise_mode: str = "const", batch_size: int = 16, seamless: bool | None = None, size_multiplier: int = 1,
            hold: Callable[[], ContextManager] = contextlib.nullcontext) -> ExploreGrid:
    """Render the neighbourhood of a centre (`seed` or `z`) through `runner` (a ModelRunner).

    Every argument is checked before any work. Mapping runs per cell, then synthesis: per
    cell on the CPU, elsewhere in batches of at most `batch_size` (and at least MIN_BATCH);
    `hold()` is entered around each of those steps (the server passes its device lock, so nobody waits
    longer than a batch)."""
    from gan_core.generate import validate_noise_mode, validate_psi

    psi, noise_mode = validate_psi(psi), validate_noise_mode(noise_mode)
    grid = _ruled(rules.check_explore_grid, grid, "grid")
    runner.texture_mode(seamless, size_multiplier)  # refuses a bad combination before rendering
    batch_size = _ruled(lambda v, n: rules.check_int(v, n, 1, rules.MAX_GENERATE_BATCH), batch_size, "batch size")
    zs = neighbour_latents(center_z(runner.z_dim, seed=seed, z=z), grid, distance, neighbourhood_seed)
    with hold():  # one z at a time: a cell's w never depends on its neighbours (cheap: an MLP)
        ws = np.concatenate([runner.map_z(zs[i:i + 1], psi=psi) for i in range(len(zs))])
    one_by_one = getattr(getattr(runner, "device", None), "type", "cpu") == "cpu"
    parts = []
    for start, stop in ([(i, i + 1) for i in range(len(ws))] if one_by_one else _batches(len(ws), batch_size)):
        chunk = ws[start:stop]
        padded = np.concatenate([chunk, np.repeat(chunk[-1:], MIN_BATCH - len(chunk), axis=0)]) \
            if len(chunk) < MIN_BATCH and not one_by_one else chunk
        with hold():
            images = runner.synthesize_ws(padded, noise_mode=noise_mode, batch_size=len(padded),
                                          seamless=seamless, size_multiplier=size_multiplier)
        parts.append(images[:len(chunk)])
    return ExploreGrid(grid=grid, z=zs, w=ws[:, 0].copy(), images=np.concatenate(parts))
