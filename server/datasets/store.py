"""Dataset rows in SQLite and the file layout under data_dir/datasets/<id>/."""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path

from server.db import Database, add_missing_columns
from server.timestamps import now_iso

STATES = ("uploaded", "preparing", "ready", "failed")
ID_PATTERN = re.compile(r"^[0-9a-f]{12}$")

SCHEMA = """
CREATE TABLE IF NOT EXISTS datasets (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('uploaded', 'preparing', 'ready', 'failed')),
    progress      REAL NOT NULL DEFAULT 0,
    phase         TEXT,
    error         TEXT,
    source_bytes  INTEGER NOT NULL,
    source_images INTEGER NOT NULL,
    params        TEXT,
    info          TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    queued_at     REAL
);
"""
# A preparation waits in state 'preparing' with this phase until a slot is free (FIFO by queued_at).
QUEUED_PHASE = "queued"
STARTING_PHASE = "starting"

# Files of one dataset, relative to its folder.
SOURCE_ZIP = "source.zip"
DATASET_ZIP = "dataset.zip"
REPORT_JSON = "report.json"
PREVIEW_PNG = "preview.png"
WORK_DIR = "work"


def init_schema(db: Database) -> None:
    db.executescript(SCHEMA)
    add_missing_columns(db, "datasets", {"queued_at": "REAL"})  # databases made before the queue


def new_dataset_id() -> str:
    return uuid.uuid4().hex[:12]


def is_valid_id(dataset_id: str) -> bool:
    return bool(ID_PATTERN.match(dataset_id or ""))


def _datasets_dir(state_or_config) -> Path:
    config = getattr(state_or_config, "config", state_or_config)
    return config.datasets_dir


def dataset_dir(state_or_config, dataset_id: str) -> Path:
    # Ids come from URLs: only our own hex ids may become a path, never '..' or a slash.
    if not is_valid_id(dataset_id):
        raise ValueError(f"not a dataset id: {dataset_id!r}")
    return _datasets_dir(state_or_config) / dataset_id


def dataset_zip_path(state_or_config, dataset_id: str) -> Path:
    """The prepared StyleGAN2-ADA zip (exists once the dataset is `ready`)."""
    return dataset_dir(state_or_config, dataset_id) / DATASET_ZIP


def _row_to_dict(row) -> dict:
    data = dict(row)
    for key in ("params", "info"):
        data[key] = json.loads(data[key]) if data[key] else None
    return data


def insert_dataset(db: Database, dataset_id: str, name: str, source_bytes: int, source_images: int) -> dict:
    stamp = now_iso()
    with db.connect() as conn:
        conn.execute(
            "INSERT INTO datasets (id, name, state, progress, source_bytes, source_images, created_at, updated_at)"
            " VALUES (?, ?, 'uploaded', 0, ?, ?, ?, ?)",
            (dataset_id, name, source_bytes, source_images, stamp, stamp),
        )
    return get_dataset(db, dataset_id)


def get_dataset(db: Database, dataset_id: str) -> dict | None:
    with db.connect() as conn:
        row = conn.execute("SELECT * FROM datasets WHERE id = ?", (dataset_id,)).fetchone()
    return _row_to_dict(row) if row else None


def list_datasets(db: Database) -> list[dict]:
    with db.connect() as conn:
        rows = conn.execute("SELECT * FROM datasets ORDER BY created_at DESC, id").fetchall()
    return [_row_to_dict(r) for r in rows]


def begin_preparation(db: Database, dataset_id: str, params: dict) -> bool:
    """uploaded/ready/failed -> preparing (phase 'queued'), atomically; False when it is
    already preparing."""
    with db.connect(immediate=True) as conn:
        cur = conn.execute(
            "UPDATE datasets SET state='preparing', progress=0, phase=?, error=NULL, info=NULL, params=?, updated_at=?,"
            " queued_at=? WHERE id=? AND state != 'preparing'",
            (QUEUED_PHASE, json.dumps(params), now_iso(), time.time(), dataset_id),
        )
        return cur.rowcount == 1


def claim_next_queued(db: Database) -> tuple[str, dict] | None:
    """The oldest queued preparation, moved to phase 'starting' so no one else takes it:
    (id, params), or None when none waits."""
    with db.connect(immediate=True) as conn:
        row = conn.execute(
            "SELECT id, params FROM datasets WHERE state='preparing' AND phase=? ORDER BY queued_at, rowid LIMIT 1",
            (QUEUED_PHASE,),
        ).fetchone()
        if row is None:
            return None
        conn.execute("UPDATE datasets SET phase=?, updated_at=? WHERE id=?", (STARTING_PHASE, now_iso(), row["id"]))
    return row["id"], json.loads(row["params"])


def set_progress(db: Database, dataset_id: str, progress: float, phase: str | None) -> None:
    with db.connect() as conn:
        conn.execute(
            "UPDATE datasets SET progress=?, phase=?, updated_at=? WHERE id=? AND state='preparing'",
            (max(0.0, min(1.0, float(progress))), phase, now_iso(), dataset_id),
        )


def mark_ready(db: Database, dataset_id: str, info: dict) -> None:
    with db.connect() as conn:
        conn.execute(
            "UPDATE datasets SET state='ready', progress=1, phase='done', error=NULL, info=?, updated_at=? WHERE id=?",
            (json.dumps(info), now_iso(), dataset_id),
        )


def mark_failed(db: Database, dataset_id: str, error: str, only_if_preparing: bool = False) -> bool:
    sql = "UPDATE datasets SET state='failed', phase='failed', error=?, updated_at=? WHERE id=?"
    if only_if_preparing:
        sql += " AND state='preparing'"
    with db.connect() as conn:
        return conn.execute(sql, (error, now_iso(), dataset_id)).rowcount == 1


def fail_interrupted_preparations(db: Database) -> int:
    """At start-up: a 'preparing' row that had started has no process any more (the server
    stopped mid-way). Queued ones never started: they stay queued and run now."""
    with db.connect() as conn:
        cur = conn.execute(
            "UPDATE datasets SET state='failed', phase='failed', error=?, updated_at=?"
            " WHERE state='preparing' AND COALESCE(phase, '') != ?",
            ("preparation was interrupted by a server stop; prepare the dataset again", now_iso(), QUEUED_PHASE),
        )
        return cur.rowcount


def delete_dataset_row(db: Database, dataset_id: str, unless_preparing: bool = False) -> bool:
    sql = "DELETE FROM datasets WHERE id=?" + (" AND state != 'preparing'" if unless_preparing else "")
    with db.connect() as conn:
        return conn.execute(sql, (dataset_id,)).rowcount == 1
