"""Jobs with `gpus: 2` through a real server on the CPU: torchrun runs two gloo processes.

1. Killed and resumed: the server and everything it started are SIGKILLed mid-run; the
   restarted server resumes the job from its last snapshot, and the job ends with exactly the
   weights of the same job run without interruption (every rank's RNG streams come back,
   not only rank 0's).
2. Cancelled: every process of the job stops after a final snapshot; the job resumes.
3. The server stops cleanly (SIGTERM): the job stops with it, interrupted; when only the
   server is killed, the job's processes notice and stop by themselves.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time

import pytest
import torch
from safetensors.torch import load_file

from gan_core.models.checkpoint import load_training_state
from gan_core.train.loop import list_snapshots
from tests.support.http import api_get, api_post
from tests.support.jobs import create_job, finished, prepared_dataset, wait_job
from tests.support.processes import HAS_PROC, alive, crash, tree

pytestmark = [pytest.mark.e2e, pytest.mark.slow,
              pytest.mark.skipif(not HAS_PROC, reason="needs /proc to find the job's processes")]

ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
STEPS, EVERY = 40, 5
JOB = dict(steps=STEPS, snapshot_every=EVERY, batch=4, augmentation="ada", seed=5, gpus=2)


def _run_dir(data_dir, job_id: int):
    return data_dir / "jobs" / str(job_id) / "run"


def _events(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "progress.jsonl").read_text().splitlines()]


def _workers(job: dict) -> list[int]:
    """The torchrun launcher (the job's pid) and its rank processes."""
    pids = tree(job["pid"])
    assert len(pids) >= 3, f"expected the launcher and two ranks, found {pids}"
    return pids


def test_two_process_job_killed_resumes_to_the_uninterrupted_result(server_factory, tmp_path):
    data_dir = tmp_path / "data"
    server = server_factory(tmp_path, data_dir=data_dir, workers=1, env=ENV)
    dataset = prepared_dataset(server)
    r = create_job(server, dataset["id"], title="killed", **JOB)
    assert r.status_code == 201, r.text
    killed = r.json()
    assert killed["gpus"] == 2

    # Past the second snapshot, then a power cut: server, launcher and both ranks at once.
    job = wait_job(server, killed["id"], lambda j: j["state"] == "running" and j["step"] > EVERY, 300)
    assert job["step"] < STEPS, "the job finished before it could be killed; raise STEPS"
    launched = _workers(job)
    pids = crash(server.process)
    assert set(launched) <= set(pids)
    time.sleep(0.5)
    assert not any(alive(p) for p in pids)
    last_before = list_snapshots(_run_dir(data_dir, killed["id"]))[-1]["step"]
    assert last_before >= EVERY

    # The restarted server resumes it; the same job, never interrupted, queues behind it.
    restarted = server_factory(tmp_path, data_dir=data_dir, workers=1, env=ENV)
    r = create_job(restarted, dataset["id"], title="whole", **JOB)
    assert r.status_code == 201, r.text
    whole = r.json()
    for job_id in (killed["id"], whole["id"]):
        done = wait_job(restarted, job_id, finished, 900)
        assert done["state"] == "completed" and done["step"] == STEPS, done
    history = [(h["from_state"], h["to_state"]) for h in api_get(restarted, f"/jobs/{killed['id']}").json()["history"]]
    assert ("running", "interrupted") in history and ("interrupted", "queued") in history

    killed_run, whole_run = _run_dir(data_dir, killed["id"]), _run_dir(data_dir, whole["id"])
    resumed = [e for e in _events(killed_run) if e["event"] == "resumed"]
    assert [(e["step"], e["saved_world_size"]) for e in resumed] == [(last_before, 2)]
    assert [e["world_size"] for e in _events(whole_run) if e["event"] == "start"] == [2]
    assert len(load_training_state(whole_run / "snapshots" / f"state-{STEPS:06d}.pt")["ranks"]) == 2

    a = load_file(killed_run / "snapshots" / f"network-{STEPS:06d}.safetensors")
    b = load_file(whole_run / "snapshots" / f"network-{STEPS:06d}.safetensors")
    assert a.keys() == b.keys() and any(k.startswith("D.") for k in a)
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"the resumed job differs from the uninterrupted one in {different[:5]}"
    start = load_file(whole_run / "snapshots" / "network-000000.safetensors")
    assert any(not torch.equal(a[k], start[k]) for k in a if k.startswith("G_ema."))  # it trained


def test_cancelling_a_two_process_job_stops_every_process_then_it_resumes(server_factory, tmp_path):
    data_dir = tmp_path / "data"
    server = server_factory(tmp_path, data_dir=data_dir, workers=1, env=ENV)
    dataset = prepared_dataset(server)
    job = create_job(server, dataset["id"], title="cancel me", steps=5000, snapshot_every=1000, batch=4,
                     gpus=2).json()
    job = wait_job(server, job["id"], lambda j: j["state"] == "running" and j["step"] >= 2, 300)
    pids = _workers(job)

    r = api_post(server, f"/jobs/{job['id']}/cancel")
    assert r.status_code == 202, r.text
    job = wait_job(server, job["id"], finished, 180)
    assert job["state"] == "cancelled" and job["pid"] is None, job
    deadline = time.monotonic() + 30
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(alive(p) for p in pids), "a process of the cancelled job is still running"
    run_dir = _run_dir(data_dir, job["id"])
    assert list_snapshots(run_dir)[-1]["step"] == job["step"]  # the final snapshot covers every step
    assert sum(e["event"] == "done" for e in _events(run_dir)) == 1  # rank 0 alone reports

    r = api_post(server, f"/jobs/{job['id']}/resume", json={"steps": job["step"] + 3})
    assert r.status_code == 202, r.text
    job = wait_job(server, job["id"], finished, 300)
    assert job["state"] == "completed" and job["attempt"] == 2, job


def test_a_two_process_job_stops_with_the_server_and_by_itself_when_the_server_dies(server_factory, tmp_path):
    data_dir = tmp_path / "data"
    server = server_factory(tmp_path, data_dir=data_dir, workers=1, env=ENV)
    dataset = prepared_dataset(server)
    job_id = create_job(server, dataset["id"], steps=5000, snapshot_every=1000, batch=4, gpus=2).json()["id"]
    pids = _workers(wait_job(server, job_id, lambda j: j["state"] == "running" and j["step"] >= 2, 300))
    run_dir = _run_dir(data_dir, job_id)

    # A clean stop (SIGTERM): every rank stops after a final snapshot; the job is left interrupted.
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=120) == 0
    assert not any(alive(p) for p in pids)
    conn = sqlite3.connect(data_dir / "latent-studio.sqlite3")
    state, step, pid = conn.execute("SELECT state, step, pid FROM jobs WHERE id=?", (job_id,)).fetchone()
    conn.close()
    assert (state, pid) == ("interrupted", None)
    assert list_snapshots(run_dir)[-1]["step"] == step

    # Started again, it resumes; then only the server dies (kill -9): the job's processes notice
    # and stop by themselves after a final snapshot, leaving the row for the next start.
    restarted = server_factory(tmp_path, data_dir=data_dir, workers=1, env=ENV)
    job = wait_job(restarted, job_id, lambda j: j["attempt"] == 2 and j["state"] == "running" and j["step"] > step, 300)
    pids = _workers(job)
    os.kill(restarted.process.pid, signal.SIGKILL)
    restarted.process.wait(timeout=10)
    deadline = time.monotonic() + 120
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not any(alive(p) for p in pids), "the orphaned job kept running"
    assert _events(run_dir)[-1]["event"] == "done" and _events(run_dir)[-1]["stopped"] is True
    conn = sqlite3.connect(data_dir / "latent-studio.sqlite3")
    state, step = conn.execute("SELECT state, step FROM jobs WHERE id=?", (job_id,)).fetchone()
    conn.close()
    assert state == "running"  # nobody was left to record anything else
    assert list_snapshots(run_dir)[-1]["step"] >= step
