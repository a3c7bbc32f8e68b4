"""Projection rows in SQLite, and where a projection's files live on disk.

data_dir/projections/<id>/target.png is the image as compared (cropped and resized to the
model, written when the projection is created); reconstruction.png is written when it is
done. The resulting latent is kept in the row (`result`, JSON). Times are epoch seconds.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from server.db import SQLITE_MAX_INTEGER, Database
from server.paths import at_or_under

SCHEMA = """
CREATE TABLE IF NOT EXISTS projections (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    model TEXT NOT NULL,
    checkpoint TEXT NOT NULL,
    params TEXT NOT NULL,
    state TEXT NOT NULL,
    steps_done INTEGER NOT NULL DEFAULT 0,
    steps_total INTEGER NOT NULL,
    loss REAL,
    result TEXT,
    note TEXT,
    error TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
"""

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
STATES = (QUEUED, RUNNING, DONE, FAILED)
ACTIVE = (QUEUED, RUNNING)
TARGET_NAME, RECONSTRUCTION_NAME = "target.png", "reconstruction.png"
STOPPED = "stopped with the server: create the projection again"


def create_tables(db: Database) -> None:
    db.executescript(SCHEMA)


def projections_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "projections"


def projection_dir(data_dir: Path, projection_id: int) -> Path:
    return projections_dir(data_dir) / str(int(projection_id))


def _row(row) -> dict | None:
    if row is None:
        return None
    out = dict(row)
    out["model"] = json.loads(out["model"])
    out["params"] = json.loads(out["params"])
    out["result"] = json.loads(out["result"]) if out["result"] else None
    return out


def insert_projection(db: Database, model: dict, checkpoint: str, params: dict, note: str | None) -> dict:
    now = time.time()
    with db.connect() as conn:
        cur = conn.execute(
            "INSERT INTO projections (model, checkpoint, params, state, steps_total, note, created_at, updated_at)"
            " VALUES (?,?,?,?,?,?,?,?)",
            (json.dumps(model), checkpoint, json.dumps(params), QUEUED, params["steps"], note, now, now))
        projection_id = cur.lastrowid
    return get_projection(db, projection_id)


def get_projection(db: Database, projection_id: int) -> dict | None:
    if not 0 <= projection_id <= SQLITE_MAX_INTEGER:  # ids from URLs may be any size; rows' are 64-bit
        return None
    with db.connect() as conn:
        return _row(conn.execute("SELECT * FROM projections WHERE id=?", (projection_id,)).fetchone())


def update_projection(db: Database, projection_id: int, **fields) -> None:
    if "result" in fields and fields["result"] is not None:
        fields["result"] = json.dumps(fields["result"])
    fields["updated_at"] = time.time()
    cols = ", ".join(f"{k}=?" for k in fields)
    with db.connect() as conn:
        conn.execute(f"UPDATE projections SET {cols} WHERE id=?", (*fields.values(), projection_id))


def fail_if_active(db: Database, projection_id: int, error: str) -> None:
    """Mark a queued or running projection failed (a finished one is left as it is)."""
    with db.connect() as conn:
        conn.execute("UPDATE projections SET state=?, error=?, updated_at=? WHERE id=? AND state IN (?, ?)",
                     (FAILED, error, time.time(), projection_id, *ACTIVE))


def delete_projection(db: Database, projection_id: int) -> bool:
    """Remove a finished (done or failed) projection's row; False when missing or still active."""
    if not 0 <= int(projection_id) <= SQLITE_MAX_INTEGER:
        return False
    with db.connect(immediate=True) as conn:
        return bool(conn.execute("DELETE FROM projections WHERE id=? AND state IN (?, ?)",
                                 (projection_id, DONE, FAILED)).rowcount)


def active_projections_using(db: Database, path: Path) -> list[int]:
    """Ids of queued or running projections whose checkpoint is `path` or lies under it."""
    with db.connect() as conn:
        rows = conn.execute("SELECT id, checkpoint FROM projections WHERE state IN (?, ?)", ACTIVE).fetchall()
    return [r["id"] for r in rows if at_or_under(r["checkpoint"], path)]


def recover(db: Database) -> list[int]:
    """At start-up: projections cut short by the last stop (queued or running) are failed,
    since an optimisation cannot resume where it stopped; their target stays on disk.
    Returns their ids."""
    with db.connect(immediate=True) as conn:
        ids = [r["id"] for r in conn.execute("SELECT id FROM projections WHERE state IN (?, ?) ORDER BY id", ACTIVE)]
        conn.execute("UPDATE projections SET state=?, error=?, updated_at=? WHERE state IN (?, ?)",
                     (FAILED, STOPPED, time.time(), *ACTIVE))
    return ids
