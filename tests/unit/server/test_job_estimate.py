"""A job's snapshot retention option, and the estimate its worker reports before the long wait."""

from __future__ import annotations

import pytest

from gan_core.train.estimate import estimate
from server.jobs import scheduler
from server.jobs import store as job_store
from server.jobs.worker import _Progress


def test_keep_snapshots_reaches_the_trainer(api, ready_dataset):
    r = api.post("/jobs", json={"dataset_id": ready_dataset(api), "resolution": 32, "keep_snapshots": 3})
    assert r.status_code == 201, r.text
    job = r.get_json()
    assert job["keep_snapshots"] == 3 and job["estimate"] is None
    row = job_store.get_job(api.state.db, job["id"])
    assert scheduler.training_config(row, "cpu")["keep_snapshots"] == 3


@pytest.mark.parametrize("keep", [0, -2, 1.5, "3", True])
def test_keep_snapshots_must_be_a_positive_whole_number(api, ready_dataset, keep):
    r = api.post("/jobs", json={"dataset_id": ready_dataset(api), "resolution": 32, "keep_snapshots": keep})
    assert r.status_code == 422 and "keep_snapshots" in r.get_json()["error"]["message"]


def test_the_workers_estimate_is_in_the_jobs_json(api, ready_dataset):
    job = api.post("/jobs", json={"dataset_id": ready_dataset(api), "resolution": 32}).get_json()
    job_store.claim_queued(api.state.db, job["id"], attempt=1)
    event = estimate(step=4, steps=5000, sec_per_step=28.9, snapshot_bytes=180_000_000, snapshot_every=500,
                     snapshots_now=1, keep=None, keeps_best=False, device_type="cpu")
    _Progress(str(api.state.db.path), job["id"], 1)(event)
    shown = api.get(f"/jobs/{job['id']}").get_json()["estimate"]
    assert shown["sec_per_step"] == 28.9 and shown["disk_bytes"] == 11 * 180_000_000
    assert "GPU" in shown["warning"] and shown["snapshots_kept"] == 11
