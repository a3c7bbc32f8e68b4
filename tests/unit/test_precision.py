"""The precision option: the rule, the networks' reduced-precision blocks, training and
generation on the CPU (fp32 and bf16 run, fp16 is refused), the CLI and the add-on's copy.

On the CPU fp16 is refused because it has no fast kernels there (about 10x slower than fp32,
benchmarks/bench_precision_cpu.py); bf16 runs and must stay close to fp32.
"""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import torch

from addon.core import limits
from gan_core import rules
from gan_core.data.writer import write_images
from gan_core.generate import GenerateError, ModelRunner
from gan_core.models.checkpoint import load_network
from gan_core.nn.networks import NetworkConfigError, build_discriminator, build_generator, set_precision
from gan_core.train.loop import TrainingConfig, TrainingConfigError, train
from server.cli import build_parser
from server.cli.train import config_from_args
from tests.support.training_data import noise_images
from tests.support.reference_fixture import load_arrays, load_state

# bf16 keeps 8 bits of mantissa (~0.4% per rounding): images in [-1, 1] may move by a few
# hundredths at a pixel after three reduced-precision blocks, much less on average.
BF16_MAX_ERR, BF16_MEAN_ERR = 0.1, 0.01


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """One torch thread (tests/unit/conftest.py): the machine is shared."""


@pytest.fixture(scope="module")
def expected():
    return load_arrays("expected.npz")


def _fixture_net(expected, kind: str, num_fp16_res: int):
    """The reference fixture's network with its top `num_fp16_res` resolutions marked for
    reduced precision (a runtime flag: the weights are the same)."""
    config = json.loads(str(expected["config"]))
    if kind == "G":
        kw = dict(config["G_kwargs"], c_dim=0, img_resolution=32, img_channels=3)
        kw["synthesis_kwargs"] = dict(kw["synthesis_kwargs"], num_fp16_res=num_fp16_res)
        net = build_generator(kw)
        net.load_state_dict(load_state("G_ema_state.npz"))
    else:
        kw = dict(config["D_kwargs"], c_dim=0, img_resolution=32, img_channels=3, num_fp16_res=num_fp16_res)
        net = build_discriminator(kw)
        net.load_state_dict(load_state("D_state.npz"))
    return net.eval()


# ------------------------------------------------------------------ the rule


def test_auto_resolves_per_device():
    assert rules.check_precision("auto", "cpu") == "fp32"
    assert rules.check_precision("auto", "cuda") == "fp16"
    assert rules.check_precision("bf16", "cpu") == "bf16"
    assert [rules.check_precision(p, "cuda") for p in rules.PRECISIONS] == list(rules.PRECISIONS)
    assert rules.check_precision("fp16") == "fp16"  # no device: only the choice is checked


@pytest.mark.parametrize("value, device, words", [
    ("fp16", "cpu", "precision fp16 is not offered on the CPU"),
    ("fp64", None, "precision must be one of auto, fp32, fp16, bf16, got 'fp64'"),
    (16, "cuda", "precision must be one of"),
    ("FP32", "cpu", "precision must be one of"),
    ("fp32", "mps", "precision: unknown device type 'mps'; use cpu, cuda"),
])
def test_bad_precisions_are_refused_with_the_reason(value, device, words):
    with pytest.raises(rules.RuleError, match="^" + re.escape(words)) as err:
        rules.check_precision(value, device)
    if value == "fp16":
        assert "use fp32 or bf16" in str(err.value)


def test_every_device_offers_its_auto_choice():
    for device, precision in rules.AUTO_PRECISION.items():
        assert precision in rules.DEVICE_PRECISIONS[device]
    assert set(rules.DEVICE_PRECISIONS) == set(rules.AUTO_PRECISION)


def test_addon_offers_exactly_the_rules_choices():
    assert limits.values(limits.PRECISIONS) == rules.PRECISION_CHOICES
    assert all(len(c) == 3 and all(isinstance(x, str) for x in c) for c in limits.PRECISIONS)


# ------------------------------------------------------------------ the networks


def test_bf16_generator_on_cpu_stays_close_to_fp32(expected):
    G = _fixture_net(expected, "G", num_fp16_res=3)  # 32, 16 and 8 px blocks reduced
    seen = []
    G.synthesis.b32.conv1.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    G.synthesis.b4.conv1.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    z = torch.from_numpy(expected["z"])
    with torch.no_grad():
        default = G(z, None, noise_mode="const")
        set_precision(G, "bf16")
        bf16 = G(z, None, noise_mode="const")
        forced = G(z, None, noise_mode="const", force_fp32=True)
        set_precision(G, "fp32")
        fp32 = G(z, None, noise_mode="const")
    # default on the CPU: fp32 throughout; bf16: the marked blocks only; force_fp32 wins
    assert seen == [torch.float32, torch.float32, torch.float32, torch.bfloat16] + [torch.float32] * 4
    want = expected["img_psi1"]
    for img in (default, forced, fp32):
        np.testing.assert_allclose(img.numpy(), want, atol=1e-4, rtol=0)
    err = np.abs(bf16.float().numpy() - want)
    assert bf16.dtype == torch.float32 and np.isfinite(err).all()
    assert 0 < err.max() < BF16_MAX_ERR and err.mean() < BF16_MEAN_ERR, (err.max(), err.mean())


def test_bf16_discriminator_on_cpu_stays_close_to_fp32(expected):
    D = _fixture_net(expected, "D", num_fp16_res=2)
    imgs = torch.from_numpy(expected["img_psi1"])
    with torch.no_grad():
        fp32 = D(imgs, None)
        bf16 = set_precision(D, "bf16")(imgs, None)
    np.testing.assert_allclose(fp32.numpy(), expected["d_logits_psi1"], atol=1e-4, rtol=0)
    scale = float(np.abs(expected["d_logits_psi1"]).max())
    err = float((bf16.float() - fp32).abs().max())
    assert 0 < err < 0.05 * scale, (err, scale)


def test_precision_none_restores_the_device_default(expected):
    G = _fixture_net(expected, "G", num_fp16_res=3)
    z = torch.from_numpy(expected["z"])
    with torch.no_grad():
        set_precision(G, "bf16")
        set_precision(G, None)
        img = G(z, None, noise_mode="const")
    np.testing.assert_allclose(img.numpy(), expected["img_psi1"], atol=1e-4, rtol=0)


def test_unknown_precision_is_a_network_error(expected):
    G = _fixture_net(expected, "G", num_fp16_res=1)
    with pytest.raises(NetworkConfigError, match="unknown precision 'half'"):
        set_precision(G, "half")


# ------------------------------------------------------------------ training

# 16 px micro networks with their top two resolutions marked for reduced precision.
REDUCED_MICRO = {
    "G": {"z_dim": 16, "w_dim": 16, "synthesis_kwargs": {"channel_base": 256, "channel_max": 16, "num_fp16_res": 2}},
    "D": {"channel_base": 256, "channel_max": 16, "num_fp16_res": 2},
}


def _config(tmp_path, **changes):
    data = write_images(tmp_path / "d16.zip", noise_images(8, res=16))
    options = dict(data=str(data), run_dir=str(tmp_path / "run"), steps=4, snapshot_every=4, batch=4,
                   preset="tiny", network_kwargs=REDUCED_MICRO, aug="fixed", aug_p=0.5, report_every=1,
                   grid_size=None, device="cpu", pl_interval=2, r1_interval=2)
    options.update(changes)
    return TrainingConfig(**options)


def test_fp16_training_on_cpu_is_refused_before_any_work(tmp_path):
    config = _config(tmp_path, precision="fp16")
    with pytest.raises(TrainingConfigError, match="precision fp16 is not offered on the CPU.*use fp32 or bf16"):
        train(config)
    assert not (tmp_path / "run").exists()


def test_unknown_precision_is_a_config_error(tmp_path):
    with pytest.raises(TrainingConfigError, match="precision must be one of auto, fp32, fp16, bf16, got 'half'"):
        _config(tmp_path, precision="half").validate()


def test_bf16_training_on_cpu_runs_in_bf16_and_stays_finite(tmp_path, monkeypatch):
    import gan_core.nn.networks as networks

    dtypes = set()
    forward = networks.SynthesisBlock.forward

    def spy(self, x, img, ws, **kw):  # records the dtype each marked block computed in
        out = forward(self, x, img, ws, **kw)
        if self.use_fp16:
            dtypes.add(out[0].dtype)
        return out

    monkeypatch.setattr(networks.SynthesisBlock, "forward", spy)
    events = []
    summary = train(_config(tmp_path, precision="bf16"), on_progress=events.append)
    assert summary["step"] == 4
    assert dtypes == {torch.bfloat16}
    start = next(e for e in events if e["event"] == "start")
    assert start["precision"] == "bf16"
    losses = [v for e in events if e["event"] == "progress" for v in e["losses"].values()]
    assert losses and all(math.isfinite(v) for v in losses)
    assert {"G", "D", "r1", "pl"} <= {k for e in events if e["event"] == "progress" for k in e["losses"]}
    nets = load_network(summary["snapshot"]["network"], parts=("G_ema", "G", "D"))
    for part in ("G_ema", "G", "D"):
        assert all(torch.isfinite(t).all() for t in nets[part].state_dict().values()), part


def test_auto_precision_on_cpu_trains_in_fp32(tmp_path):
    events = []
    train(_config(tmp_path, steps=1, snapshot_every=1), on_progress=events.append)
    assert next(e for e in events if e["event"] == "start")["precision"] == "fp32"


# ------------------------------------------------------------------ generation


def test_model_runner_bf16_on_cpu_is_close_to_fp32(expected):
    G = _fixture_net(expected, "G", num_fp16_res=3)
    fp32 = ModelRunner(G, device="cpu").generate(seeds=[0, 1], psi=1.0)
    bf16_runner = ModelRunner(G, device="cpu", precision="bf16")
    assert bf16_runner.precision == "bf16"
    bf16 = bf16_runner.generate(seeds=[0, 1], psi=1.0)
    diff = np.abs(fp32.astype(int) - bf16.astype(int))
    # uint8 levels: 127.5 per unit of the [-1, 1] image (see BF16_MAX_ERR)
    assert diff.max() <= math.ceil(BF16_MAX_ERR * 127.5) and diff.mean() < BF16_MEAN_ERR * 127.5


@pytest.mark.parametrize("precision, words", [("fp16", "precision fp16 is not offered on the CPU"),
                                              ("double", "precision must be one of")])
def test_model_runner_refuses_bad_precision(expected, precision, words):
    G = _fixture_net(expected, "G", num_fp16_res=1)
    with pytest.raises(GenerateError, match=words):
        ModelRunner(G, device="cpu", precision=precision)


# ------------------------------------------------------------------ the command line


def test_cli_train_passes_precision_and_refuses_unknown(capsys):
    parser = build_parser()
    args = parser.parse_args(["train", "--data", "d.zip", "-o", "run", "--precision", "bf16"])
    assert config_from_args(args).precision == "bf16"
    assert config_from_args(parser.parse_args(["train", "--data", "d.zip", "-o", "run"])).precision == "auto"
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--data", "d.zip", "-o", "run", "--precision", "fp64"])
    assert "invalid choice: 'fp64'" in capsys.readouterr().err
