"""Shared inputs of the seamless-texture tests: the reference network as a Generator, and
periodic (exactly tileable) synthetic textures."""

from __future__ import annotations

import json

import numpy as np

from tests.support.reference_fixture import load_arrays, load_state


def reference_generator():
    """The fixture's trained 32 px generator (tests/data/sg2ada_tiny32): real weights whose
    noise strengths are not zero, in eval mode."""
    from gan_core.nn.networks import build_generator

    config = json.loads(str(load_arrays("expected.npz")["config"]))
    G = build_generator(dict(config["G_kwargs"], c_dim=0, img_resolution=32, img_channels=3))
    G.load_state_dict(load_state("G_ema_state.npz"))
    return G.eval()


def periodic_textures(n: int, res: int = 16, max_freq: int = 3, seed: int = 0) -> list[np.ndarray]:
    """Two-colour band-limited random fields built from whole-period Fourier modes, so every
    image tiles exactly (their own seam score is about 1)."""
    rng = np.random.RandomState(seed)
    freq = np.fft.fftfreq(res) * res
    fy, fx = np.meshgrid(freq, freq, indexing="ij")
    band = (np.abs(fx) <= max_freq) & (np.abs(fy) <= max_freq)
    out = []
    for _ in range(n):
        field = np.real(np.fft.ifft2((rng.randn(res, res) + 1j * rng.randn(res, res)) * band))
        t = np.clip(0.5 + 0.25 * (field - field.mean()) / (field.std() + 1e-8), 0, 1)[..., None]
        a, b = rng.uniform(40, 215, size=(2, 3))
        out.append((a * t + b * (1 - t)).astype(np.uint8))
    return out
