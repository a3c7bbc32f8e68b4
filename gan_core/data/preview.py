"""A preview grid of dataset thumbnails, and a seeded reservoir that picks which ones."""

from __future__ import annotations

import math
import random

import numpy as np
from PIL import Image

MAX_THUMBNAILS = 64


class ThumbnailReservoir:
    """Keeps a uniform random sample of at most `capacity` thumbnails from a stream whose
    length is unknown in advance, so the preview shows the whole dataset, not its start."""

    def __init__(self, capacity: int = MAX_THUMBNAILS, seed: int = 0) -> None:
        self.capacity = capacity
        self._rng = random.Random(seed)
        self._seen = 0
        self._items: list[tuple[int, np.ndarray]] = []

    def offer(self, order: int, thumb: np.ndarray) -> None:
        self._seen += 1
        if len(self._items) < self.capacity:
            self._items.append((order, thumb))
            return
        slot = self._rng.randrange(self._seen)
        if slot < self.capacity:
            self._items[slot] = (order, thumb)

    def thumbnails(self) -> list[np.ndarray]:
        return [t for _, t in sorted(self._items, key=lambda it: it[0])]


def contact_sheet(thumbs: list[np.ndarray], gap: int = 2, background=(32, 32, 32)) -> Image.Image:
    """Lay equal-size HxWx3 thumbnails out in a near-square grid."""
    if not thumbs:
        raise ValueError("no thumbnails for a contact sheet")
    h, w = thumbs[0].shape[:2]
    cols = math.ceil(math.sqrt(len(thumbs)))
    rows = math.ceil(len(thumbs) / cols)
    sheet = Image.new("RGB", (cols * w + (cols + 1) * gap, rows * h + (rows + 1) * gap), background)
    for i, thumb in enumerate(thumbs):
        r, c = divmod(i, cols)
        sheet.paste(Image.fromarray(thumb), (gap + c * (w + gap), gap + r * (h + gap)))
    return sheet
