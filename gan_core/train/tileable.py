"""Tileable training: the generator runs in seamless mode (every padding wraps around) and
the discriminator sees randomly rolled views, so the wrap-around edge lands inside the
picture D judges and a visible seam costs the generator.

A wrapped generator's image is exactly periodic; rolling it by any offset gives the same
texture seen from elsewhere, so rolling loses nothing. Reals are rolled the same way, so D
cannot tell fakes from reals by whether a roll happened (a dataset of tileable textures
rolls without a seam; a photo that does not tile shows D its own seam)."""

from __future__ import annotations

import torch


def set_seamless(G, seamless: bool = True):
    """Make `G.synthesis(...)` (seamless=None) run in seamless mode: a runtime setting, not
    saved in the weights; the checkpoint's `tileable` flag records it instead."""
    G.synthesis.seamless = bool(seamless)
    return G


def random_roll(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each image [N, C, H, W] circularly shifted by its own random (dy, dx).

    Done with two gathers (rows, then columns), so it is differentiable (a permutation of
    pixels: R1's gradient flows back to the un-rolled image) and batch-sized, not a loop.
    """
    n, c, h, w = images.shape
    device = images.device
    dy = torch.randint(0, h, [n, 1], generator=generator, device="cpu" if generator is not None else device)
    dx = torch.randint(0, w, [n, 1], generator=generator, device=dy.device)
    dy, dx = dy.to(device), dx.to(device)
    rows = (torch.arange(h, device=device)[None] - dy) % h  # out[y] = in[y - dy]
    cols = (torch.arange(w, device=device)[None] - dx) % w
    images = images.gather(2, rows[:, None, :, None].expand(n, c, h, w))
    return images.gather(3, cols[:, None, None, :].expand(n, c, h, w))
