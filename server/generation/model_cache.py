"""A small LRU of loaded generators, so repeated requests skip reading the checkpoint.

Keyed by (resolved path, mtime, size): a snapshot rewritten in place (same name) is a
different key and is loaded fresh; the stale entry ages out of the LRU.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path


DEFAULT_CAPACITY = 3  # generators kept loaded at once (each holds its weights in memory)


class ModelCache:
    def __init__(self, capacity: int = DEFAULT_CAPACITY, device: str = "auto", loader=None):
        if capacity < 1:
            raise ValueError("model cache capacity must be at least 1")
        self.capacity = capacity
        self.device = device
        self._loader = loader
        self._items: OrderedDict[tuple, object] = OrderedDict()
        self._lock = threading.Lock()
        self.loads = 0  # how many times a checkpoint was actually read (tests, metrics)

    @staticmethod
    def key_for(path: str | Path) -> tuple:
        p = Path(path).resolve()
        st = p.stat()
        return (str(p), st.st_mtime_ns, st.st_size)

    def _load(self, path: str):
        if self._loader is not None:
            return self._loader(path, self.device)
        from gan_core.generate import ModelRunner  # lazy: torch import is slow

        return ModelRunner(path, device=self.device)

    def get(self, path: str | Path):
        key = self.key_for(path)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            # Loading under the lock: two requests for the same new model load it once.
            runner = self._load(key[0])
            self.loads += 1
            self._items[key] = runner
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
            return runner

    def __len__(self) -> int:
        return len(self._items)
