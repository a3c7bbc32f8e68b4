"""GPU-sharing policy for the server process.

- Training runs in separate worker processes (server.jobs.worker). This process never
  waits for them; on a GPU, CUDA time-slices between the worker's kernels and ours, so a
  generate request runs *between* training kernels and slows training a little while it
  runs. Nothing here pauses training; we do not claim more than that.
- Inside this process, generation and walk rendering take one lock per device, held for
  one batch at a time (one `generate` call, or one batch of a walk). A long walk therefore
  never holds the device for more than a batch, and a generate request queued behind it
  waits at most one batch. It also keeps two requests from doubling peak GPU memory.
"""

from __future__ import annotations

import threading

BATCH = 8  # images or walk frames per device-lock hold: how long anyone else may have to wait
_locks: dict[str, threading.Lock] = {}
_guard = threading.Lock()


def batch_for(size_multiplier: int = 1) -> int:
    """Images per lock hold at a size multiplier: an N-times enlarged image is N^2 plain ones'
    work, so a hold stays about BATCH plain images long (and at least one image)."""
    return max(1, BATCH // (size_multiplier * size_multiplier))


def device_lock(device: str) -> threading.Lock:
    with _guard:
        return _locks.setdefault(str(device), threading.Lock())
