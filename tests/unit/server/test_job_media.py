"""A job's time-lapse (MP4 and numbered frames) and progress chart over HTTP: 404 in the
error vocabulary until the run has written them, then the real files of a (micro) training
run in the job's run folder, linked from the job document and described by the OpenAPI."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from gan_core.data.writer import write_images
from gan_core.train.loop import train
from server.jobs import store as job_store
from tests.support.training_data import micro8_config, noise_images

ROUTES = ("timelapse.mp4", "timelapse/frames.zip", "chart.png")


def new_job(api, ready_dataset) -> tuple[int, Path]:
    r = api.post("/jobs", json={"dataset_id": ready_dataset(api), "resolution": 32})
    assert r.status_code == 201, r.text
    job_id = r.get_json()["id"]
    return job_id, Path(job_store.get_job(api.state.db, job_id)["run_dir"])


def train_into(run_dir: Path, tmp_path: Path, steps: int) -> None:
    data = tmp_path / "data8.zip"
    if not data.exists():
        write_images(data, noise_images(12, res=8))
    train(micro8_config(data, run_dir, steps=steps, snapshot_every=1))


def error_code(r) -> str:
    return r.get_json()["error"]["code"]


def test_nothing_to_show_before_training_has_written_it(api, ready_dataset):
    job_id, run_dir = new_job(api, ready_dataset)
    job = api.get(f"/jobs/{job_id}").get_json()
    assert job["timelapse_url"] is None and job["timelapse_frames_url"] is None and job["chart_url"] is None
    for route in ROUTES:
        r = api.get(f"/jobs/{job_id}/{route}")
        assert r.status_code == 404, route
        assert error_code(r) == ("chart_not_found" if route == "chart.png" else "timelapse_not_found")
        assert "path" not in r.get_json()["error"]["message"] and str(run_dir) not in r.text
    for route in ROUTES:
        r = api.get(f"/jobs/999999/{route}")
        assert r.status_code == 404 and error_code(r) == "job_not_found"
        r = api.client.get(f"/api/v1/jobs/{job_id}/{route}", headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 401


def test_the_timelapse_and_chart_of_a_trained_run(api, ready_dataset, tmp_path, one_torch_thread):
    job_id, run_dir = new_job(api, ready_dataset)
    train_into(run_dir, tmp_path, steps=3)  # snapshots at 0, 1, 2, 3

    job = api.get(f"/jobs/{job_id}").get_json()
    base = f"/api/v1/jobs/{job_id}"
    assert (job["timelapse_url"], job["timelapse_frames_url"], job["chart_url"]) == (
        f"{base}/timelapse.mp4", f"{base}/timelapse/frames.zip", f"{base}/chart.png")
    listed = {j["id"]: j for j in api.get("/jobs").get_json()["jobs"]}[job_id]
    assert listed["timelapse_url"] == job["timelapse_url"]

    r = api.get(job["timelapse_url"])
    assert r.status_code == 200 and r.mimetype == "video/mp4"
    video = tmp_path / "got.mp4"
    video.write_bytes(r.data)
    reader = imageio_ffmpeg.read_frames(str(video))
    meta = next(reader)
    assert meta["size"] == (256, 276) and meta["codec"].startswith("h264")
    assert sum(1 for _ in reader) == 4

    r = api.get(job["timelapse_frames_url"])
    assert r.status_code == 200 and r.mimetype == "application/zip"
    with zipfile.ZipFile(io.BytesIO(r.data)) as zf:
        assert zf.namelist() == [f"frame_{i:05d}.png" for i in range(1, 5)] + ["frames.json"]
        assert [f["step"] for f in json.loads(zf.read("frames.json"))["frames"]] == [0, 1, 2, 3]
        assert Image.open(io.BytesIO(zf.read("frame_00004.png"))).size == (256, 276)

    r = api.get(job["chart_url"])
    assert r.status_code == 200 and r.mimetype == "image/png"
    before = np.asarray(Image.open(io.BytesIO(r.data)).convert("RGB"))
    train_into(run_dir, tmp_path, steps=6)  # the job goes on: the chart follows
    after = np.asarray(Image.open(io.BytesIO(api.get(job["chart_url"]).data)).convert("RGB"))
    assert before.shape == after.shape and not np.array_equal(before, after)
    r = api.get(job["timelapse_url"])
    video.write_bytes(r.data)
    assert sum(1 for _ in imageio_ffmpeg.read_frames(str(video))) - 1 == 7  # the metadata, then 7 frames


def test_the_openapi_document_describes_the_media_routes(api):
    paths = api.get("/openapi.json").get_json()["paths"]
    expected = {"timelapse.mp4": "video/mp4", "timelapse/frames.zip": "application/zip", "chart.png": "image/png"}
    for route, media in expected.items():
        op = paths[f"/api/v1/jobs/{{job_id}}/{route}"]["get"]
        assert list(op["responses"]["200"]["content"]) == [media]
        assert "404" in op["responses"] and "401" in op["responses"]


@pytest.mark.parametrize("route", ROUTES)
def test_only_get_is_allowed(api, route):
    r = api.post(f"/jobs/1/{route}")
    assert r.status_code == 405 and error_code(r) == "method_not_allowed"
