"""Latent walks: rows in SQLite, rendered frame by frame in a background thread.

Frames go to data_dir/walks/<id>/frame_NNNNN.png (N = the frame number) as they are
made, so a client can fetch early frames while later ones render; frames.zip is built
once when the walk completes. A walk cut short by a stop or a crash is queued again at
the next start and renders only the frames that are missing. Walks run one at a time on a single thread: they are a
batch job, and the device lock (see gpu.py) is taken per batch so generate requests and
training stay responsive.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from gan_core.fileio import atomic_path, atomic_write_bytes

from .gpu import device_lock

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS walks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    model TEXT NOT NULL,
    checkpoint TEXT NOT NULL,
    params TEXT NOT NULL,
    state TEXT NOT NULL,
    frames_done INTEGER NOT NULL DEFAULT 0,
    frames_total INTEGER NOT NULL,
    error TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
"""

QUEUED, RENDERING, COMPLETED, FAILED = "queued", "rendering", "completed", "failed"
PROGRESS_INTERVAL_S = 0.25


def create_tables(db) -> None:
    db.executescript(SCHEMA)


def frame_name(frame: int) -> str:
    return f"frame_{frame:05d}.png"


def walk_dir(walks_dir: Path, walk_id: int) -> Path:
    return Path(walks_dir) / str(int(walk_id))


def _row(row) -> dict | None:
    if row is None:
        return None
    out = dict(row)
    out["model"] = json.loads(out["model"])
    out["params"] = json.loads(out["params"])
    return out


def insert_walk(db, model: dict, checkpoint: str, params: dict, frames_total: int) -> dict:
    now = time.time()
    with db.connect() as conn:
        cur = conn.execute(
            "INSERT INTO walks (model, checkpoint, params, state, frames_total, created_at, updated_at)"
            " VALUES (?,?,?,?,?,?,?)",
            (json.dumps(model), checkpoint, json.dumps(params), QUEUED, frames_total, now, now),
        )
        walk_id = cur.lastrowid
    return get_walk(db, walk_id)


def get_walk(db, walk_id: int) -> dict | None:
    with db.connect() as conn:
        return _row(conn.execute("SELECT * FROM walks WHERE id=?", (walk_id,)).fetchone())


def _update(db, walk_id: int, **fields) -> None:
    fields["updated_at"] = time.time()
    cols = ", ".join(f"{k}=?" for k in fields)
    with db.connect() as conn:
        conn.execute(f"UPDATE walks SET {cols} WHERE id=?", (*fields.values(), walk_id))


def recover(db) -> list[int]:
    """At start-up: walks cut short by the last stop (queued, or rendering when it died) go
    back to the queue; frames already on disk are kept and not rendered again. Returns their
    ids, oldest first, for the renderer."""
    with db.connect(immediate=True) as conn:
        ids = [r["id"] for r in conn.execute(
            "SELECT id FROM walks WHERE state IN (?, ?) ORDER BY id", (QUEUED, RENDERING))]
        conn.execute("UPDATE walks SET state=?, updated_at=? WHERE state IN (?, ?)",
                     (QUEUED, time.time(), QUEUED, RENDERING))
    return ids


def frames_on_disk(out_dir: Path, frame_start: int, frame_end: int) -> set[int]:
    """Frame numbers already written (writes are atomic, so a file present is complete)."""
    found = set()
    for path in out_dir.glob("frame_*.png"):
        try:
            frame = int(path.stem.split("_", 1)[1])
        except ValueError:
            continue
        if frame_start <= frame <= frame_end:
            found.add(frame)
    return found


class WalkRenderer:
    """One background thread that renders queued walks in order."""

    def __init__(self, db, walks_dir: Path, cache, device: str):
        self.db, self.walks_dir, self.cache, self.device = db, Path(walks_dir), cache, device
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="walk-render")
        self._closed = threading.Event()

    def submit(self, walk_id: int) -> None:
        self._pool.submit(self._render_logged, walk_id)

    def close(self) -> None:
        self._closed.set()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _render_logged(self, walk_id: int) -> None:
        try:
            self.render(walk_id)
        except Exception as exc:  # the row must say what happened; the thread lives on
            log.exception("walk %s failed", walk_id)
            _update(self.db, walk_id, state=FAILED, error=f"{type(exc).__name__}: {exc}")

    def render(self, walk_id: int) -> None:
        from gan_core.latent import Waypoint

        walk = get_walk(self.db, walk_id)
        p = walk["params"]
        out_dir = walk_dir(self.walks_dir, walk_id)
        out_dir.mkdir(parents=True, exist_ok=True)
        _update(self.db, walk_id, state=RENDERING)
        runner = self.cache.get(walk["checkpoint"])
        waypoints = [Waypoint(frame=w["frame"], seed=w.get("seed"),
                              z=None if w.get("z") is None else np.asarray(w["z"], dtype=np.float32))
                     for w in p["waypoints"]]
        for stale in out_dir.glob(".frame_*.tmp"):  # half-written by a process that was killed
            stale.unlink(missing_ok=True)
        already = frames_on_disk(out_dir, p["frame_start"], p["frame_end"])  # a resumed walk
        frames = runner.render_walk(
            waypoints, p["frame_start"], p["frame_end"], p["interpolation"], p["easing"], p["loop"],
            p["psi"], noise_mode=p["noise_mode"], batch_size=p["batch_size"], skip_frames=already,
        )
        lock = device_lock(self.device)
        done, last = len(already), 0.0
        from gan_core.generate import encode_png

        while not self._closed.is_set():
            # The generator computes a batch inside next() when its buffer runs dry, so
            # holding the lock per next() holds it for at most one batch.
            with lock:
                item = next(frames, None)
            if item is None:
                break
            frame, image = item
            atomic_write_bytes(out_dir / frame_name(frame), encode_png(image))
            done += 1
            if time.monotonic() - last > PROGRESS_INTERVAL_S:
                _update(self.db, walk_id, frames_done=done)
                last = time.monotonic()
        if self._closed.is_set():  # the server is stopping: the next start resumes this walk
            _update(self.db, walk_id, state=QUEUED, frames_done=done)
            return
        with atomic_path(out_dir / "frames.zip") as tmp:
            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:  # PNGs are already compressed
                for path in sorted(out_dir.glob("frame_*.png")):
                    zf.write(path, path.name)
        _update(self.db, walk_id, state=COMPLETED, frames_done=done)
