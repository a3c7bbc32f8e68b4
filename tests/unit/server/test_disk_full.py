"""A disk that fills up mid-snapshot (issue 12): a real training worker process whose files
may not grow past a limit (RLIMIT_FSIZE: to the process, exactly a full disk) stops with a
clear message; the previous snapshot stays complete and loadable, no half-written or
unrecorded file is left, and once space is back the job resumes and finishes. (Uploads and
walks on a full disk: tests/e2e/test_disk_full.py.)"""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pytest

from gan_core.data.writer import write_images
from gan_core.train.snapshots import load_resumable, snapshot_dir
from server.db import Database
from server.jobs import states, store, worker
from tests.support.jobs import run_worker_with_file_limit
from tests.support.training_data import MICRO8_NETWORKS, random_discs

pytestmark = pytest.mark.slow
# The micro networks' files: network ~124 KB, training state ~350 KB. A limit between them
# lets the network of the next snapshot be written and makes its state fail: the worst case,
# a snapshot half on disk.
FILE_LIMIT = 200_000


@pytest.fixture
def job(tmp_path):
    db = Database(tmp_path / "db.sqlite3")
    store.create_tables(db)
    write_images(tmp_path / "data.zip", random_discs(8, res=8))
    row = store.insert_job(db, title="t", dataset_id=None, base_model="scratch", params={}, steps=2,
                           run_dir_for=lambda i: tmp_path / "jobs" / str(i) / "run")
    return db, row, tmp_path / "data.zip"


def run_attempt(db, job: dict, data: Path, steps: int, attempt: int, file_limit: int | None) -> tuple[int, dict]:
    """One attempt as the scheduler runs it: claim, a spawned worker process, the exit recorded."""
    if job["state"] != states.QUEUED:
        store.transition(db, job["id"], states.QUEUED, "resume", steps=steps, error=None)
    store.claim_queued(db, job["id"], attempt)
    config = dict(data=str(data), run_dir=job["run_dir"], steps=steps, snapshot_every=1, batch=4, preset="tiny",
                  network_kwargs=MICRO8_NETWORKS, aug="off", report_every=1, grid_size=[2, 2], device="cpu")
    payload = {"job_id": job["id"], "attempt": attempt, "db_file": str(db.path), "parent_pid": os.getpid(),
               "job_dir": str(Path(job["run_dir"]).parent), "config": config}
    process = multiprocessing.get_context("spawn").Process(target=run_worker_with_file_limit, args=(payload, file_limit))
    process.start()
    process.join(300)
    from server.jobs.scheduler import exit_outcome

    target, reason = exit_outcome(process.exitcode)
    row = store.get_job(db, job["id"])
    store.transition(db, job["id"], target, reason, for_attempt=attempt,
                     **({"error": row["error"] or reason} if target == states.FAILED else {"error": None}))
    return process.exitcode, store.get_job(db, job["id"])


def test_a_full_disk_mid_snapshot_loses_nothing_and_resume_finishes_later(job):
    db, row, data = job
    code, row = run_attempt(db, row, data, steps=2, attempt=1, file_limit=None)
    assert code == worker.EXIT_COMPLETED and row["step"] == 2
    folder = snapshot_dir(row["run_dir"])
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    code, row = run_attempt(db, row, data, steps=4, attempt=2, file_limit=FILE_LIMIT)
    assert code == worker.EXIT_FAILED and row["state"] == states.FAILED
    assert "disk is full" in row["error"] and "step 2" in row["error"] and "resume" in row["error"]
    assert str(Path(row["run_dir"]).parent) not in row["error"]
    # Exactly the complete snapshots remain: nothing half-written, nothing of the failed step.
    assert sorted(p.name for p in folder.iterdir()) == sorted(before)
    for name, content in before.items():
        if name != "index.json":
            assert (folder / name).read_bytes() == content, name
    entry, state = load_resumable(row["run_dir"])
    assert entry["step"] == 2 and state["step"] == 2

    code, row = run_attempt(db, row, data, steps=4, attempt=3, file_limit=None)  # space is back
    assert code == worker.EXIT_COMPLETED and (row["state"], row["step"], row["error"]) == (states.COMPLETED, 4, None)
    entry, _ = load_resumable(row["run_dir"])
    assert entry["step"] == 4
    events = [line for line in (Path(row["run_dir"]) / "progress.jsonl").read_text().splitlines() if '"resumed"' in line]
    assert events and '"step": 2' in events[-1]  # the last attempt continued from step 2


def _upload_on_a_full_disk(data_dir: str, body: bytes, limit: int) -> tuple:
    """In a child process whose files may not grow past `limit`: the app (no waitress in
    front) receives an upload; returns (status, answer, files left in .uploads, dataset rows)."""
    import resource

    from server.app import create_app
    from server.config import ServerConfig
    from server.state import EXTENSION_KEY

    app = create_app(ServerConfig(data_dir=Path(data_dir), device="cpu", max_upload_bytes=20 << 20))
    state = app.extensions[EXTENSION_KEY]
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    client = app.test_client()
    r = client.post("/api/v1/datasets?name=big", data=body, content_type="application/zip",
                    headers={"Authorization": f"Bearer {state.token}"})
    rows = client.get("/api/v1/datasets", headers={"Authorization": f"Bearer {state.token}"}).get_json()
    leftovers = [p.name for p in (Path(data_dir) / "datasets" / ".uploads").glob("*")]
    state.shutdown()
    return r.status_code, r.get_json(), leftovers, rows


def test_an_upload_that_does_not_fit_is_507_and_leaves_nothing(tmp_path):
    from concurrent.futures import ProcessPoolExecutor

    from tests.support.images import image_zip

    body = image_zip(2) + bytes(3 << 20)  # a zip with 3 MB of trailing bytes: past the 1 MB limit
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        status, answer, leftovers, rows = pool.submit(_upload_on_a_full_disk, str(tmp_path / "data"), body,
                                                      1 << 20).result(timeout=300)
    assert status == 507 and answer["error"]["code"] == "insufficient_storage"
    assert "disk is full" in answer["error"]["message"]
    assert leftovers == [] and rows == []
