"""SQLite rows for training jobs and their state transitions.

The database is the single source of truth shared by the server process and the worker
processes, so every write is a short transaction and every state change is a
compare-and-set that also appends to `job_transitions` (an audit trail that survives
crashes). Workers write progress only for their own `attempt`, so a stale worker left
over from a crashed server can never overwrite the row of the attempt that replaced it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterator

from server.config import API_PREFIX
from server.datasets import store as dataset_store
from server.db import SQLITE_MAX_INTEGER, Database, add_missing_columns
from server.jobs import states
from server.paths import at_or_under

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    title TEXT NOT NULL,
    dataset_id TEXT,
    base_model TEXT NOT NULL,
    params TEXT NOT NULL,
    state TEXT NOT NULL,
    step INTEGER NOT NULL DEFAULT 0,
    steps INTEGER NOT NULL,
    kimg REAL NOT NULL DEFAULT 0,
    losses TEXT,
    ada_p REAL,
    sec_per_kimg REAL,
    eta_s REAL,
    latest_grid TEXT,
    estimate TEXT,
    error TEXT,
    run_dir TEXT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 0,
    pid INTEGER,
    heartbeat REAL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    queued_at REAL,
    started_at REAL,
    finished_at REAL
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state);
CREATE TABLE IF NOT EXISTS job_transitions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id INTEGER NOT NULL REFERENCES jobs(id),
    from_state TEXT,
    to_state TEXT NOT NULL,
    reason TEXT,
    at REAL NOT NULL
);
"""

# A dataset that an unfinished job trains on can be neither deleted nor re-prepared. The
# routes check this first for a friendly answer, but a check and the write after it can
# interleave with a concurrent request; these triggers make the database itself refuse
# (sqlite3.IntegrityError 'dataset_in_use'), like a foreign key would. The other direction,
# a job for a dataset being deleted, is closed by `insert_job(require_ready_dataset=True)`.
_ACTIVE = ", ".join(f"'{s}'" for s in sorted(states.ACTIVE_STATES))
DATASET_GUARDS = f"""
CREATE TRIGGER IF NOT EXISTS datasets_in_use_are_not_deleted BEFORE DELETE ON datasets
WHEN EXISTS (SELECT 1 FROM jobs WHERE dataset_id = OLD.id AND state IN ({_ACTIVE}))
BEGIN SELECT RAISE(ABORT, 'dataset_in_use'); END;
CREATE TRIGGER IF NOT EXISTS datasets_in_use_are_not_reprepared BEFORE UPDATE OF state ON datasets
WHEN NEW.state = 'preparing' AND EXISTS (SELECT 1 FROM jobs WHERE dataset_id = OLD.id AND state IN ({_ACTIVE}))
BEGIN SELECT RAISE(ABORT, 'dataset_in_use'); END;
"""


class DatasetUnavailable(Exception):
    """A job cannot be queued on its dataset: `state` is the dataset's (None: deleted)."""

    def __init__(self, dataset_id: str, state: str | None):
        super().__init__(f"dataset {dataset_id} is {state or 'gone'}")
        self.dataset_id, self.state = dataset_id, state


def _require_ready_dataset(conn: sqlite3.Connection, dataset_id) -> None:
    """Inside the writing transaction, so no delete or re-prepare can slip in before the write."""
    row = conn.execute("SELECT state FROM datasets WHERE id=?", (str(dataset_id),)).fetchone()
    if row is None or row["state"] != "ready":
        raise DatasetUnavailable(str(dataset_id), row["state"] if row else None)


def _valid_id(row_id) -> bool:
    """Ids from URLs and bodies may be any size; SQLite's are 64-bit (a larger one names nothing)."""
    return isinstance(row_id, int) and 0 <= row_id <= SQLITE_MAX_INTEGER

_JSON_COLUMNS = ("params", "losses", "estimate")
# Columns a worker may write while it runs; anything else is the scheduler's business.
PROGRESS_COLUMNS = frozenset({"step", "kimg", "losses", "ada_p", "sec_per_kimg", "eta_s", "latest_grid", "estimate",
                              "error"})


_DB_CACHE: dict[str, Database] = {}


def as_database(db) -> Database:
    """Accept a Database or a path (what a worker process is handed)."""
    if isinstance(db, (str, os.PathLike)):
        key = str(db)
        if key not in _DB_CACHE:
            _DB_CACHE[key] = Database(key)
        return _DB_CACHE[key]
    return db


@contextlib.contextmanager
def connect(db, immediate: bool = False) -> Iterator[sqlite3.Connection]:
    """One short transaction (see server.db.Database.connect)."""
    with as_database(db).connect(immediate=immediate) as conn:
        yield conn


def db_path(db) -> str:
    """The file behind `db`, for handing to a worker process."""
    return str(as_database(db).path)


def create_tables(db) -> None:
    database = as_database(db)
    dataset_store.init_schema(database)  # the guards below watch the datasets table
    database.executescript(SCHEMA + DATASET_GUARDS)
    add_missing_columns(database, "jobs", {"estimate": "TEXT"})  # databases made before estimates


def _row(row: sqlite3.Row | None) -> dict | None:
    if row is None:
        return None
    out = dict(row)
    for key in _JSON_COLUMNS:
        if out.get(key) is not None:
            out[key] = json.loads(out[key])
    return out


def insert_job(db, *, title: str, dataset_id: Any, base_model: str, params: dict,
               steps: int, run_dir_for, require_ready_dataset: bool = False) -> dict:
    """Insert a queued job; `run_dir_for(id)` names its run directory (needs the id).
    `require_ready_dataset`: DatasetUnavailable unless the dataset is ready, checked in the
    same transaction as the insert."""
    now = time.time()
    with connect(db, immediate=True) as conn:
        if require_ready_dataset:
            _require_ready_dataset(conn, dataset_id)
        cur = conn.execute(
            "INSERT INTO jobs (title, dataset_id, base_model, params, state, steps, run_dir,"
            " created_at, updated_at, queued_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (title, dataset_id, base_model, json.dumps(params), states.QUEUED, int(steps), "", now, now, now),
        )
        job_id = cur.lastrowid
        conn.execute("UPDATE jobs SET run_dir=? WHERE id=?", (str(run_dir_for(job_id)), job_id))
        conn.execute(
            "INSERT INTO job_transitions (job_id, from_state, to_state, reason, at) VALUES (?,?,?,?,?)",
            (job_id, None, states.QUEUED, "created", now),
        )
    return get_job(db, job_id)


def read_job(conn: sqlite3.Connection, job_id: int) -> dict | None:
    """One job row on an open connection (None for a missing or impossible id)."""
    if not _valid_id(job_id):
        return None
    return _row(conn.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone())


def read_transitions(conn: sqlite3.Connection, job_id: int) -> list[dict]:
    if not _valid_id(job_id):
        return []
    rows = conn.execute(
        "SELECT from_state, to_state, reason, at FROM job_transitions WHERE job_id=? ORDER BY id", (job_id,)
    ).fetchall()
    return [dict(r) for r in rows]


def get_job(db, job_id: int) -> dict | None:
    if not _valid_id(job_id):
        return None
    with connect(db) as conn:
        return read_job(conn, job_id)


def list_jobs(db, state_in: frozenset[str] | None = None) -> list[dict]:
    with connect(db) as conn:
        rows = conn.execute("SELECT * FROM jobs ORDER BY id").fetchall()
    jobs = [_row(r) for r in rows]
    if state_in is not None:
        jobs = [j for j in jobs if j["state"] in state_in]
    return jobs


def delete_job(db, job_id: int) -> bool:
    """Remove a finished job's rows; False when it does not exist or is active (queued, running,
    stopping, interrupted). State check and delete share one write transaction, so a resume
    or the scheduler cannot slip in between them."""
    if not _valid_id(job_id):
        return False
    with connect(db, immediate=True) as conn:  # the write lock first: nobody changes the state meanwhile
        row = conn.execute("SELECT state FROM jobs WHERE id=?", (job_id,)).fetchone()
        if row is None or row["state"] in states.ACTIVE_STATES:
            return False
        conn.execute("DELETE FROM job_transitions WHERE job_id=?", (job_id,))  # they refer to the job
        conn.execute("DELETE FROM jobs WHERE id=?", (job_id,))
    return True


def active_jobs_starting_from(db, path: Path) -> list[int]:
    """Ids of unfinished jobs whose base model is `path` or lies under it (a run folder)."""
    return [job["id"] for job in list_jobs(db, state_in=states.ACTIVE_STATES)
            if job["params"].get("base") and at_or_under(job["params"]["base"], path)]


def transitions(db, job_id: int) -> list[dict]:
    if not _valid_id(job_id):
        return []
    with connect(db) as conn:
        return read_transitions(conn, job_id)


def transition(db, job_id: int, target: str, reason: str, *, expect: frozenset[str] | None = None,
               for_attempt: int | None = None, require_ready_dataset: bool = False, **fields: Any) -> dict:
    """Move a job to `target` atomically; raise IllegalTransition (or KeyError) otherwise.

    `expect` narrows the legal sources further (e.g. cancel only from running);
    `for_attempt` makes the change conditional on the row still belonging to that attempt;
    `require_ready_dataset` raises DatasetUnavailable unless the job's dataset is ready.
    """
    now = time.time()
    # IMMEDIATE takes the write lock before the read, so the check and the write
    # cannot interleave with another process doing the same.
    with connect(db, immediate=True) as conn:
        row = conn.execute("SELECT state, attempt, dataset_id FROM jobs WHERE id=?", (job_id,)).fetchone()
        if row is None:
            raise KeyError(job_id)
        current = row["state"]
        if for_attempt is not None and row["attempt"] != for_attempt:
            raise states.IllegalTransition(current, target)
        if expect is not None and current not in expect:
            raise states.IllegalTransition(current, target)
        states.check_transition(current, target)
        if require_ready_dataset and row["dataset_id"] is not None:
            _require_ready_dataset(conn, row["dataset_id"])
        values = dict(fields)
        for key in _JSON_COLUMNS:
            if key in values and values[key] is not None:
                values[key] = json.dumps(values[key])
        values.update(state=target, updated_at=now)
        if target == states.QUEUED:
            values.setdefault("queued_at", now)
        if target in states.FINAL_STATES or target == states.INTERRUPTED:
            values.setdefault("finished_at", now)
        cols = ", ".join(f"{k}=?" for k in values)
        conn.execute(f"UPDATE jobs SET {cols} WHERE id=?", (*values.values(), job_id))
        conn.execute(
            "INSERT INTO job_transitions (job_id, from_state, to_state, reason, at) VALUES (?,?,?,?,?)",
            (job_id, current, target, reason, now),
        )
    return get_job(db, job_id)


def claim_queued(db, job_id: int, attempt: int) -> dict:
    """queued -> running for a new attempt number (IllegalTransition if no longer queued)."""
    now = time.time()
    return transition(db, job_id, states.RUNNING, f"worker starting (attempt {attempt})",
                      expect=frozenset({states.QUEUED}), attempt=attempt, started_at=now,
                      heartbeat=now, error=None, finished_at=None)


def set_pid(db, job_id: int, attempt: int, pid: int) -> None:
    with connect(db) as conn:
        conn.execute("UPDATE jobs SET pid=? WHERE id=? AND attempt=?", (pid, job_id, attempt))


def update_progress(db, job_id: int, attempt: int, fields: dict) -> bool:
    """Write worker progress; a no-op (False) if the row moved on to another attempt."""
    unknown = set(fields) - PROGRESS_COLUMNS
    if unknown:
        raise ValueError(f"not progress columns: {sorted(unknown)}")
    values = {k: (json.dumps(v) if k in _JSON_COLUMNS and v is not None else v) for k, v in fields.items()}
    values["updated_at"] = time.time()
    cols = ", ".join(f"{k}=?" for k in values)
    with connect(db) as conn:
        cur = conn.execute(
            f"UPDATE jobs SET {cols} WHERE id=? AND attempt=? AND state IN (?, ?)",
            (*values.values(), job_id, attempt, states.RUNNING, states.CANCELLING),
        )
        return cur.rowcount == 1


def beat(db, job_id: int, attempt: int) -> str | None:
    """Record that the worker is alive; returns the job's state (None if no longer ours)."""
    with connect(db) as conn:
        conn.execute("UPDATE jobs SET heartbeat=? WHERE id=? AND attempt=?", (time.time(), job_id, attempt))
        row = conn.execute("SELECT state, attempt FROM jobs WHERE id=?", (job_id,)).fetchone()
    if row is None or row["attempt"] != attempt:
        return None
    return row["state"]


def next_queued(db) -> dict | None:
    """The oldest queued job (FIFO by the time it entered the queue)."""
    with connect(db) as conn:
        row = conn.execute(
            "SELECT * FROM jobs WHERE state=? ORDER BY queued_at, id LIMIT 1", (states.QUEUED,)
        ).fetchone()
    return _row(row)


def dataset_in_use(db, dataset_id: Any) -> bool:
    """True while a job that has not finished (queued, running, ...) trains on the dataset."""
    active = tuple(states.ACTIVE_STATES)
    marks = ",".join("?" * len(active))
    with connect(db) as conn:
        try:
            row = conn.execute(
                f"SELECT 1 FROM jobs WHERE dataset_id=? AND state IN ({marks}) LIMIT 1",
                (str(dataset_id), *active),
            ).fetchone()
        except sqlite3.OperationalError as exc:  # jobs table not created yet: nothing uses it
            if "no such table" in str(exc):
                return False
            raise
    return row is not None


def list_job_models(state) -> list[dict]:
    """Latest snapshot of each completed/cancelled job, in the shape of GET /models entries."""
    out = []
    for job in list_jobs(state.db, frozenset({states.COMPLETED, states.CANCELLED})):
        try:
            snap = snapshot_for(job, None)
        except Exception:  # one unreadable run directory must not hide the other models
            continue
        if not snap or not snap["network"]:
            continue
        step = snap["step"]
        out.append({
            "id": f"job:{job['id']}:{step}",
            "name": f"{job['title']} (step {step})",
            "kind": "job",
            "resolution": snapshot_resolution(snap["network"], job),
            "thumbnail_url": f"{API_PREFIX}/jobs/{job['id']}/snapshots/{step}/grid.png",
            "thumbnail_path": str(snap["grid"]) if snap["grid"] else None,
            "path": str(snap["network"]),
        })
    return out


def snapshot_resolution(network: Path, job: dict):
    try:
        from gan_core.models.checkpoint import read_network_config

        return int(read_network_config(network)["resolution"])
    except Exception:
        return (job.get("params") or {}).get("resolution")


def parse_job_model_id(model_id: str) -> tuple[int, int | None]:
    """'job:<id>:<step>' or 'job:<id>' -> (id, step or None); ValueError otherwise."""
    parts = str(model_id).split(":")
    if len(parts) not in (2, 3) or parts[0] != "job":
        raise ValueError(f"not a job model id: {model_id!r} (expected job:<id>:<step>)")
    try:
        job_id = int(parts[1])
        step = int(parts[2]) if len(parts) == 3 else None
    except ValueError:
        raise ValueError(f"not a job model id: {model_id!r} (expected job:<id>:<step>)") from None
    return job_id, step


def run_dir_for(data_dir: str | os.PathLike, job_id: int) -> Path:
    return Path(data_dir) / "jobs" / str(job_id) / "run"


def job_snapshots(run_dir: str | os.PathLike) -> list[dict]:
    """The run's completed snapshots whose network file is there, as [{step, kimg, network,
    grid}] with absolute paths (the server's own use; answers show URLs)."""
    from gan_core.train.loop import list_snapshots  # lazy: torch is heavy to import

    base = Path(run_dir)
    if not base.exists():
        return []
    out = []
    for snap in list_snapshots(base):
        def _abs(value):
            if not value:
                return None
            p = Path(value)
            if p.is_absolute():
                return p
            # Index entries may be relative to the run dir or to snapshots/.
            return base / p if (base / p).exists() else base / "snapshots" / p
        network = _abs(snap.get("network"))
        if network is None or not network.is_file():  # deleted or lost: not a snapshot anyone can use
            continue
        out.append({
            "step": int(snap["step"]),
            "kimg": float(snap.get("kimg") or 0.0),
            "network": network,
            "grid": _abs(snap.get("grid")),
        })
    out.sort(key=lambda s: s["step"])
    return out


def snapshot_for(job: dict, step: int | None) -> dict | None:
    """One snapshot of a job: `step`, or the newest when None."""
    snaps = job_snapshots(job["run_dir"])
    if step is None:
        return snaps[-1] if snaps else None
    return next((s for s in snaps if s["step"] == step), None)
