"""The walk renderer: one background thread that renders queued walks in order.

Walks are a batch job, so they run one at a time; the device lock (server.generation.gpu)
is taken per batch, so generate requests and training stay responsive. A walk cut short
by a stop or a crash is queued again at the next start (store.recover) and renders only
the frames that are missing.
"""

from __future__ import annotations

import logging
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gan_core.fileio import atomic_path, atomic_write_bytes, is_disk_full
from server.db import Database
from server.generation.gpu import device_lock
from server.generation.model_cache import ModelCache
from server.directions.walks import walk_directions
from server.walks import store

log = logging.getLogger(__name__)
PROGRESS_INTERVAL_S = 0.25


class WalkRunner:
    """`capacity`: walks queued or rendering at once; `reserve()` refuses one more."""

    def __init__(self, db: Database, walks_dir: Path, cache: ModelCache, device: str, capacity: int = 16):
        self.db, self.walks_dir, self.cache, self.device = db, Path(walks_dir), cache, device
        self.capacity = capacity
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="walk-render")
        self._closed = threading.Event()
        self._pending = 0
        self._count_lock = threading.Lock()

    def reserve(self) -> bool:
        """Take a place in the queue for a walk about to be created (False: the queue is full).
        The place is given back when that walk ends, or by `release` if it is never submitted."""
        with self._count_lock:
            if self._pending >= self.capacity:
                return False
            self._pending += 1
            return True

    def release(self) -> None:
        with self._count_lock:
            self._pending = max(0, self._pending - 1)

    def submit(self, walk_id: int, reserved: bool = True) -> None:
        """Queue a walk; `reserved=False` for walks resumed at start-up (they take a place unasked)."""
        if not reserved:
            with self._count_lock:
                self._pending += 1
        self._pool.submit(self._render_logged, walk_id)

    def close(self) -> None:
        self._closed.set()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _render_logged(self, walk_id: int) -> None:
        try:
            self.render(walk_id)
        except Exception as exc:  # the row must say what happened; the thread lives on
            if is_disk_full(exc):  # frames written so far stay; nothing half-written is left
                log.error("walk %s: disk full: %s", walk_id, exc)
                error = ("the server's disk is full: frames rendered so far are kept; free space, "
                         "then create the walk again")
            else:
                log.exception("walk %s failed", walk_id)
                error = f"{type(exc).__name__}: {exc}"
            store.update_walk(self.db, walk_id, state=store.FAILED, error=error)
        finally:
            self.release()

    def render(self, walk_id: int) -> None:
        from gan_core.generate import encode_png  # torch: loaded with the model anyway
        from gan_core.latent import Waypoint

        walk = store.get_walk(self.db, walk_id)
        p = walk["params"]
        out_dir = store.walk_dir(self.walks_dir, walk_id)
        out_dir.mkdir(parents=True, exist_ok=True)
        store.update_walk(self.db, walk_id, state=store.RENDERING)
        runner = self.cache.get(walk["checkpoint"])
        waypoints = [Waypoint.from_dict(w) for w in p["waypoints"]]  # as the route stored them (to_dict)
        for stale in out_dir.glob(".frame_*.tmp"):  # half-written by a process that was killed
            stale.unlink(missing_ok=True)
        already = store.frames_on_disk(out_dir, p["frame_start"], p["frame_end"])  # a resumed walk
        frames = runner.render_walk(
            waypoints, p["frame_start"], p["frame_end"], p["interpolation"], p["easing"], p["loop"],
            p["psi"], noise_mode=p["noise_mode"], batch_size=p["batch_size"], skip_frames=already,
            directions=walk_directions(p),
            # walks stored before seamless textures existed have neither key: plain, as rendered then
            seamless=p.get("seamless", False), size_multiplier=p.get("size_multiplier", 1),
        )
        lock = device_lock(self.device)
        done, last = len(already), 0.0
        while not self._closed.is_set():
            # The generator computes a batch inside next() when its buffer runs dry, so
            # holding the lock per next() holds it for at most one batch.
            with lock:
                item = next(frames, None)
            if item is None:
                break
            frame, image = item
            atomic_write_bytes(out_dir / store.frame_name(frame), encode_png(image))
            done += 1
            if time.monotonic() - last > PROGRESS_INTERVAL_S:
                store.update_walk(self.db, walk_id, frames_done=done)
                last = time.monotonic()
        if self._closed.is_set():  # the server is stopping: the next start resumes this walk
            store.update_walk(self.db, walk_id, state=store.QUEUED, frames_done=done)
            return
        with atomic_path(out_dir / store.ZIP_NAME) as tmp:
            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:  # PNGs are already compressed
                for path in sorted(out_dir.glob("frame_*.png")):
                    zf.write(path, path.name)
        store.update_walk(self.db, walk_id, state=store.COMPLETED, frames_done=done)
