"""Helpers for the projection tests: a tiny checkpoint that holds a discriminator, images as
the API takes them (base64 PNG), and waiting for a projection to finish (in-process API)."""

from __future__ import annotations

import base64
import io

import numpy as np

from tests.support.inprocess import wait_settled


def write_tiny_model_with_d(path, seed: int = 0):
    """A real checkpoint of an untrained 32x32 tiny G (as G_ema) and D: what projection with
    the D-feature loss needs (training snapshots hold both); returns `path`."""
    import torch

    from gan_core.models.checkpoint import save_network
    from gan_core.nn.networks import build_discriminator, build_generator, preset_kwargs

    torch.manual_seed(seed)
    kwargs = preset_kwargs(32, "tiny")
    G, D = build_generator(kwargs["G"]).eval(), build_discriminator(kwargs["D"]).eval()
    save_network(path, G, D=D, meta={"name": "tiny with D"})
    return path


def png_bytes(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def png_base64(image: np.ndarray) -> str:
    return base64.b64encode(png_bytes(image)).decode("ascii")


def decode_png(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def wait_projection(api, projection_id: int, timeout: float = 180) -> dict:
    """Poll GET /projections/<id> (Flask test client `api`) until it is done or failed."""
    return wait_settled(api, f"projections/{projection_id}", ("done", "failed"), timeout)
