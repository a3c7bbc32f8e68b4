"""The database as a durable store (issue 12): SQLite's settings, private files, a check at
start-up (thorough after an unclean stop), a damaged file refused with one clear message that
names it and the way out, and `latent-studio db check` / `db recover`."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from server.app import RUNNING_MARKER, create_app
from server.cli import main
from server.config import ServerConfig
from server.datasets import store as dataset_store
from server.db import Database, DatabaseDamagedError
from server.jobs import store as job_store
from server.state import EXTENSION_KEY
from tests.support.run_folders import prepared_dataset_folder, run_folder

PAGE = 4096


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def start(data_dir, **settings):
    app = create_app(ServerConfig(data_dir=data_dir, device="cpu", **settings))
    return app, app.extensions[EXTENSION_KEY]


@pytest.fixture
def filled(tmp_path):
    """A data directory whose database holds enough rows to span many pages; server stopped."""
    data_dir = tmp_path / "data"
    app, state = start(data_dir)
    for i in range(300):
        dataset_store.insert_dataset(state.db, f"{i:012x}", f"dataset number {i} " + "x" * 100, 1, 1)
    state.shutdown()
    return data_dir


def _corrupt(db_path, how: str) -> None:
    data = bytearray(db_path.read_bytes())
    if how == "header":
        data[:16] = b"this is not sql!"
    elif how == "truncated":
        data = data[: len(data) // 3]
    elif how == "pages":
        for page in range(2, len(data) // PAGE, 3):
            data[page * PAGE: page * PAGE + 64] = bytes(range(64))
    db_path.write_bytes(bytes(data))
    for suffix in ("-wal", "-shm"):
        db_path.with_name(db_path.name + suffix).unlink(missing_ok=True)


def test_sqlite_runs_as_a_durable_single_file_store(tmp_path):
    app, state = start(tmp_path / "data")
    try:
        conn = state.db._open()
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        conn.close()
    finally:
        state.shutdown()


def test_the_data_directory_is_private(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    os.chmod(data_dir, 0o755)  # made by hand, loosely: tightened at start
    (data_dir / "latent-studio.sqlite3").touch(mode=0o644)
    os.chmod(data_dir / "latent-studio.sqlite3", 0o644)
    app, state = start(data_dir)
    try:
        reader = state.db._open()  # an open connection keeps SQLite's -wal and -shm files in place
        reader.execute("SELECT count(*) FROM datasets").fetchone()
        dataset_store.insert_dataset(state.db, "00000000abcd", "x", 1, 1)
        config = state.config
        for folder in (config.data_dir, config.datasets_dir, config.models_dir, config.jobs_dir, config.walks_dir):
            assert mode(folder) == 0o700, folder
        for suffix in ("", "-wal", "-shm"):
            path = config.db_path.with_name(config.db_path.name + suffix)
            assert path.exists() and mode(path) == 0o600, path
        assert mode(config.token_path) == 0o600
        reader.close()
    finally:
        state.shutdown()


def test_a_new_database_is_private_from_its_first_byte(tmp_path):
    old = os.umask(0o022)
    try:
        db = Database(tmp_path / "new.sqlite3")
    finally:
        os.umask(old)
    assert mode(db.path) == 0o600


@pytest.mark.parametrize("how", ["header", "truncated", "pages"])
def test_a_damaged_database_stops_the_start_with_one_clear_message(filled, how):
    db_path = filled / "latent-studio.sqlite3"
    _corrupt(db_path, how)
    with pytest.raises(DatabaseDamagedError) as caught:
        start(filled)
    message = str(caught.value)
    assert str(db_path) in message and "latent-studio db recover" in message and "db check" in message
    assert "\n" not in message


def test_serve_refuses_a_damaged_database_in_one_line_without_a_traceback(filled):
    _corrupt(filled / "latent-studio.sqlite3", "header")
    done = subprocess.run([sys.executable, "-m", "server.cli", "serve", "--data-dir", str(filled), "--port", "0",
                           "--device", "cpu", "--no-addon-build"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
    assert "Traceback" not in done.stderr and len(errors) == 1, done.stderr
    assert str(filled / "latent-studio.sqlite3") in errors[0] and "db recover" in errors[0]


def test_an_unclean_stop_makes_the_next_start_check_thoroughly(tmp_path, monkeypatch):
    seen = []
    real = Database.problems
    monkeypatch.setattr(Database, "problems", lambda self, thorough: seen.append(thorough) or real(self, thorough))
    data_dir = tmp_path / "data"
    app, state = start(data_dir)  # this one owns the folder: it marks itself running
    assert state.owns_data_dir and (data_dir / RUNNING_MARKER).exists()
    state.shutdown()
    assert not (data_dir / RUNNING_MARKER).exists()  # a clean stop clears the mark
    app, state = start(data_dir)
    # Killed: no shutdown hook runs, the mark stays; the OS drops the lock with the process.
    hooks, state._shutdown_hooks = state._shutdown_hooks, []
    hooks[0]()  # the lock's release, the first hook added
    app, state = start(data_dir)
    state.shutdown()
    for hook in reversed(hooks[1:]):  # the "dead" server's threads, stopped for the test's sake
        if hook.__name__ != "<lambda>":
            hook()
    assert seen == [False, False, True]


def test_db_check_says_whether_the_database_is_healthy(filled, capsys):
    assert main(["db", "check", "--data-dir", str(filled)]) == 0
    assert "ok:" in capsys.readouterr().out
    _corrupt(filled / "latent-studio.sqlite3", "pages")
    assert main(["db", "check", "--data-dir", str(filled)]) == 1
    out = capsys.readouterr().out
    assert "damaged" in out and "db recover" in out


def test_recover_rebuilds_from_the_data_folder_and_keeps_the_damaged_file(tmp_path, capsys):
    data_dir = tmp_path / "data"
    app, state = start(data_dir)
    config = state.config
    prepared_dataset_folder(config.datasets_dir, "0123456789ab")
    run_folder(config.jobs_dir, 7, steps=10, snapshot_steps=[0, 4],
               data=str(config.datasets_dir / "0123456789ab" / "dataset.zip"))
    run_folder(config.jobs_dir, 8, steps=4, snapshot_steps=[0, 4])
    state.shutdown()
    _corrupt(config.db_path, "header")
    damaged = config.db_path.read_bytes()

    assert main(["db", "recover", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    copies = list(data_dir.glob("latent-studio.sqlite3.damaged-*"))
    assert len(copies) == 1 and copies[0].read_bytes() == damaged and str(copies[0]) in out
    assert main(["db", "check", "--data-dir", str(data_dir)]) == 0

    app, state = start(data_dir)
    try:
        client = app.test_client()
        headers = {"Authorization": f"Bearer {state.token}"}
        datasets = client.get("/api/v1/datasets", headers=headers).get_json()
        assert [(d["id"], d["state"], d["resolution"], d["image_count"]) for d in datasets] == [("0123456789ab", "ready", 32, 3)]
        jobs = {j["id"]: j for j in client.get("/api/v1/jobs", headers=headers).get_json()["jobs"]}
        assert (jobs[7]["state"], jobs[7]["step"], jobs[7]["dataset_id"]) == ("failed", 4, "0123456789ab")
        assert "resume" in jobs[7]["error"]
        assert (jobs[8]["state"], jobs[8]["step"]) == ("completed", 4)
        snaps = client.get("/api/v1/jobs/7/snapshots", headers=headers).get_json()["snapshots"]
        assert [s["step"] for s in snaps] == [0, 4]
        # The rebuilt job takes new work: resume queues it again.
        assert client.post("/api/v1/jobs/7/resume", json={"steps": 12}, headers=headers).status_code == 202
    finally:
        state.shutdown()


def test_recover_keeps_every_row_it_can_still_read(tmp_path):
    data_dir = tmp_path / "data"
    app, state = start(data_dir)
    dataset_store.insert_dataset(state.db, "00000000beef", "my renders", 10, 2)
    job_store.insert_job(state.db, title="kept title", dataset_id="00000000beef", base_model="scratch",
                         params={"batch": 4}, steps=5, run_dir_for=lambda i: state.config.jobs_dir / str(i) / "run")
    state.shutdown()
    assert main(["db", "recover", "--data-dir", str(data_dir)]) == 0
    db = Database(data_dir / "latent-studio.sqlite3")
    assert dataset_store.get_dataset(db, "00000000beef")["name"] == "my renders"
    job = job_store.get_job(db, 1)
    assert job["title"] == "kept title" and [t["to_state"] for t in job_store.transitions(db, 1)] == ["queued"]


def test_recover_refuses_while_a_server_runs(tmp_path):
    data_dir = tmp_path / "data"
    app, state = start(data_dir)  # owns the folder
    try:
        assert state.owns_data_dir
        with pytest.raises(ValueError, match="stop it first"):
            from server.db_recovery import recover_database

            recover_database(state.config)
        assert main(["db", "recover", "--data-dir", str(data_dir)]) == 1
    finally:
        state.shutdown()
