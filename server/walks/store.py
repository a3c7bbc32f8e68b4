"""Walk rows in SQLite, and where a walk's frames live on disk.

Frames go to data_dir/walks/<id>/frame_NNNNN.png (N = the frame number) as they are made;
frames.zip is built once the walk completes. Times are epoch seconds here; the routes turn
them into the API's ISO text.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from server.db import SQLITE_MAX_INTEGER, Database
from server.paths import at_or_under

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
STATES = (QUEUED, RENDERING, COMPLETED, FAILED)
ZIP_NAME = "frames.zip"


def create_tables(db: Database) -> None:
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


def insert_walk(db: Database, model: dict, checkpoint: str, params: dict, frames_total: int) -> dict:
    now = time.time()
    with db.connect() as conn:
        cur = conn.execute(
            "INSERT INTO walks (model, checkpoint, params, state, frames_total, created_at, updated_at)"
            " VALUES (?,?,?,?,?,?,?)",
            (json.dumps(model), checkpoint, json.dumps(params), QUEUED, frames_total, now, now),
        )
        walk_id = cur.lastrowid
    return get_walk(db, walk_id)


def get_walk(db: Database, walk_id: int) -> dict | None:
    if not 0 <= walk_id <= SQLITE_MAX_INTEGER:  # ids from URLs may be any size; rows' are 64-bit
        return None
    with db.connect() as conn:
        return _row(conn.execute("SELECT * FROM walks WHERE id=?", (walk_id,)).fetchone())


def update_walk(db: Database, walk_id: int, **fields) -> None:
    fields["updated_at"] = time.time()
    cols = ", ".join(f"{k}=?" for k in fields)
    with db.connect() as conn:
        conn.execute(f"UPDATE walks SET {cols} WHERE id=?", (*fields.values(), walk_id))


def delete_walk(db: Database, walk_id: int) -> bool:
    """Remove a finished (completed or failed) walk's row; False when missing or still active."""
    if not 0 <= int(walk_id) <= SQLITE_MAX_INTEGER:
        return False
    with db.connect(immediate=True) as conn:
        return bool(conn.execute("DELETE FROM walks WHERE id=? AND state IN (?, ?)",
                                 (walk_id, COMPLETED, FAILED)).rowcount)


def active_walks_using(db: Database, path: Path) -> list[int]:
    """Ids of queued or rendering walks whose checkpoint is `path` or lies under it."""
    with db.connect() as conn:
        rows = conn.execute("SELECT id, checkpoint FROM walks WHERE state IN (?, ?)", (QUEUED, RENDERING)).fetchall()
    return [r["id"] for r in rows if at_or_under(r["checkpoint"], path)]


def recover(db: Database) -> list[int]:
    """At start-up: walks cut short by the last stop (queued, or rendering when it died) go
    back to the queue; frames already on disk are kept and not rendered again. Returns their
    ids, oldest first, for the runner."""
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
