"""Directions per model file and layer range, computed once and kept in memory.

SeFa needs only the generator's weights and takes milliseconds, so nothing is written to
disk: the key is the model file's (resolved path, mtime, size), as in the model cache, so a
snapshot rewritten in place is computed afresh. Every range is computed with its full
`rules.MAX_DIRECTIONS`; a request for k takes the first k, so an id ("coarse:3") names the
same vector whatever k was asked. A walk stores the vectors it uses, so a resumed walk
renders the same even when this cache is gone.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from server.generation.model_cache import ModelCache

DEFAULT_CAPACITY = 64  # (model, range) entries: 16 vectors of w_dim floats each


@dataclass(frozen=True)
class RangeDirections:
    """The directions of one range of one model, with the model's W+ shape."""

    num_ws: int
    w_dim: int
    directions: tuple  # gan_core.directions.Direction, strongest first


class DirectionCache:
    def __init__(self, capacity: int = DEFAULT_CAPACITY):
        self.capacity = capacity
        self._items: OrderedDict[tuple, RangeDirections] = OrderedDict()
        self._lock = threading.Lock()
        self.computed = 0  # how many times directions were actually computed (tests)

    def get(self, path: str | Path, range_name: str, compute: Callable[[], RangeDirections]) -> RangeDirections:
        """The cached entry, or `compute()`'s result stored. `compute` runs outside the lock
        (it may wait for the render thread); two first requests may both compute, harmlessly."""
        key = (*ModelCache.key_for(path), range_name)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        entry = compute()
        with self._lock:
            self.computed += 1
            self._items[key] = entry
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return entry
