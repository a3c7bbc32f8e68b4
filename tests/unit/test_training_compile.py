"""`compile=True` (torch.compile of D): the compiled D serves the first-order phases and the
eager D the R1 phase, whose second derivative compiled graphs refuse ("torch.compile with
aot_autograd does not currently support double backward"); before, the first R1 step (step 0)
crashed. On the CPU it needs a C++ compiler: without one the run goes on eagerly and says why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from gan_core.data.writer import write_images
from gan_core.device import cpp_compiler
from gan_core.train.loop import train
from tests.support.training_data import micro8_config, noise_images


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """One torch thread, as tests/unit/test_training.py."""


@pytest.fixture
def data8(tmp_path):
    return write_images(tmp_path / "data8.zip", noise_images(12, res=8))


def _start(run_dir) -> dict:
    lines = [json.loads(line) for line in (Path(run_dir) / "progress.jsonl").read_text().splitlines()]
    return next(e for e in lines if e["event"] == "start")


def _weights(run_dir) -> dict:
    from gan_core.models.checkpoint import load_network

    entry = sorted((Path(run_dir) / "snapshots").glob("network-*"))[-1]
    nets = load_network(entry, parts=("G", "D"))
    return {f"{part}.{k}": v for part in ("G", "D") for k, v in nets[part].state_dict().items()}


@pytest.mark.slow
@pytest.mark.skipif(cpp_compiler() is None, reason="torch.compile on the CPU needs a C++ compiler")
def test_compiled_discriminator_trains_through_r1_and_matches_eager(tmp_path, data8):
    eager = micro8_config(data8, tmp_path / "eager", steps=2, snapshot_every=2, aug="off", r1_interval=1)
    compiled = micro8_config(data8, tmp_path / "compiled", steps=2, snapshot_every=2, aug="off", r1_interval=1,
                             compile=True)
    assert train(eager)["step"] == 2
    assert train(compiled)["step"] == 2  # R1 on both steps: the eager D takes the double backward
    start = _start(compiled.run_dir)
    assert start["compiled"] is True and "compile_note" not in start
    assert _start(eager.run_dir)["compiled"] is False
    a, b = _weights(eager.run_dir), _weights(compiled.run_dir)
    for key in a:  # fused kernels round differently: close, not bit-equal
        torch.testing.assert_close(b[key], a[key], rtol=1e-3, atol=1e-4, msg=f"{key} differs")


def test_without_a_cpp_compiler_the_run_goes_on_eagerly_and_says_why(tmp_path, data8, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.delenv("CXX", raising=False)
    assert cpp_compiler() is None
    config = micro8_config(data8, tmp_path / "r", steps=2, aug="off", compile=True)
    assert train(config)["step"] == 2
    start = _start(config.run_dir)
    assert start["compiled"] is False
    assert start["compile_note"].startswith("no C++ compiler") and "running eagerly" in start["compile_note"]
