"""Data-parallel training on CPU: two gloo processes launched the way torchrun does (RANK,
WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT). Same results layout as one process, snapshots and
log lines written once (by rank 0), weights identical on both ranks."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from gan_core.data.writer import write_images
from gan_core.models.checkpoint import load_training_state
from gan_core.train.distributed import DistInfo, env_dist_info
from gan_core.train.loop import list_snapshots
from tests.support.training_data import micro8_config, noise_images

_WORKER = """
import hashlib, json, sys, torch
torch.set_num_threads(1)
from gan_core.train import loop as training
from gan_core.train.loop import TrainingConfig, train
cfg = TrainingConfig(**json.loads(sys.argv[1]))
# Record a digest of this rank's final G parameters so the test can compare ranks (buffers such
# as w_avg track each rank's own batches, as in the reference, so they are left out).
orig = training._Run.run
def run(self):
    out = orig(self)
    h = hashlib.sha256()
    for t in list(self.G.parameters()) + list(self.D.parameters()):
        h.update(t.detach().numpy().tobytes())
    open(sys.argv[2], "w").write(h.hexdigest())
    return out
training._Run.run = run
train(cfg)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_env_dist_info_reads_torchrun_variables(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert env_dist_info() == DistInfo(rank=2, world_size=4, local_rank=0)
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(ValueError, match="RANK=4"):
        env_dist_info()
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name)
    assert env_dist_info() == DistInfo()


def test_two_process_gloo_training(tmp_path):
    data = write_images(tmp_path / "d.zip", noise_images(12, res=8))
    run_dir = tmp_path / "run"
    cfg = micro8_config(data, run_dir, steps=3, snapshot_every=2, batch=8).to_dict()
    port = _free_port()
    procs = []
    for rank in range(2):
        env = dict(os.environ, RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                   MASTER_PORT=str(port), OMP_NUM_THREADS="1")
        procs.append(subprocess.Popen([sys.executable, "-c", _WORKER, json.dumps(cfg), str(tmp_path / f"g{rank}.txt")],
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    outputs = []
    try:
        for p in procs:
            outputs.append(p.communicate(timeout=300)[0].decode())
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert all(p.returncode == 0 for p in procs), "\n".join(outputs)

    assert [s["step"] for s in list_snapshots(run_dir)] == [0, 2, 3]
    events = [json.loads(x) for x in (run_dir / "progress.jsonl").read_text().splitlines()]
    assert [e["step"] for e in events if e["event"] == "progress"] == [1, 2, 3]  # once, not once per rank
    assert sum(e["event"] == "done" for e in events) == 1
    state = load_training_state(run_dir / "snapshots" / "state-000003.pt")
    assert state["nimg"] == 24  # the global batch of 8 per step, split 4 + 4
    # gradients were averaged: both ranks hold the same weights after 3 steps
    assert (tmp_path / "g0.txt").read_text() == (tmp_path / "g1.txt").read_text()


def test_backend_is_nccl_on_cuda_and_gloo_on_cpu(monkeypatch):
    # No GPU here: the torch.distributed call is replaced to see which backend would be used.
    import torch
    import torch.distributed as dist

    from gan_core.train import distributed
    calls = []
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", lambda **kw: calls.append(kw))
    info = DistInfo(rank=1, world_size=2, local_rank=1)
    assert distributed.init_process_group(info, torch.device("cuda", 1)) is True
    assert distributed.init_process_group(info, torch.device("cpu")) is True
    assert [c["backend"] for c in calls] == ["nccl", "gloo"]
    assert calls[0]["rank"] == 1 and calls[0]["world_size"] == 2
    assert distributed.init_process_group(DistInfo(), torch.device("cpu")) is False  # single process
    assert len(calls) == 2
