"""The projection runner: one background thread that runs queued projections in order.

A projection is hundreds of optimisation steps through the generator, so they run one at
a time (`capacity` bounds how many may wait) and hold the device lock for one step at a
time, like a walk holds it per batch: generate requests and walks stay responsive. The
generator comes from the shared model cache; the discriminator (for the D-feature loss)
is read from the checkpoint for each projection and dropped after it. A projection cannot
resume half-way, so one cut short by a stop is failed ("stopped with the server").
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gan_core.fileio import atomic_write_bytes, is_disk_full
from server.db import Database
from server.generation.gpu import device_lock
from server.generation.model_cache import ModelCache
from server.projections import store

log = logging.getLogger(__name__)
PROGRESS_INTERVAL_S = 0.25


class ProjectionRunner:
    """`capacity`: projections queued or running at once; `reserve()` refuses one more."""

    def __init__(self, db: Database, data_dir: Path, cache: ModelCache, device: str, capacity: int = 8):
        self.db, self.data_dir, self.cache, self.device = db, Path(data_dir), cache, device
        self.capacity = capacity
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="projection")
        self._closed = threading.Event()
        self._pending: set[int] = set()
        self._reserved = 0
        self._count_lock = threading.Lock()

    def reserve(self) -> bool:
        """Take a place for a projection about to be created (False: the queue is full)."""
        with self._count_lock:
            if self._reserved + len(self._pending) >= self.capacity:
                return False
            self._reserved += 1
            return True

    def release(self) -> None:
        with self._count_lock:
            self._reserved = max(0, self._reserved - 1)

    def submit(self, projection_id: int) -> None:
        """Queue a projection whose place was reserved."""
        with self._count_lock:
            self._reserved = max(0, self._reserved - 1)
            self._pending.add(projection_id)
        self._pool.submit(self._run_logged, projection_id)

    def close(self) -> None:
        """Stop: the running projection ends at its next step, queued ones never start; all of
        them are marked failed now (the next start would do it too, see store.recover)."""
        self._closed.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._count_lock:
            pending = sorted(self._pending)
        for projection_id in pending:
            store.fail_if_active(self.db, projection_id, store.STOPPED)

    def _run_logged(self, projection_id: int) -> None:
        try:
            self.run(projection_id)
        except Exception as exc:  # the row must say what happened; the thread lives on
            from gan_core.project import ProjectionStopped

            if isinstance(exc, ProjectionStopped):
                error = store.STOPPED
            elif is_disk_full(exc):
                log.error("projection %s: disk full: %s", projection_id, exc)
                error = "the server's disk is full: free space, then create the projection again"
            else:
                log.exception("projection %s failed", projection_id)
                error = f"{type(exc).__name__}: {exc}"
            store.fail_if_active(self.db, projection_id, error)
        finally:
            with self._count_lock:
                self._pending.discard(projection_id)

    def run(self, projection_id: int) -> None:
        import numpy as np
        from PIL import Image

        from gan_core.generate import encode_png
        from gan_core.project import project

        if self._closed.is_set():
            return
        row = store.get_projection(self.db, projection_id)
        p = row["params"]
        folder = store.projection_dir(self.data_dir, projection_id)
        store.update_projection(self.db, projection_id, state=store.RUNNING)
        runner = self.cache.get(row["checkpoint"])
        D = self._discriminator(row["checkpoint"], runner.device) if p["loss_used"] == "dfeat" else None
        with Image.open(folder / store.TARGET_NAME) as im:
            target = np.asarray(im.convert("RGB"))
        last = [0.0]

        def progress(event: dict) -> None:
            if time.monotonic() - last[0] > PROGRESS_INTERVAL_S or event["step"] == event["steps"]:
                store.update_projection(self.db, projection_id, steps_done=event["step"], loss=event["loss"])
                last[0] = time.monotonic()

        result = project(runner, D, target, steps=p["steps"], w_plus=p["w_plus"], optimize_noise=p["noise"],
                         loss=p["loss"], seed=p["seed"], on_progress=progress, should_stop=self._closed.is_set,
                         lock=device_lock(self.device))
        atomic_write_bytes(folder / store.RECONSTRUCTION_NAME, encode_png(result.image))
        latent = {"w": None if result.w is None else result.w.tolist(), "ws": result.ws.tolist(),
                  "w_plus": result.w_plus, "final_loss": result.final_loss, "losses": result.losses}
        store.update_projection(self.db, projection_id, state=store.DONE, steps_done=result.steps,
                                loss=result.final_loss, result=latent, note=result.note or row["note"])

    @staticmethod
    def _discriminator(checkpoint: str, device):
        """The checkpoint's D, or None when it holds none (the route noted it already)."""
        from gan_core.models.checkpoint import load_network, read_network_config

        if "D" not in (read_network_config(checkpoint).get("parts") or ()):
            return None
        return load_network(checkpoint, device=device, parts=("D",))["D"]
