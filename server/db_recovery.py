"""Checking and rebuilding a damaged database (`latent-studio db check` / `db recover`).

The database only indexes what the data directory holds: uploads and prepared datasets
(datasets/<id>/), training runs (jobs/<id>/run/, whose config.json and snapshots/index.json
say what was trained), walk frames (walks/<id>/). So a damaged file can be replaced:
`recover` moves it (and SQLite's -wal/-shm beside it) aside as `<name>.damaged-<time>`,
creates a fresh database, copies every row SQLite can still read from the damaged copy, and
adds rows for the datasets and training runs found on disk that no readable row describes.
Walks and jobs' state-change histories exist only in the database: what cannot be read of
them is lost (walk frames stay on disk).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from gan_core.rules import IMAGE_EXTENSIONS
from server.config import ServerConfig
from server.datasets import store as dataset_store
from server.datasets.prepare import summary_of
from server.db import COMPANION_SUFFIXES, Database, DatabaseDamagedError
from server.filelock import FileLock
from server.jobs import states
from server.jobs import store as job_store
from server.timestamps import FORMAT
from server.walks import store as walk_store

TABLES = ("datasets", "jobs", "job_transitions", "walks")  # parents first: foreign keys
RECOVERED_ERROR = "recovered after the database was damaged: resume the job to continue"


class RecoveryRefused(ValueError):
    pass


@dataclass
class RecoveryReport:
    damaged_copy: Path | None
    salvaged: dict[str, int] = field(default_factory=dict)  # table -> rows read from the damaged file
    rebuilt: dict[str, int] = field(default_factory=dict)   # table -> rows made from the data folder
    unreadable: dict[str, str] = field(default_factory=dict)  # table -> why reading stopped


def check_database(config: ServerConfig) -> list[str]:
    """SQLite's full integrity check of the data directory's database ([] when healthy)."""
    if not config.db_path.exists():
        return []
    try:
        return Database(config.db_path).problems(thorough=True)
    except DatabaseDamagedError as exc:
        return [exc.problem]


def _read_rows(path: Path, report: RecoveryReport) -> dict[str, list[dict]]:
    """Every row SQLite can still read, table by table, from a working copy of `path`
    (reading stops at the first damaged page of a table)."""
    rows: dict[str, list[dict]] = {t: [] for t in TABLES}
    with tempfile.TemporaryDirectory(prefix="latent-recover-") as tmp:
        copy = Path(tmp) / "damaged.sqlite3"
        shutil.copyfile(path, copy)
        for suffix in COMPANION_SUFFIXES[:1]:  # the WAL holds committed changes not yet in the file
            if path.with_name(path.name + suffix).exists():
                shutil.copyfile(path.with_name(path.name + suffix), copy.with_name(copy.name + suffix))
        try:
            conn = sqlite3.connect(copy)
        except sqlite3.DatabaseError as exc:
            report.unreadable = {t: str(exc) for t in TABLES}
            return rows
        conn.row_factory = sqlite3.Row
        try:
            for table in TABLES:
                try:
                    for row in conn.execute(f"SELECT * FROM {table}"):
                        rows[table].append(dict(row))
                except sqlite3.DatabaseError as exc:
                    report.unreadable[table] = str(exc)
        finally:
            conn.close()
    return rows


def _insert(conn: sqlite3.Connection, table: str, row: dict, columns: set[str]) -> bool:
    values = {k: v for k, v in row.items() if k in columns}
    marks = ", ".join("?" * len(values))
    try:
        cur = conn.execute(f"INSERT OR IGNORE INTO {table} ({', '.join(values)}) VALUES ({marks})", tuple(values.values()))
    except sqlite3.DatabaseError:  # a row that breaks a constraint (e.g. its job is lost): skip it
        return False
    return cur.rowcount == 1


def _iso(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, tz=timezone.utc).strftime(FORMAT)


def _dataset_rows(config: ServerConfig) -> list[dict]:
    """A row for each dataset folder: 'ready' with its report's summary once prepared, else 'uploaded'."""
    out = []
    for folder in sorted(config.datasets_dir.iterdir()) if config.datasets_dir.is_dir() else []:
        if not dataset_store.is_valid_id(folder.name):
            continue
        source, prepared = folder / dataset_store.SOURCE_ZIP, folder / dataset_store.DATASET_ZIP
        report_path = folder / dataset_store.REPORT_JSON
        if not source.is_file() and not prepared.is_file():
            continue
        images = 0
        try:
            with zipfile.ZipFile(source) as zf:
                images = sum(Path(n).suffix.lower() in IMAGE_EXTENSIONS for n in zf.namelist())
        except (OSError, zipfile.BadZipFile):
            pass
        row = {"id": folder.name, "name": f"recovered {folder.name}", "state": "uploaded", "progress": 0,
               "source_bytes": source.stat().st_size if source.is_file() else 0, "source_images": images,
               "created_at": _iso(folder.stat().st_mtime), "updated_at": _iso(time.time())}
        if prepared.is_file() and report_path.is_file():
            try:
                report = json.loads(report_path.read_text(encoding="utf-8"))
                row.update(state="ready", progress=1, phase="done", info=json.dumps(summary_of(report)),
                           params=json.dumps({"resolution": report.get("resolution")}))
            except (OSError, ValueError):
                pass
        out.append(row)
    return out


_CONFIG_TO_PARAM = {"resolution": "resolution", "batch": "batch", "mirror": "mirror", "aug": "augmentation",
                    "snapshot_every": "snapshot_every", "preset": "preset", "seed": "seed", "data": "data", "base": "base"}


def _job_rows(config: ServerConfig) -> list[dict]:
    """A row for each training run with a config.json: completed when its newest snapshot
    reached the steps asked for, else failed (resume continues it)."""
    from gan_core.train.snapshots import list_snapshots  # torch: only when recovering

    out = []
    for folder in sorted(config.jobs_dir.iterdir()) if config.jobs_dir.is_dir() else []:
        run_dir = folder / "run"
        if not folder.name.isdigit() or not (run_dir / "config.json").is_file():
            continue
        try:
            cfg = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        snaps = [s for s in list_snapshots(run_dir) if Path(s["network"]).is_file()]
        step = snaps[-1]["step"] if snaps else 0
        steps = int(cfg.get("steps") or max(step, 1))
        data = Path(str(cfg.get("data") or ""))
        done = step >= steps
        stamp = (run_dir / "config.json").stat().st_mtime
        out.append({
            "id": int(folder.name), "title": f"recovered job {folder.name}",
            "dataset_id": data.parent.name if dataset_store.is_valid_id(data.parent.name) else None,
            "base_model": Path(cfg["base"]).stem if cfg.get("base") else "scratch",
            "params": json.dumps({dst: cfg.get(src) for src, dst in _CONFIG_TO_PARAM.items()}),
            "state": states.COMPLETED if done else states.FAILED, "step": step, "steps": steps,
            "kimg": float(snaps[-1].get("kimg") or 0.0) if snaps else 0.0,
            "latest_grid": snaps[-1].get("grid") if snaps else None,
            "error": None if done else RECOVERED_ERROR, "run_dir": str(run_dir), "attempt": 1,
            "created_at": stamp, "updated_at": time.time(), "finished_at": time.time(),
        })
    return out


def _create_schema(db: Database) -> None:
    dataset_store.init_schema(db)
    job_store.create_tables(db)
    walk_store.create_tables(db)


def recover_database(config: ServerConfig) -> RecoveryReport:
    """Move the database aside and rebuild it (see the module's docstring). Refused while a
    server runs on the data directory."""
    lock = FileLock(config.data_dir / "server.lock")
    if not config.data_dir.is_dir():
        raise RecoveryRefused(f"no data directory at {config.data_dir}")
    if not lock.try_acquire():
        raise RecoveryRefused(f"a server is running on {config.data_dir}: stop it first, then recover")
    try:
        report = RecoveryReport(damaged_copy=None)
        salvage = {t: [] for t in TABLES}
        if config.db_path.exists():
            stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
            report.damaged_copy = config.db_path.with_name(f"{config.db_path.name}.damaged-{stamp}")
            for suffix in ("", *COMPANION_SUFFIXES):
                source = config.db_path.with_name(config.db_path.name + suffix)
                if source.exists():
                    source.replace(report.damaged_copy.with_name(report.damaged_copy.name + suffix))
            salvage = _read_rows(report.damaged_copy, report)
        db = Database(config.db_path)
        _create_schema(db)
        found = (("datasets", _dataset_rows(config)), ("jobs", _job_rows(config)))
        with db.connect(immediate=True) as conn:  # all or nothing
            for table in TABLES:
                columns = {r["name"] for r in conn.execute(f"PRAGMA table_info({table})")}
                report.salvaged[table] = sum(_insert(conn, table, row, columns) for row in salvage[table])
            for table, rows in found:
                columns = {r["name"] for r in conn.execute(f"PRAGMA table_info({table})")}
                report.rebuilt[table] = sum(_insert(conn, table, row, columns) for row in rows)
        return report
    finally:
        lock.release()
