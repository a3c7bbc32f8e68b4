"""The precision option on CUDA: fp16 and bf16 blocks stay within the stated tolerance of
fp32 on the reference fixture, training runs in each precision with finite losses and
weights, and generation takes the option. Skipped without a GPU (tests/conftest.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.gpu

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "sg2ada_tiny32"
# [-1, 1] images after three reduced blocks: fp16 keeps 11 bits of mantissa, bf16 8.
TOLERANCE = {"fp16": (0.1, 0.015), "bf16": (0.25, 0.03)}


def _generator(num_fp16_res: int):
    from gan_core.nn.networks import build_generator
    with np.load(FIXTURE / "expected.npz") as data:
        config = json.loads(str(data["config"]))
    kw = dict(config["G_kwargs"], c_dim=0, img_resolution=32, img_channels=3)
    kw["synthesis_kwargs"] = dict(kw["synthesis_kwargs"], num_fp16_res=num_fp16_res)
    G = build_generator(kw)
    with np.load(FIXTURE / "G_ema_state.npz") as data:
        G.load_state_dict({k: torch.from_numpy(data[k]) for k in data.files})
    return G.eval().cuda()


@pytest.fixture(scope="module")
def expected():
    with np.load(FIXTURE / "expected.npz") as data:
        return {k: data[k] for k in data.files}


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_reduced_precision_images_are_close_to_fp32(expected, precision):
    from gan_core.nn.networks import set_precision
    G = set_precision(_generator(3), precision)
    seen = []
    G.synthesis.b32.conv1.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    z = torch.from_numpy(expected["z"]).cuda()
    with torch.no_grad():
        img = G(z, None, noise_mode="const").float().cpu().numpy()
    assert seen == [{"fp16": torch.float16, "bf16": torch.bfloat16}[precision]]
    err = np.abs(img - expected["img_psi1"])
    max_tol, mean_tol = TOLERANCE[precision]
    assert np.isfinite(img).all() and err.max() < max_tol and err.mean() < mean_tol, (err.max(), err.mean())


def test_fp32_precision_on_cuda_turns_reduced_blocks_off(expected):
    from gan_core.nn.networks import set_precision
    G = set_precision(_generator(4), "fp32")
    z = torch.from_numpy(expected["z"]).cuda()
    with torch.no_grad():
        img = G(z, None, noise_mode="const").cpu().numpy()
    np.testing.assert_allclose(img, expected["img_psi1"], atol=2e-2, rtol=0)


@pytest.mark.parametrize("precision", ["fp32", "bf16", "auto"])  # auto: fp16 on CUDA
def test_training_on_cuda_in_each_precision(tmp_path, precision):
    from gan_core.data.writer import write_images
    from gan_core.models.checkpoint import load_network
    from gan_core.train.loop import TrainingConfig, train
    rng = np.random.RandomState(0)
    data = write_images(tmp_path / "d.zip", [rng.randint(0, 256, (32, 32, 3)) for _ in range(16)])
    events = []
    cfg = TrainingConfig(data=str(data), run_dir=str(tmp_path / "run"), steps=8, snapshot_every=8, batch=8,
                         preset="small", aug="ada", aug_p=0.2, device="cuda", report_every=1, grid_size=None,
                         precision=precision, pl_interval=2, r1_interval=2, workers=0)
    summary = train(cfg, on_progress=events.append)
    start = next(e for e in events if e["event"] == "start")
    assert start["precision"] == ("fp16" if precision == "auto" else precision)
    losses = [v for e in events if e["event"] == "progress" for v in e["losses"].values()]
    assert losses and all(math.isfinite(v) for v in losses)
    nets = load_network(summary["snapshot"]["network"], parts=("G_ema", "G", "D"))
    for part in ("G_ema", "G", "D"):
        assert all(torch.isfinite(t).all() for t in nets[part].state_dict().values()), part


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_model_runner_takes_the_precision_on_cuda(expected, precision):
    from gan_core.generate import ModelRunner
    G = _generator(3)
    fp32 = ModelRunner(G, device="cuda", precision="fp32").generate(seeds=[0, 1])
    reduced = ModelRunner(G, device="cuda", precision=precision).generate(seeds=[0, 1])
    diff = np.abs(fp32.astype(int) - reduced.astype(int))
    max_tol, mean_tol = TOLERANCE[precision]
    assert diff.max() <= math.ceil(max_tol * 127.5) and diff.mean() < mean_tol * 127.5
