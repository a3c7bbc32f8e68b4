"""One training run across machines: `latent-studio train --nnodes 2 --node-rank R --rdzv-endpoint
HOST:PORT` relaunches itself under torchrun (static rendezvous hosted by node 0). Here the two
"machines" are two launches on 127.0.0.1, one CPU process (gloo) each.

The two-node run is checked against a one-machine `--nproc-per-node 2` run of the same
seed: stopped at step 5 and resumed to 8 on two nodes, it must end with exactly the weights
of the uninterrupted one-machine run, which needs every rank's RNG streams (and path-length
mean, ADA partial sums) to come back on resume, not only rank 0's. A Ctrl-C on the machine
that does not write files stops the whole run after a final snapshot.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from gan_core.data.writer import write_images
from gan_core.models.checkpoint import load_training_state
from gan_core.train.loop import list_snapshots
from server.cli import build_parser, main
from server.cli.train import EXIT_INTERRUPTED, _train_flags
from server.torchrun import check_rendezvous, under_torchrun
from tests.support.server_process import free_port
from tests.support.training_data import noise_images

pytestmark = pytest.mark.slow

TIMEOUT_S = 300


def _train_args(data, out, steps: int) -> list[str]:
    # The tiny preset at 8 px: a step takes milliseconds, so the run checks the machinery.
    return ["train", "--data", str(data), "-o", str(out), "--steps", str(steps), "--snapshot-every", "2",
            "--batch", "8", "--preset", "tiny", "--device", "cpu", "--aug", "ada", "--ada-kimg", "0.05",
            "--report-every", "1", "--quiet"]


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "TORCHELASTIC_RUN_ID")}
    return {**env, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _launch(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "server.cli", *args], env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _finish(procs: list[subprocess.Popen]) -> list[str]:
    outputs = []
    try:
        for proc in procs:
            outputs.append(proc.communicate(timeout=TIMEOUT_S)[0])
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert all(p.returncode == 0 for p in procs), "\n---\n".join(outputs)
    return outputs


def _two_nodes(data, out, steps: int) -> list[str]:
    endpoint = f"127.0.0.1:{free_port()}"
    nodes = [_launch(_train_args(data, out, steps) + ["--nnodes", "2", "--node-rank", str(rank),
                                                       "--nproc-per-node", "1", "--rdzv-endpoint", endpoint])
             for rank in range(2)]
    return _finish(nodes)


def _events(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "progress.jsonl").read_text().splitlines()]


def test_two_local_nodes_train_one_run_and_resume_exactly(tmp_path):
    data = write_images(tmp_path / "d.zip", noise_images(16, res=8))
    nodes_run, one_machine_run = tmp_path / "two-nodes", tmp_path / "one-machine"

    outputs = _two_nodes(data, nodes_run, steps=5)
    assert "x2" in outputs[0] + outputs[1]  # the start line: "training 8px on cpu x2"
    events = _events(nodes_run)
    assert [e["world_size"] for e in events if e["event"] == "start"] == [2]
    assert [e["step"] for e in events if e["event"] == "progress"] == [1, 2, 3, 4, 5]  # written once, by rank 0
    assert [s["step"] for s in list_snapshots(nodes_run)] == [0, 2, 4, 5]
    state = load_training_state(nodes_run / "snapshots" / "state-000005.pt")
    assert state["nimg"] == 40
    ranks = state["ranks"]  # one resumable entry per rank, each its own RNG stream
    assert len(ranks) == 2 and not torch.equal(ranks[0]["rng"]["torch"], ranks[1]["rng"]["torch"])
    assert torch.equal(ranks[0]["rng"]["torch"], state["rng"]["torch"])

    _two_nodes(data, nodes_run, steps=8)  # resumes from step 5 on both machines
    resumed = [e for e in _events(nodes_run) if e["event"] == "resumed"]
    assert [(e["step"], e["saved_world_size"]) for e in resumed] == [(5, 2)]

    # The same run on one machine with two processes, never interrupted.
    _finish([_launch(_train_args(data, one_machine_run, steps=8) + ["--nproc-per-node", "2"])])
    assert [e["world_size"] for e in _events(one_machine_run) if e["event"] == "start"] == [2]

    a = load_file(nodes_run / "snapshots" / "network-000008.safetensors")
    b = load_file(one_machine_run / "snapshots" / "network-000008.safetensors")
    assert a.keys() == b.keys() and any(k.startswith("D.") for k in a)
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"resumed two-node run differs from the uninterrupted one in {different[:5]}"
    # and training really moved the weights since the resume point
    c = load_file(nodes_run / "snapshots" / "network-000005.safetensors")
    assert any(not torch.equal(a[k], c[k]) for k in a if k.startswith("G."))

    # Resumed by one process: it trains on, and says it is no longer bit-exact.
    output = _finish([_launch(_train_args(data, nodes_run, steps=9))])[0]
    assert "saved by 2 process(es), this run has 1" in output
    assert list_snapshots(nodes_run)[-1]["step"] == 9


@pytest.mark.parametrize("options, message", [
    (["--nnodes", "2", "--node-rank", "0"], "--rdzv-endpoint HOST:PORT"),
    (["--nnodes", "2", "--node-rank", "2", "--rdzv-endpoint", "127.0.0.1:29500"], "must be below --nnodes 2"),
    (["--nnodes", "2", "--rdzv-endpoint", "127.0.0.1"], "--rdzv-endpoint HOST:PORT"),
    (["--nproc-per-node", "0"], "--nproc-per-node must be a whole number >= 1"),
])
def test_bad_launch_options_are_refused_before_anything_starts(tmp_path, capsys, monkeypatch, options, message):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "TORCHELASTIC_RUN_ID"):
        monkeypatch.delenv(name, raising=False)
    out = tmp_path / "run"
    assert main(["train", "--data", str(tmp_path / "missing.zip"), "-o", str(out), *options]) == 1
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_relaunched_command_keeps_every_training_option(tmp_path):
    parser = build_parser()
    argv = ["train", "--data", "d.zip", "-o", "out", "--steps", "7", "--mirror", "--aug-p", "0.25", "--metrics",
            "swd", "--base", "ffhq", "--nnodes", "2", "--node-rank", "1", "--rdzv-endpoint", "h:1"]
    args = parser.parse_args(argv)
    flags = _train_flags(args)
    assert not {"--nnodes", "--node-rank", "--rdzv-endpoint", "--nproc-per-node"} & set(flags)
    again = parser.parse_args(["train", *flags])
    skip = {"nnodes", "node_rank", "rdzv_endpoint", "func", "parser_actions"}
    assert {k: v for k, v in vars(again).items() if k not in skip} == {k: v for k, v in vars(args).items() if k not in skip}


def test_check_rendezvous_and_torchrun_detection():
    check_rendezvous(2, 1, 4, "10.0.0.5:29500")
    check_rendezvous(1, 0, 2, None)  # one machine needs no endpoint
    with pytest.raises(ValueError, match="--node-rank must be a whole number >= 0"):
        check_rendezvous(2, -1, 1, "h:1")
    assert under_torchrun({"TORCHELASTIC_RUN_ID": "x", "LOCAL_RANK": "0"})
    assert not under_torchrun({})


def test_ctrl_c_on_one_machine_stops_the_whole_run_after_a_final_snapshot(tmp_path):
    data = write_images(tmp_path / "d.zip", noise_images(16, res=8))
    run_dir = tmp_path / "run"
    endpoint = f"127.0.0.1:{free_port()}"
    nodes = [_launch(_train_args(data, run_dir, steps=100000) + ["--snapshot-every", "100000", "--nnodes", "2",
                                                                  "--node-rank", str(rank), "--rdzv-endpoint", endpoint])
             for rank in range(2)]
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            progress = (run_dir / "progress.jsonl")
            if progress.exists() and any(e["event"] == "progress" and e["step"] >= 2 for e in _events(run_dir)):
                break
            assert all(p.poll() is None for p in nodes), "a node ended before it was interrupted"
            time.sleep(0.2)
        nodes[1].send_signal(signal.SIGINT)  # Ctrl-C on machine 1, which does not write files
        outputs = [p.communicate(timeout=TIMEOUT_S)[0] for p in nodes]
    finally:
        for p in nodes:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert [p.returncode for p in nodes] == [0, EXIT_INTERRUPTED], "\n---\n".join(outputs)
    done = _events(run_dir)[-1]
    assert done["event"] == "done" and done["stopped"] is True and done["step"] < 100000
    assert list_snapshots(run_dir)[-1]["step"] == done["step"]  # the final snapshot
