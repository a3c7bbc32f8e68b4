"""Training jobs over real HTTP: queue, snapshots, cancel, continue (request checks are
in-process: tests/unit/server/test_jobs.py).

A real `latent-studio serve` subprocess trains the tiny 32x32 preset on CPU in real
worker processes; step counts are kept tiny because a CPU step takes seconds on a shared 2-core machine.
"""

from __future__ import annotations

import io
import json
import struct
import time

import pytest
import requests
from PIL import Image

from tests.support.http import api_get, api_post
from tests.support.jobs import create_job, finished, prepared_dataset, wait_job

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def dataset(live_server):
    return prepared_dataset(live_server)


def _error(r: requests.Response, status: int, code: str | None = None) -> dict:
    assert r.status_code == status, (r.status_code, r.text)
    err = r.json()["error"]
    assert err["message"]
    if code is not None:
        assert err["code"] == code, err
    return err


def _png_size(data: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(data)).size


def _safetensors_meta(data: bytes) -> dict:
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    return json.loads(header["__metadata__"]["latent_studio"])


def test_train_snapshots_download_and_continue(live_server, dataset):
    r = create_job(live_server, dataset["id"], title="tiny run", steps=2, snapshot_every=1)
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["state"] in ("queued", "running") and job["steps"] == 2
    job = wait_job(live_server, job["id"], finished, 240)
    assert job["state"] == "completed", job
    assert job["step"] == 2 and job["kimg"] == pytest.approx(2 * 4 / 1000)
    assert set(job["losses"]) and all(isinstance(v, float) for v in job["losses"].values())
    assert job["sec_per_kimg"] > 0 and job["error"] is None
    assert [h["to_state"] for h in job["history"]] == ["queued", "running", "completed"]

    snaps = api_get(live_server, f"/jobs/{job['id']}/snapshots").json()["snapshots"]
    assert [s["step"] for s in snaps] == [0, 1, 2]
    grid = api_get(live_server, snaps[1]["grid_url"].removeprefix("/api/v1"))
    assert grid.headers["Content-Type"] == "image/png" and _png_size(grid.content) == (128, 128)
    latest = api_get(live_server, job["latest_grid_url"].removeprefix("/api/v1"))
    assert latest.status_code == 200 and _png_size(latest.content) == (128, 128)
    net1 = api_get(live_server, snaps[1]["download_url"].removeprefix("/api/v1"))
    assert net1.status_code == 200
    meta = _safetensors_meta(net1.content)
    assert (meta["step"], meta["resolution"]) == (1, 32)
    _error(api_get(live_server, f"/jobs/{job['id']}/snapshots/3/grid.png"), 404, "snapshot_not_found")

    # Generate from a job snapshot ({job_id, step}); the same seed gives the same image.
    one = api_post(live_server, "/generate", json={"model": {"job_id": job["id"], "step": 2}, "seeds": [7]})
    assert one.status_code == 200 and one.headers["Content-Type"] == "image/png", one.text
    assert _png_size(one.content) == (32, 32)
    again = api_post(live_server, "/generate", json={"model": {"model_id": f"job:{job['id']}:2"}, "seeds": [7]})
    assert again.content == one.content
    _error(api_post(live_server, "/generate", json={"model": {"job_id": job["id"], "step": 3}, "seeds": [7]}),
           404, "snapshot_not_found")

    # An illegal transition is refused and changes nothing.
    _error(api_post(live_server, f"/jobs/{job['id']}/cancel"), 409, "illegal_state_transition")
    assert api_get(live_server, f"/jobs/{job['id']}").json()["state"] == "completed"

    # Continue the finished job to 3 steps in the same run directory.
    r = api_post(live_server, f"/jobs/{job['id']}/resume", json={"steps": 3})
    assert r.status_code == 202 and r.json()["state"] == "queued" and r.json()["steps"] == 3
    job = wait_job(live_server, job["id"], finished, 240)
    assert job["state"] == "completed" and job["step"] == 3, job
    snaps = api_get(live_server, f"/jobs/{job['id']}/snapshots").json()["snapshots"]
    assert [s["step"] for s in snaps] == [0, 1, 2, 3]
    assert api_get(live_server, f"/jobs/{job['id']}/snapshots/1/network.safetensors").content == net1.content
    models = api_get(live_server, "/models").json()["models"]
    assert f"job:{job['id']}:3" in {m["id"] for m in models}


def test_queue_cancel_and_continue_from_cancelled(live_server, dataset):
    r = create_job(live_server, dataset["id"], title="long", steps=5000, snapshot_every=1)
    assert r.status_code == 201, r.text
    long_id = r.json()["id"]
    running = wait_job(live_server, long_id, lambda j: j["state"] == "running" and j["step"] >= 1, 240)
    # One worker: a second job (fine-tuning from the first one's snapshot) waits in the queue.
    r = create_job(live_server, dataset["id"], title="waiting", steps=1, snapshot_every=1, base_model=f"job:{long_id}:0")
    assert r.status_code == 201, r.text
    waiting_id = r.json()["id"]
    time.sleep(1.5)  # a few scheduler ticks
    assert api_get(live_server, f"/jobs/{waiting_id}").json()["state"] == "queued"
    # Generation works while the job trains (the worker is another process).
    r = api_post(live_server, "/generate", json={"model": {"model_id": f"job:{long_id}:0"}, "seeds": [1, 2]})
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/zip", r.text
    assert api_get(live_server, f"/jobs/{long_id}").json()["state"] == "running"
    # The dataset cannot be deleted while jobs use it.
    _error(requests.delete(live_server.api(f"/datasets/{dataset['id']}"), headers=live_server.headers, timeout=10),
           409, "dataset_in_use")
    _error(api_post(live_server, f"/jobs/{long_id}/resume", json={"steps": 6000}), 409, "illegal_state_transition")

    # Cancelling a queued job is immediate; cancelling it again is illegal.
    r = api_post(live_server, f"/jobs/{waiting_id}/cancel")
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    _error(api_post(live_server, f"/jobs/{waiting_id}/cancel"), 409)

    # Cancelling the running job is graceful: the worker stops after a final snapshot.
    r = api_post(live_server, f"/jobs/{long_id}/cancel")
    assert r.status_code == 202 and r.json()["state"] == "cancelling"
    job = wait_job(live_server, long_id, finished, 120)
    assert job["state"] == "cancelled", job
    assert running["step"] <= job["step"] < 5000
    snaps = [s["step"] for s in api_get(live_server, f"/jobs/{long_id}/snapshots").json()["snapshots"]]
    assert snaps[-1] == job["step"], (snaps, job["step"])  # the cancel-time snapshot was kept

    # Continue from the cancelled state a few more steps.
    target = job["step"] + 1
    r = api_post(live_server, f"/jobs/{long_id}/resume", json={"steps": target})
    assert r.status_code == 202, r.text
    job = wait_job(live_server, long_id, finished, 180)
    assert job["state"] == "completed" and job["step"] == target, job
    history = [h["to_state"] for h in job["history"]]
    assert history == ["queued", "running", "cancelling", "cancelled", "queued", "running", "completed"]
    # The cancelled waiting job never ran.
    assert [h["to_state"] for h in api_get(live_server, f"/jobs/{waiting_id}").json()["history"]] == ["queued", "cancelled"]


def test_resume_after_dataset_deleted_is_409(live_server):
    other = prepared_dataset(live_server, "short-lived")
    job = create_job(live_server, other["id"], steps=1, snapshot_every=1).json()
    r = api_post(live_server, f"/jobs/{job['id']}/cancel")
    assert r.status_code in (200, 202), r.text
    job = wait_job(live_server, job["id"], finished, 120)
    assert job["state"] in ("cancelled", "completed"), job
    r = requests.delete(live_server.api(f"/datasets/{other['id']}"), headers=live_server.headers, timeout=10)
    assert r.status_code == 204, r.text
    _error(api_post(live_server, f"/jobs/{job['id']}/resume", json={"steps": 5}), 409, "dataset_gone")
    after = api_get(live_server, f"/jobs/{job['id']}").json()
    assert after["state"] == job["state"] and after["history"] == job["history"]
