"""Training on CUDA: mixed precision layers, channels_last, ADA on the GPU, resume across
devices. Skipped automatically without a GPU (see tests/conftest.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.gpu


def _zip(tmp_path, res=32, n=16):
    from gan_core.data.writer import write_images

    rng = np.random.RandomState(0)
    return write_images(tmp_path / "d.zip", [rng.randint(0, 256, (res, res, 3)) for _ in range(n)])


def test_augment_pipe_on_cuda_keeps_identity_and_gradients():
    from gan_core.train.augment import AugmentPipe
    x = torch.rand([8, 3, 32, 32], device="cuda") * 2 - 1
    pipe = AugmentPipe.from_preset("bgc", p=0.0).cuda()
    assert torch.equal(pipe(x), x)
    pipe.p = 1.0
    x.requires_grad_(True)
    pipe(x).square().sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize("channels_last", [False, True])
def test_training_steps_on_cuda_with_fp16_layers(tmp_path, channels_last):
    from gan_core.models.checkpoint import load_training_state
    from gan_core.train.loop import TrainingConfig, train
    data = _zip(tmp_path)
    run_dir = tmp_path / "run"
    events = []
    cfg = TrainingConfig(data=str(data), run_dir=str(run_dir), steps=8, snapshot_every=4, batch=8, preset="small",
                         aug="fixed", aug_p=0.5, device="cuda", report_every=1, channels_last=channels_last)
    train(cfg, on_progress=events.append)
    progress = [e for e in events if e["event"] == "progress"]
    assert len(progress) == 8
    for e in progress:
        assert all(math.isfinite(v) for v in e["losses"].values()), e
    state = load_training_state(run_dir / "snapshots" / "state-000008.pt")
    assert state["step"] == 8
    # resume on the same device continues
    cfg.steps = 10
    summary = train(cfg)
    assert summary["step"] == 10 and summary["trained_steps"] == 2


def test_cuda_snapshot_resumes_on_cpu(tmp_path):
    from gan_core.train.loop import TrainingConfig, train
    data = _zip(tmp_path, res=16)
    run_dir = tmp_path / "run"
    small = {"G": {"z_dim": 16, "w_dim": 16, "synthesis_kwargs": {"channel_base": 256, "channel_max": 32}},
             "D": {"channel_base": 256, "channel_max": 32}}
    train(TrainingConfig(data=str(data), run_dir=str(run_dir), steps=2, batch=4, preset="tiny",
                         network_kwargs=small, device="cuda"))
    summary = train(TrainingConfig(data=str(data), run_dir=str(run_dir), steps=3, batch=4, preset="tiny",
                                   network_kwargs=small, device="cpu"))
    assert summary["step"] == 3
