"""A real training run over HTTP: a few hundred steps with ADA, watched the way the add-on does.

The other job tests keep runs to a handful of steps to test the queue and state machine;
this one checks that a job of realistic length progresses, reports what the UI shows
(step, kimg, losses, ADA p, sec/kimg, ETA, latest grid) and leaves a time-lapse of
snapshots whose networks really changed.
"""

from __future__ import annotations

import io
import math
import time

import numpy as np
import pytest
from PIL import Image

from tests.support.http import api_get
from tests.support.jobs import create_job, finished, prepared_dataset, wait_job

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

STEPS, SNAPSHOT_EVERY, BATCH = 200, 100, 4


def _png(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float32)


def test_a_few_hundred_steps_with_ada(live_server):
    dataset = prepared_dataset(live_server, name="blobs")
    job = create_job(live_server, dataset["id"], title="few hundred", steps=STEPS, snapshot_every=SNAPSHOT_EVERY,
                     batch=BATCH, augmentation="ada").json()

    # Poll like the add-on: while it runs, status must move forward and carry an ETA.
    seen_running = []
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        status = api_get(live_server, f"/jobs/{job['id']}").json()
        if status["state"] == "running" and 0 < status["step"] < STEPS:
            seen_running.append(status)
        if finished(status):
            break
        time.sleep(1.0)
    job = wait_job(live_server, job["id"], finished, 10)
    assert job["state"] == "completed", job
    assert job["step"] == STEPS and job["kimg"] == pytest.approx(STEPS * BATCH / 1000)

    assert seen_running, "never saw the job mid-run"
    mid = seen_running[-1]
    assert mid["eta_s"] is not None and mid["eta_s"] > 0 and mid["sec_per_kimg"] > 0
    assert [s["step"] for s in seen_running] == sorted(s["step"] for s in seen_running)

    assert job["losses"] and all(math.isfinite(v) for v in job["losses"].values())
    assert job["ada_p"] is not None and 0.0 <= job["ada_p"] <= 1.0

    snaps = api_get(live_server, f"/jobs/{job['id']}/snapshots").json()["snapshots"]
    assert [s["step"] for s in snaps] == [0, 100, 200]
    assert [s["kimg"] for s in snaps] == pytest.approx([0.0, 0.4, 0.8])

    # The time-lapse really changes: the grid from fixed latents differs between snapshots.
    grids = [_png(api_get(live_server, s["grid_url"].removeprefix("/api/v1")).content) for s in snaps]
    assert all(g.shape == grids[0].shape for g in grids)
    assert np.abs(grids[2] - grids[0]).mean() > 2.0  # out of 255: trained weights, not the init
    latest = _png(api_get(live_server, job["latest_grid_url"].removeprefix("/api/v1")).content)
    np.testing.assert_array_equal(latest, grids[2])
