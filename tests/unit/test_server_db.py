"""server.db.Database and the datasets store on real SQLite files (threads and processes)."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading

import pytest

from server.datasets import store
from server.db import Database


def counter_db(path) -> Database:
    db = Database(path)
    db.executescript("CREATE TABLE IF NOT EXISTS counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL); INSERT OR IGNORE INTO counter VALUES (1, 0);")
    return db


def increment(db: Database, times: int) -> None:
    for _ in range(times):
        with db.connect(immediate=True) as conn:  # read-then-write must not interleave
            n = conn.execute("SELECT n FROM counter WHERE id=1").fetchone()["n"]
            conn.execute("UPDATE counter SET n=? WHERE id=1", (n + 1,))


def _increment_in_process(path: str, times: int) -> None:
    increment(Database(path), times)


def read_n(db: Database) -> int:
    with db.connect() as conn:
        return conn.execute("SELECT n FROM counter WHERE id=1").fetchone()[0]


def test_wal_foreign_keys_and_rows(tmp_path):
    db = Database(tmp_path / "a.sqlite3")
    db.executescript("CREATE TABLE p (id INTEGER PRIMARY KEY); CREATE TABLE c (id INTEGER PRIMARY KEY, p INTEGER REFERENCES p(id));")
    with db.connect() as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        conn.execute("INSERT INTO p VALUES (1)")
        row = conn.execute("SELECT id FROM p").fetchone()
        assert row["id"] == 1  # sqlite3.Row: by name
    with pytest.raises(sqlite3.IntegrityError):
        with db.connect() as conn:
            conn.execute("INSERT INTO c VALUES (1, 99)")


def test_commit_on_success_rollback_on_error(tmp_path):
    db = counter_db(tmp_path / "b.sqlite3")
    with db.connect() as conn:
        conn.execute("UPDATE counter SET n=5")
    assert read_n(db) == 5
    with pytest.raises(RuntimeError):
        with db.connect() as conn:
            conn.execute("UPDATE counter SET n=6")
            raise RuntimeError("boom")
    assert read_n(db) == 5


def test_concurrent_writers_from_threads_lose_nothing(tmp_path):
    db = counter_db(tmp_path / "c.sqlite3")
    threads = [threading.Thread(target=increment, args=(db, 40)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert read_n(db) == 160


def test_concurrent_writers_from_processes_lose_nothing(tmp_path):
    db = counter_db(tmp_path / "d.sqlite3")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_increment_in_process, args=(str(db.path), 30)) for _ in range(2)]
    for p in procs:
        p.start()
    increment(db, 30)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert read_n(db) == 90


def test_dataset_store_state_changes(tmp_path):
    db = Database(tmp_path / "e.sqlite3")
    store.init_schema(db)
    store.init_schema(db)  # idempotent: runs on every server start
    ds = store.insert_dataset(db, "0123456789ab", "renders", 1000, 12)
    assert ds["state"] == "uploaded" and ds["progress"] == 0 and ds["params"] is None
    assert store.begin_preparation(db, ds["id"], {"resolution": 64})
    assert not store.begin_preparation(db, ds["id"], {"resolution": 64})  # already preparing
    store.set_progress(db, ds["id"], 1.7, "building")
    row = store.get_dataset(db, ds["id"])
    assert row["progress"] == 1.0 and row["phase"] == "building" and row["params"] == {"resolution": 64}
    assert store.fail_interrupted_preparations(db) == 1
    row = store.get_dataset(db, ds["id"])
    assert row["state"] == "failed" and "interrupted" in row["error"]
    assert not store.mark_failed(db, ds["id"], "other", only_if_preparing=True)
    assert store.begin_preparation(db, ds["id"], {"resolution": 32})  # failed -> preparing again
    assert not store.delete_dataset_row(db, ds["id"], unless_preparing=True)  # a running preparation is kept
    store.mark_ready(db, ds["id"], {"count": 12})
    row = store.get_dataset(db, ds["id"])
    assert row["state"] == "ready" and row["error"] is None and row["info"] == {"count": 12}
    assert [d["id"] for d in store.list_datasets(db)] == [ds["id"]]
    assert store.delete_dataset_row(db, ds["id"]) and store.get_dataset(db, ds["id"]) is None


def test_dataset_state_is_checked_by_the_schema(tmp_path):
    db = Database(tmp_path / "f.sqlite3")
    store.init_schema(db)
    store.insert_dataset(db, "0123456789ab", "x", 1, 1)
    with pytest.raises(sqlite3.IntegrityError):
        with db.connect() as conn:
            conn.execute("UPDATE datasets SET state='bogus'")


@pytest.mark.parametrize("bad", ["..", "../x", "", "0123456789AB", "0123456789abc", "a/b"])
def test_dataset_paths_only_for_real_ids(tmp_path, bad):
    from server.config import ServerConfig

    config = ServerConfig(data_dir=tmp_path)
    with pytest.raises(ValueError):
        store.dataset_dir(config, bad)
    assert store.dataset_zip_path(config, "0123456789ab") == tmp_path.resolve() / "datasets" / "0123456789ab" / "dataset.zip"


def test_preparation_progress_is_persisted_and_throttled(tmp_path):
    from server.datasets.prepare import EXTRACT_SHARE, _ProgressWriter

    db = Database(tmp_path / "g.sqlite3")
    store.init_schema(db)
    store.insert_dataset(db, "0123456789ab", "x", 1, 1)
    store.begin_preparation(db, "0123456789ab", {})
    writer = _ProgressWriter(db, "0123456789ab")
    writer({"stage": "decoding", "done": 5, "total": 10})
    writer({"stage": "writing", "done": 9, "total": 10})  # within the throttle interval: skipped
    row = store.get_dataset(db, "0123456789ab")
    assert row["phase"] == "decoding" and row["progress"] == pytest.approx(EXTRACT_SHARE + (1 - EXTRACT_SHARE) * 0.5)
    writer.last -= 10  # as if the interval had passed
    writer({"stage": "writing", "done": 9, "total": 10})
    assert store.get_dataset(db, "0123456789ab")["phase"] == "writing"


def test_run_preparation_records_an_unsafe_source_as_failed(tmp_path):
    import zipfile

    from server.datasets.prepare import run_preparation
    from server.datasets.safe_zip import ZipLimits
    from dataclasses import asdict

    db = Database(tmp_path / "h.sqlite3")
    store.init_schema(db)
    store.insert_dataset(db, "0123456789ab", "x", 1, 1)
    store.begin_preparation(db, "0123456789ab", {})
    folder = tmp_path / "datasets" / "0123456789ab"
    folder.mkdir(parents=True)
    with zipfile.ZipFile(folder / store.SOURCE_ZIP, "w") as zf:  # e.g. replaced on disk after the upload check
        zf.writestr("../evil.png", b"x")
    params = {"resolution": 32, "crop": "center", "background": "#000000", "inflate": [], "allow_upscale": False, "labels_from_folders": False}
    run_preparation(str(db.path), "0123456789ab", str(folder), params, asdict(ZipLimits()))
    row = store.get_dataset(db, "0123456789ab")
    assert row["state"] == "failed" and "outside the archive" in row["error"]
    assert not (tmp_path / "datasets" / "evil.png").exists() and not (folder / store.WORK_DIR).exists()
