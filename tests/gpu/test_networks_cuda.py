"""CUDA networks agree with the CPU fp32 reference path, in fp32 and in mixed precision."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from gan_core.nn.networks import build_discriminator, build_generator

pytestmark = pytest.mark.gpu

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "sg2ada_tiny32"


def _load(kind: str, num_fp16_res: int):
    with np.load(FIXTURE / "expected.npz") as data:
        config = json.loads(str(data["config"]))
    common = dict(c_dim=0, img_resolution=32, img_channels=3)
    if kind == "G":
        kw = dict(config["G_kwargs"], **common)
        kw["synthesis_kwargs"] = dict(kw["synthesis_kwargs"], num_fp16_res=num_fp16_res)
        net, state = build_generator(kw), "G_ema_state.npz"
    else:
        kw = dict(config["D_kwargs"], **common, num_fp16_res=num_fp16_res)
        net, state = build_discriminator(kw), "D_state.npz"
    with np.load(FIXTURE / state) as data:  # num_fp16_res does not change the weights' layout
        net.load_state_dict({k: torch.from_numpy(data[k]) for k in data.files}, strict=True)
    return net.eval()


@pytest.fixture(scope="module")
def expected():
    with np.load(FIXTURE / "expected.npz") as data:
        return {k: data[k] for k in data.files}


@pytest.mark.parametrize("num_fp16_res,max_tol,mean_tol", [(0, 2e-2, 2e-3), (3, 1e-1, 1.5e-2)])
@pytest.mark.parametrize("batch", [1, 4])
def test_generator_cuda_matches_cpu(expected, num_fp16_res, max_tol, mean_tol, batch):
    G = _load("G", num_fp16_res).cuda()
    dtypes = []
    G.synthesis.b32.conv1.register_forward_hook(lambda m, i, o: dtypes.append(o.dtype))
    z = torch.from_numpy(expected["z"][:batch]).cuda()
    with torch.no_grad():
        img = G(z, None, truncation_psi=0.7, noise_mode="const").float().cpu().numpy()
    assert dtypes == [torch.float16 if num_fp16_res else torch.float32]
    diff = np.abs(img - expected["img_psi07"][:batch])  # TF32 convs make even fp32 differ slightly
    assert diff.max() < max_tol and diff.mean() < mean_tol, (diff.max(), diff.mean())


def test_force_fp32_on_cuda(expected):
    G = _load("G", 3).cuda()
    ws = torch.from_numpy(expected["ws_psi1"]).cuda()
    with torch.no_grad():
        img = G.synthesis(ws, noise_mode="const", force_fp32=True).cpu().numpy()
    assert np.abs(img - expected["img_psi1"]).max() < 2e-2


@pytest.mark.parametrize("num_fp16_res", [0, 2])
def test_discriminator_cuda_matches_cpu(expected, num_fp16_res):
    D = _load("D", num_fp16_res).cuda()
    img = torch.from_numpy(expected["img_psi1"]).cuda()
    with torch.no_grad():
        logits = D(img, torch.zeros([4, 0], device="cuda")).cpu().numpy()
    tol = 5e-2 if num_fp16_res else 1e-2
    np.testing.assert_allclose(logits, expected["d_logits_psi1"], atol=tol, rtol=0)


def test_mixed_precision_training_step_has_finite_grads():
    G = _load("G", 3).cuda().train()
    D = _load("D", 2).cuda().train()
    z = torch.randn([4, 64], device="cuda")
    logits = D(G(z, None), torch.zeros([4, 0], device="cuda"))
    torch.nn.functional.softplus(-logits).mean().backward()
    grads = [p.grad for p in G.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
