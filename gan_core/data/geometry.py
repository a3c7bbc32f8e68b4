"""Geometry of dataset images: whether a source is big enough, the crop box, resizing to the
output square and the inflation variants. (Duplicate hashes live in dedup, the blank-render
check in worker.)"""

from __future__ import annotations

import random

import numpy as np
from PIL import Image

from gan_core.data.errors import RejectedImage

ZOOM_FACTOR = 1.25  # the 'zoom' variant shows the central 1/1.25 of the crop: mild, still on-subject
# Pillow first shrinks by an integer factor (fast) down to 3x the target, then Lanczos from there.
REDUCING_GAP = 3.0

Box = tuple[float, float, float, float]


def check_big_enough(width: int, height: int, resolution: int, crop: str, allow_upscale: bool) -> None:
    """A crop fills the square from the short side; 'none' only needs the long side."""
    if allow_upscale:
        return
    needed = max(width, height) if crop == "none" else min(width, height)
    if needed < resolution:
        raise RejectedImage("too_small", f"too small ({width}x{height} < {resolution})")


def crop_box(width: int, height: int, crop: str, rng_key: str | None = None) -> Box:
    """The source region that becomes the output square (before any 'zoom' variant)."""
    if crop in ("none", "stretch"):
        return (0.0, 0.0, float(width), float(height))
    side = min(width, height)
    if crop == "center":
        x0, y0 = (width - side) / 2, (height - side) / 2
    elif crop == "random":
        # String seeds hash with SHA-512 in `random`, so the choice is the same in every
        # process and every run for the same (seed, file).
        rng = random.Random(rng_key)
        x0, y0 = float(rng.randint(0, width - side)), float(rng.randint(0, height - side))
    else:
        raise ValueError(f"unknown crop mode {crop!r}")
    return (x0, y0, x0 + side, y0 + side)


def zoom_box(box: Box, factor: float = ZOOM_FACTOR) -> Box:
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    hw, hh = (x1 - x0) / (2 * factor), (y1 - y0) / (2 * factor)
    return (cx - hw, cy - hh, cx + hw, cy + hh)


def render_square(
    im: Image.Image, box: Box, resolution: int, crop: str, background: tuple[int, int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Resize `box` of `im` to the output square. Returns (square, content): `content` is the
    image part without padding, for statistics that padding would distort."""
    if crop != "none":
        out = np.asarray(im.resize((resolution, resolution), Image.LANCZOS, box=box, reducing_gap=REDUCING_GAP))
        return out, out
    bw, bh = box[2] - box[0], box[3] - box[1]
    scale = resolution / max(bw, bh)
    tw, th = max(1, min(resolution, round(bw * scale))), max(1, min(resolution, round(bh * scale)))
    fitted = im.resize((tw, th), Image.LANCZOS, box=box, reducing_gap=REDUCING_GAP)
    canvas = Image.new("RGB", (resolution, resolution), background)
    canvas.paste(fitted, ((resolution - tw) // 2, (resolution - th) // 2))
    return np.asarray(canvas), np.asarray(fitted)


def apply_variant(arr: np.ndarray, name: str) -> np.ndarray:
    """The array-only inflations (zoom needs the source image, see worker)."""
    if name == "flip_h":
        return arr[:, ::-1]
    if name == "flip_v":
        return arr[::-1]
    if name == "rot90":
        return np.rot90(arr, 1)  # counter-clockwise, as numpy defines it
    if name == "rot180":
        return np.rot90(arr, 2)
    if name == "rot270":
        return np.rot90(arr, 3)
    raise ValueError(f"unknown inflation {name!r}")
