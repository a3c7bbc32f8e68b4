"""Layouts that do not repeat: the style field of an enlarged seamless texture.

With size_multiplier N the synthesis network's 4x4 const is tiled N x N. Given one latent
for the whole image, every training-resolution tile then gets the same input and the same
styles, and only the per-pixel noise tells them apart: the layout visibly repeats every
tile (noise varies fine detail only). So each tile gets its own latent for the layers that
decide layout, the coarse and middle blocks (up to 1/8 of the resolution, at least 8 px):
the image's latent plus a fixed random offset per tile, `strength` times a random w's
distance from the average w (offsets centred so they average to zero over the tiles). The
fine layers, which set colour and surface detail, keep the image's own latent everywhere,
so the texture keeps its look. The synthesis network blends the tile latents smoothly
(gan_core.nn.layers.periodic_resize), wrapping around, so the result is still seamless.

The offsets come from a fixed generator: the same image latent always gives the same
texture, and a walk (latents that change smoothly) gives smoothly changing frames.
"""

from __future__ import annotations

import numpy as np
import torch

LAYOUT_VARIATION = 0.5  # offset size, in random-w-to-average units: 0 = the tile repeats
LAYOUT_SEED = 0x7E47


def layout_entries(synthesis) -> int:
    """How many leading ws entries drive the layout: those of the blocks up to
    max(8, resolution / 8) px (4..32 px of a 256 px network)."""
    cutoff = max(8, synthesis.img_resolution // 8)
    return sum(getattr(synthesis, f"b{res}").num_conv for res in synthesis.block_resolutions if res <= cutoff)


@torch.no_grad()
def layout_offsets(G, size_multiplier: int, strength: float = LAYOUT_VARIATION) -> torch.Tensor:
    """[N, N, w_dim] fixed per-tile offsets in W (N = size_multiplier), zero on average."""
    n = size_multiplier * size_multiplier
    device = G.mapping.w_avg.device
    z = torch.from_numpy(np.random.RandomState(LAYOUT_SEED + size_multiplier).randn(n, G.z_dim).astype(np.float32))
    c = torch.zeros([n, G.c_dim], device=device)  # conditional models: the label-free embedding
    w = G.mapping(z.to(device), c)[:, 0].float()
    offsets = strength * (w - G.mapping.w_avg.float())
    offsets = offsets - offsets.mean(dim=0, keepdim=True)
    return offsets.reshape(size_multiplier, size_multiplier, -1)


def layout_field(G, ws: torch.Tensor, size_multiplier: int, offsets: torch.Tensor | None = None) -> torch.Tensor:
    """The style_field for G.synthesis(ws, seamless=True, size_multiplier=N, style_field=...):
    [B, N, N, L, w_dim], the image's layout latents plus each tile's offset."""
    if offsets is None:
        offsets = layout_offsets(G, size_multiplier)
    count = layout_entries(G.synthesis)
    return ws[:, None, None, :count, :] + offsets.to(ws)[None, :, :, None, :]
