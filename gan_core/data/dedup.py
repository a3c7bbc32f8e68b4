"""Find exact and near duplicates among accepted images, in a streaming way: the image
hashes (`pixel_digest`, `dhash`, `colour_signature`) and the index that compares them.

Exact duplicates share the SHA-256 of their decoded RGB pixels (+ size), so the same picture
saved as PNG and as BMP counts as one; differently compressed JPEGs are left to the near check.

Near duplicates compare 64-bit dHashes by Hamming distance. To avoid comparing every pair,
the hash is cut into (threshold + 1) bands: two hashes within `threshold` bits must agree
exactly on at least one band (pigeonhole), so only images sharing a band are compared.

A dHash is 8x8 and grey, so a small subject that moved or changed colour (an orbit render
a few degrees on, a disc elsewhere) can hash the same. A dHash match is therefore only a
candidate: it is confirmed when the 16x16 colour signatures (`colour_signature`) also
agree cell by cell. Signatures cost 768 bytes per accepted image (19 MB at 25,000).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict

import numpy as np
from PIL import Image

DEFAULT_NEAR_DISTANCE = 4  # of 64 bits: resaved/recompressed/slightly shifted copies
# Largest per-cell colour difference (0..255) still called "the same picture". A cell averages
# (res/16)^2 pixels, so re-encoding noise stays within a few levels, while any visible change
# to a region the size of a cell moves that cell's average by more than this.
NEAR_MAX_CELL_DIFF = 8


def pixel_digest(im: Image.Image) -> str:
    """SHA-256 of the decoded pixels and the size: equal for the same picture in any format."""
    return hashlib.sha256(f"{im.width}x{im.height}:".encode() + im.tobytes()).hexdigest()


def dhash(arr: np.ndarray) -> int:
    """64-bit difference hash: is each of 8x8 cells brighter than its right neighbour."""
    grey = Image.fromarray(arr).convert("L").resize((9, 8), Image.BILINEAR)
    g = np.asarray(grey, dtype=np.int16)
    bits = (g[:, 1:] > g[:, :-1]).flatten()
    return int("".join("1" if b else "0" for b in bits), 2)


def colour_signature(arr: np.ndarray) -> np.ndarray:
    """16x16 RGB cell averages: confirms a dHash match with colour and place."""
    return np.asarray(Image.fromarray(arr).resize((16, 16), Image.BOX), dtype=np.uint8)


class DuplicateIndex:
    """Every accepted image's pixel digest, and its dHash (`hash64`) in bands for near matches."""

    def __init__(self, near_distance: int | None = DEFAULT_NEAR_DISTANCE) -> None:
        self._exact: dict[str, str] = {}
        self._near = near_distance if near_distance is not None and near_distance >= 0 else None
        self._hashes: list[tuple[int, str, np.ndarray | None]] = []
        if self._near is not None:
            n = self._near + 1
            edges = [round(i * 64 / n) for i in range(n + 1)]
            self._bands = [(edges[i], edges[i + 1] - edges[i]) for i in range(n)]
            self._buckets: list[dict[int, list[int]]] = [defaultdict(list) for _ in self._bands]

    def _band_values(self, h: int):
        for shift, width in self._bands:
            yield (h >> shift) & ((1 << width) - 1)

    def check(self, pixel_sha256: str, hash64: int, signature: np.ndarray | None = None) -> tuple[str, str] | None:
        """(code, reason) when this image duplicates one already accepted, else None.

        Without signatures (either side None) the dHash distance alone decides."""
        first = self._exact.get(pixel_sha256)
        if first is not None:
            return "duplicate", f"exact duplicate of {first} (same decoded pixels)"
        if self._near is None:
            return None
        seen: set[int] = set()
        best: tuple[int, str] | None = None
        for bucket, value in zip(self._buckets, self._band_values(hash64)):
            for idx in bucket.get(value, ()):
                if idx in seen:
                    continue
                seen.add(idx)
                other, name, other_signature = self._hashes[idx]
                dist = (other ^ hash64).bit_count()
                if dist > self._near or not _same_colours(signature, other_signature):
                    continue
                if best is None or dist < best[0]:
                    best = (dist, name)
        if best is not None:
            return "near_duplicate", f"near duplicate of {best[1]} (dHash distance {best[0]} <= {self._near})"
        return None

    def add(self, pixel_sha256: str, hash64: int, name: str, signature: np.ndarray | None = None) -> None:
        self._exact.setdefault(pixel_sha256, name)
        if self._near is None:
            return
        idx = len(self._hashes)
        self._hashes.append((hash64, name, signature))
        for bucket, value in zip(self._buckets, self._band_values(hash64)):
            bucket[value].append(idx)


def _same_colours(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return True
    return int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max()) <= NEAR_MAX_CELL_DIFF
