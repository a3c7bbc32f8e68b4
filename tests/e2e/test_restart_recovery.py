"""Crash safety: SIGKILL the server and its whole process tree mid-training, start it again.

The restarted server must mark the job interrupted, queue it again and resume it from the
last snapshot in the same run directory, with no dataset, job row or snapshot lost.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gan_core.train.loop import list_snapshots

from tests.support.http import api_get, api_post
from tests.support.jobs import create_job, prepared_dataset, wait_job, write_tiny_base_model
from tests.support.processes import alive, crash, tree

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to find the worker processes")
def test_sigkill_mid_training_then_restart_resumes_from_last_snapshot(server_factory, tmp_path):
    data_dir = tmp_path / "data"
    server = server_factory(tmp_path, data_dir=data_dir)
    dataset = prepared_dataset(server)
    r = create_job(server, dataset["id"], title="crash me", steps=5000, snapshot_every=1)
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    # Wait for a snapshot beyond the initial one, and for training to move past it.
    job = wait_job(server, job_id, lambda j: j["state"] == "running" and j["step"] >= 1, 240)
    worker_pid = job["pid"]
    assert worker_pid and alive(worker_pid)

    snaps_before = api_get(server, f"/jobs/{job_id}/snapshots").json()["snapshots"]
    assert len(snaps_before) >= 2
    run_dir = data_dir / "jobs" / str(job_id) / "run" / "snapshots"
    # Only files of snapshots already listed as complete (one being written may be redone).
    listed = {f"{s['step']:06d}" for s in snaps_before}
    files_before = {p.name: _digest(p) for p in run_dir.iterdir()
                    if p.suffix in (".safetensors", ".pt", ".png") and p.stem.split("-")[-1] in listed}
    assert len(files_before) == 3 * len(snaps_before)
    dataset_zip = data_dir / "datasets" / dataset["id"] / "dataset.zip"
    zip_digest = _digest(dataset_zip)

    killed = crash(server.process)
    assert worker_pid in killed, "the worker process should be part of the server's tree"
    time.sleep(0.5)
    assert not any(alive(p) for p in killed)
    # The newest snapshot that completed before the crash (one may have finished after listing).
    last_before = list_snapshots(run_dir.parent)[-1]["step"]
    assert last_before >= snaps_before[-1]["step"]

    restarted = server_factory(tmp_path, data_dir=data_dir)
    # The job comes back on its own: interrupted -> queued -> running (attempt 2).
    job = wait_job(restarted, job_id, lambda j: j["attempt"] >= 2 and j["state"] == "running", 120)
    states = [(h["from_state"], h["to_state"]) for h in job["history"]]
    assert ("running", "interrupted") in states and ("interrupted", "queued") in states
    assert states[-1] == ("queued", "running")

    # Training resumes from the last snapshot (not from zero): a new snapshot past it appears.
    def past_last(j):
        steps = [s["step"] for s in api_get(restarted, f"/jobs/{job_id}/snapshots").json()["snapshots"]]
        return steps and steps[-1] > last_before
    wait_job(restarted, job_id, past_last, 180)
    progress = (data_dir / "jobs" / str(job_id) / "run" / "progress.jsonl").read_text().splitlines()
    resumed = [line for line in progress if '"event": "resumed"' in line]
    assert resumed and f'"step": {last_before}' in resumed[-1], resumed

    # Nothing that existed before the crash was lost or changed.
    snaps_after = api_get(restarted, f"/jobs/{job_id}/snapshots").json()["snapshots"]
    assert [s["step"] for s in snaps_after][: len(snaps_before)] == [s["step"] for s in snaps_before]
    for name, digest in files_before.items():
        assert _digest(run_dir / name) == digest, name
    assert _digest(dataset_zip) == zip_digest
    assert api_get(restarted, f"/datasets/{dataset['id']}").json()["state"] == "ready"
    assert len(api_get(restarted, "/jobs").json()["jobs"]) == 1

    # A clean stop (SIGTERM) while training: the worker snapshots and the job is left
    # 'interrupted' in the database, to be resumed by the next start.
    restarted.process.send_signal(signal.SIGTERM)
    assert restarted.process.wait(timeout=90) == 0
    conn = sqlite3.connect(data_dir / "latent-studio.sqlite3")
    state, step, pid = conn.execute("SELECT state, step, pid FROM jobs WHERE id=?", (job_id,)).fetchone()
    conn.close()
    assert (state, pid) == ("interrupted", None)
    assert list_snapshots(run_dir.parent)[-1]["step"] == step


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to find the worker processes")
def test_worker_stops_by_itself_when_only_the_server_dies(server_factory, tmp_path):
    """A worker whose server was killed must not train on as an orphan: it notices, takes a
    final snapshot and exits; the row stays 'running' for the next start to recover."""
    data_dir = tmp_path / "data"
    server = server_factory(tmp_path, data_dir=data_dir)
    dataset = prepared_dataset(server)
    job_id = create_job(server, dataset["id"], steps=5000, snapshot_every=1000).json()["id"]
    job = wait_job(server, job_id, lambda j: j["state"] == "running" and j["latest_grid_url"], 240)
    worker_pid = job["pid"]
    assert worker_pid in tree(server.process.pid)

    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait(timeout=10)
    deadline = time.monotonic() + 120
    while alive(worker_pid) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not alive(worker_pid), "the orphaned worker kept running"

    run_dir = data_dir / "jobs" / str(job_id) / "run"
    progress = (run_dir / "progress.jsonl").read_text()
    assert '"stopped": true' in progress.splitlines()[-1]  # train() returned through should_stop
    snaps = list_snapshots(run_dir)
    conn = sqlite3.connect(data_dir / "latent-studio.sqlite3")
    state, step = conn.execute("SELECT state, step FROM jobs WHERE id=?", (job_id,)).fetchone()
    conn.close()
    assert state == "running"  # nobody was left to record anything else
    assert snaps[-1]["step"] >= step  # the stop snapshot covers every step the row reported


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to find the server's processes")
def test_walk_cut_short_by_a_crash_resumes_and_keeps_its_frames(server_factory, tmp_path):
    from gan_core.generate import ModelRunner
    from gan_core.latent import Waypoint

    data_dir = tmp_path / "data"
    (data_dir / "models").mkdir(parents=True)
    model_path = write_tiny_base_model(data_dir / "models" / "tinybase.safetensors")
    server = server_factory(tmp_path, data_dir=data_dir)
    assert api_get(server, "/models").status_code == 200
    keys = [{"frame": 0, "seed": 1}, {"frame": 1500, "seed": 2}, {"frame": 2999, "seed": 3}]
    r = api_post(server, "/walks", json={"model": {"model_id": "tinybase"}, "waypoints": keys,
                                        "frame_start": 0, "frame_end": 2999, "interpolation": "slerp"})
    assert r.status_code == 202, r.text
    walk = r.json()
    walk_dir = data_dir / "walks" / str(walk["id"])

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(walk_dir.glob("frame_*.png"))) < 60:
        time.sleep(0.05)
    crash(server.process)
    before = {p.name: _digest(p) for p in walk_dir.glob("frame_*.png")}
    assert 60 <= len(before) < 3000, len(before)

    restarted = server_factory(tmp_path, data_dir=data_dir)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        status = api_get(restarted, f"/walks/{walk['id']}").json()
        if status["state"] in ("completed", "failed"):
            break
        time.sleep(0.3)
    assert status["state"] == "completed" and status["frames_done"] == 3000, status
    frames = sorted(walk_dir.glob("frame_*.png"))
    assert [p.name for p in frames] == [f"frame_{i:05d}.png" for i in range(3000)]
    assert not list(walk_dir.glob(".frame_*.tmp"))
    # Frames made before the crash were kept as they were, not rendered again.
    assert all(_digest(walk_dir / name) == digest for name, digest in before.items())
    # Frames made after the restart are the walk's frames: compare a few with a local render.
    check = {0, len(before) - 1, len(before), 2222, 2999}
    local = ModelRunner(model_path, device="cpu").render_walk(
        [Waypoint(k["frame"], seed=k["seed"]) for k in keys], 0, 2999, "slerp", "linear", False, 1.0,
        skip_frames=set(range(3000)) - check)
    for frame, image in local:
        served = np.asarray(Image.open(walk_dir / f"frame_{frame:05d}.png").convert("RGB")).astype(int)
        assert np.abs(served - image.astype(int)).max() <= 1, frame

