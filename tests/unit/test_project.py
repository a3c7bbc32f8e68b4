"""gan_core.project: projection lowers its loss, leaves the model alone, is seeded, and its
options (W+, noise, the G-only fallback, stopping) do what they say; the CLI writes its
files; and on held-out images of a small model trained here, the D-feature loss beats the
pixel-only baseline on the SWD patch metric (the numbers are printed: run with -s)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from addon.core import limits
from gan_core import rules
from gan_core.generate import ModelRunner
from gan_core.nn.networks import build_discriminator, build_generator, preset_kwargs
from gan_core.project import (NO_DISCRIMINATOR_NOTE, ProjectionError, ProjectionStopped, learning_rate,
                              prepare_target, project, w_statistics)
from tests.support.training_data import colour_pattern


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Every test here runs on one torch thread (see tests/unit/conftest.py)."""


@pytest.fixture(scope="module")
def nets():
    torch.manual_seed(0)
    kwargs = preset_kwargs(16, "tiny")
    return build_generator(kwargs["G"]).eval(), build_discriminator(kwargs["D"]).eval()


def _state(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


# ----------------------------------------------------------------------------- inputs


def test_targets_are_the_centre_square_at_the_model_side():
    img = np.zeros((20, 40, 3), np.uint8)
    img[:, 10:30] = 200  # the centre square of a wide image
    out = prepare_target(img, 16)
    assert out.shape == (16, 16, 3) and out.dtype == np.uint8 and out.min() >= 190
    grey = prepare_target(np.full((16, 16), 7, np.uint8), 16)
    assert grey.shape == (16, 16, 3) and (grey == 7).all()
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[..., 1] = 99
    assert (prepare_target(rgba, 16)[..., 1] == 99).all()
    with pytest.raises(ProjectionError, match="uint8"):
        prepare_target(np.zeros((16, 16, 3), np.float32), 16)
    with pytest.raises(ProjectionError, match=r"\[H, W, 3\]"):
        prepare_target(np.zeros((16, 16, 2), np.uint8), 16)


def test_the_learning_rate_ramps_up_and_down():
    assert learning_rate(0.0) == 0.0
    assert learning_rate(0.5) == pytest.approx(0.1)
    assert 0 < learning_rate(0.9) < 0.1 and learning_rate(0.999) < 0.001


@pytest.mark.parametrize("kwargs, words", [
    ({"steps": 0}, "steps must be a whole number"),
    ({"steps": rules.MAX_PROJECTION_STEPS + 1}, "steps must be a whole number"),
    ({"loss": "vgg"}, "loss must be one of dfeat, pixel"),
    ({"seed": -1}, "seed must be a whole number"),
])
def test_bad_options_are_refused(nets, kwargs, words):
    G, D = nets
    with pytest.raises(ProjectionError, match=words):
        project(G, D, colour_pattern(16), **kwargs)


def test_a_discriminator_of_another_model_is_refused(nets):
    G, _ = nets
    with pytest.raises(ProjectionError, match="not from the same model"):
        project(G, build_discriminator(preset_kwargs(32, "tiny")["D"]), colour_pattern(16), steps=1)


def test_the_ui_offers_what_the_rules_allow():
    assert (limits.MIN_PROJECTION_STEPS, limits.MAX_PROJECTION_STEPS, limits.DEFAULT_PROJECTION_STEPS) == \
        (rules.MIN_PROJECTION_STEPS, rules.MAX_PROJECTION_STEPS, rules.DEFAULT_PROJECTION_STEPS)
    assert limits.values(limits.PROJECTION_LOSSES) == rules.PROJECTION_LOSSES
    from gan_core.latent import ws_count

    assert limits.MAX_MIX_LAYER == ws_count(rules.NETWORK_MAX_RESOLUTION)  # a crossover any model may have


# ----------------------------------------------------------------------------- the optimisation


@pytest.mark.parametrize("loss", ["dfeat", "pixel"])
def test_projection_lowers_its_loss_and_leaves_the_model_alone(nets, loss):
    G, D = nets
    g_before, d_before = _state(G), _state(D)
    target = ModelRunner(G, device="cpu").generate(seeds=[7])[0]  # reachable: the loss can fall far
    events = []
    result = project(G, D, target, steps=40, loss=loss, seed=1, on_progress=events.append)
    assert [e["step"] for e in events] == list(range(1, 41)) and events[-1]["steps"] == 40
    assert len(result.losses) == 40 and result.loss == loss and result.note is None
    assert result.final_loss < 0.5 * result.losses[0], (result.losses[0], result.final_loss)
    assert np.mean(result.losses[-5:]) < np.mean(result.losses[:5])
    assert result.ws.shape == (G.num_ws, G.w_dim) and result.w.shape == (G.w_dim,)
    assert np.array_equal(result.ws, np.tile(result.w, (G.num_ws, 1))) and result.latent is result.w
    assert result.image.shape == (16, 16, 3) and result.image.dtype == np.uint8
    w_start, _ = w_statistics(G, seed=1)  # this G never tracked w_avg: the start is the samples' mean
    start_err = np.abs(ModelRunner(G, device="cpu").synthesize_ws(w_start[None].numpy())[0].astype(int)
                       - target).mean()
    assert np.abs(result.image.astype(int) - target).mean() < start_err
    # the reconstruction is what the stored latent renders (noise not optimised)
    assert np.abs(ModelRunner(G, device="cpu").synthesize_ws(result.ws[None])[0].astype(int)
                  - result.image).max() <= 1
    for before, module in ((g_before, G), (d_before, D)):
        after = module.state_dict()
        assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in (*G.parameters(), *D.parameters()))


def test_w_plus_and_noise_options(nets):
    G, D = nets
    target = colour_pattern(16)
    noise_before = {k: v.clone() for k, v in G.state_dict().items() if k.endswith("noise_const")}
    result = project(G, D, target, steps=20, w_plus=True, optimize_noise=True, seed=3)
    assert result.w is None and result.w_plus and result.latent is result.ws
    assert result.ws.shape == (G.num_ws, G.w_dim)
    assert not np.allclose(result.ws[0], result.ws[-1])  # the layers moved apart
    assert len(result.noise) == len(noise_before) > 0
    for name, buf in result.noise.items():  # kept white: zero mean, unit variance
        assert abs(buf.mean()) < 1e-4 and abs(buf.std() - 1) < 1e-2, name
    after = {k: v for k, v in G.state_dict().items() if k.endswith("noise_const")}
    assert all(torch.equal(noise_before[k], after[k]) for k in noise_before)  # the model's own noise stays


def test_same_seed_same_result(nets):
    G, D = nets
    a = project(G, D, colour_pattern(16), steps=8, seed=5)
    b = project(G, D, colour_pattern(16), steps=8, seed=5)
    c = project(G, D, colour_pattern(16), steps=8, seed=6)
    assert np.array_equal(a.ws, b.ws) and a.losses == b.losses
    assert not np.array_equal(a.ws, c.ws)


def test_without_a_discriminator_dfeat_falls_back_with_a_note(nets):
    G, _ = nets
    result = project(G, None, colour_pattern(16), steps=3, loss="dfeat")
    assert result.loss == "pixel" and result.note == NO_DISCRIMINATOR_NOTE
    assert project(G, None, colour_pattern(16), steps=3, loss="pixel").note is None


def test_should_stop_ends_the_projection(nets):
    G, D = nets
    calls = []

    def stop():
        calls.append(1)
        return len(calls) > 3

    with pytest.raises(ProjectionStopped, match="after 3 of 50 steps"):
        project(G, D, colour_pattern(16), steps=50, should_stop=stop)


def test_the_lock_is_held_one_step_at_a_time(nets):
    G, D = nets
    held = []

    class Lock:
        depth = 0

        def __enter__(self):
            Lock.depth += 1
            held.append(Lock.depth)

        def __exit__(self, *exc):
            Lock.depth -= 1

    project(G, D, colour_pattern(16), steps=5, lock=Lock())
    assert len(held) == 5 + 2 and max(held) == 1  # setup, one per step, the final render; never nested


# ----------------------------------------------------------------------------- the command line


def test_cli_writes_the_latent_and_the_reconstruction(nets, tmp_path, capsys):
    from PIL import Image

    from gan_core.models.checkpoint import save_network
    from server.cli import main

    G, D = nets
    model = save_network(tmp_path / "m.safetensors", G, D=D)
    Image.fromarray(colour_pattern(24)).save(tmp_path / "in.png")
    out = tmp_path / "out"
    assert main(["project", "--model", str(model), "--image", str(tmp_path / "in.png"), "--steps", "5",
                 "--w-plus", "--device", "cpu", "-o", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["latent.json", "latent.npy", "reconstruction.png", "target.png"]
    latent = np.load(out / "latent.npy")
    info = json.loads((out / "latent.json").read_text())
    assert latent.shape == (G.num_ws, G.w_dim) and np.array_equal(np.array(info["w"], np.float32), latent)
    assert info["w_plus"] and info["loss"] == "dfeat" and len(info["losses"]) == 5 and info["note"] is None
    assert np.asarray(Image.open(out / "reconstruction.png")).shape == (16, 16, 3)
    assert "wrote latent.npy" in capsys.readouterr().out
    # a G-only model: the note says what the loss fell back to
    assert main(["project", "--model", str(save_network(tmp_path / "g.safetensors", G)), "--image",
                 str(tmp_path / "in.png"), "--steps", "2", "--noise", "--device", "cpu", "-o", str(out)]) == 0
    assert "no discriminator" in capsys.readouterr().out and (out / "noise.npz").exists()
    assert np.load(out / "latent.npy").shape == (G.w_dim,)


@pytest.mark.parametrize("args, words", [
    (["--image", "missing.png"], "no image at"),
    (["--steps", "0"], "--steps must be a whole number"),
])
def test_cli_refusals(nets, tmp_path, capsys, args, words):
    from PIL import Image

    from gan_core.models.checkpoint import save_network
    from server.cli import main

    model = save_network(tmp_path / "m.safetensors", nets[0])
    Image.fromarray(colour_pattern(16)).save(tmp_path / "in.png")
    base = {"--model": str(model), "--image": str(tmp_path / "in.png"), "-o": str(tmp_path / "out")}
    base.update(dict(zip(args[::2], args[1::2])))
    if base["--image"] == "missing.png":
        base["--image"] = str(tmp_path / "missing.png")
    argv = ["project"] + [x for kv in base.items() for x in kv]
    assert main(argv) == 1
    assert words in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- quality against pixel-only

# A small model that draws its discs well enough for the loss to matter (an untrained or barely
# trained generator reproduces neither sharp nor blurry discs, and then no loss can win):
# 800 steps of the micro networks on random discs, path-length regularisation off and a short
# EMA so G_ema keeps up; about a minute on one CPU thread.
QUALITY_TRAINING = dict(steps=800, snapshot_every=800, batch=8, preset="tiny", aug="off", grid_size=None,
                        device="cpu", report_every=800, pl_weight=0.0, ema_kimg=0.5)
HELD_OUT_SEED = 1234  # the training discs are random_discs(256, seed=0); these are others
HELD_OUT_IMAGES, QUALITY_STEPS = 10, 200


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255 ** 2 / max(mse, 1e-10)))


@pytest.mark.slow
def test_dfeat_beats_pixel_only_on_held_out_images(tmp_path):
    from gan_core.data.writer import write_images
    from gan_core.models.checkpoint import load_network
    from gan_core.train.loop import TrainingConfig, train
    from gan_core.train.metrics import SlicedWassersteinDistance
    from tests.support.training_data import MICRO_NETWORKS, random_discs

    data = write_images(tmp_path / "discs.zip", random_discs(256, res=32, seed=0))
    train(TrainingConfig(data=str(data), run_dir=str(tmp_path / "run"), network_kwargs=MICRO_NETWORKS,
                         **QUALITY_TRAINING))
    nets = load_network(tmp_path / "run" / "snapshots" / "network-000800.safetensors", parts=("G_ema", "D"))
    G, D = nets["G_ema"], nets["D"]
    targets = np.stack(random_discs(HELD_OUT_IMAGES, res=32, seed=HELD_OUT_SEED))
    scores = {}
    for loss in ("dfeat", "pixel"):  # the same start, steps, schedule and seed: only the loss differs
        results = [project(G, D, t, steps=QUALITY_STEPS, loss=loss, seed=0) for t in targets]
        recons = np.stack([r.image for r in results])
        swd = np.mean([SlicedWassersteinDistance(targets, seed=s)(recons)["swd"] for s in range(3)])
        psnr = np.mean([_psnr(r.image, t) for r, t in zip(results, targets)])
        assert all(r.final_loss < r.losses[0] for r in results), loss
        scores[loss] = (float(swd), float(psnr))
    print(f"\nprojection of {HELD_OUT_IMAGES} held-out 32 px discs, {QUALITY_STEPS} steps, W: "
          + ", ".join(f"{k}: SWD {v[0]:.4f}, PSNR {v[1]:.2f} dB" for k, v in scores.items()))
    assert scores["dfeat"][0] < scores["pixel"][0], scores
    assert scores["dfeat"][1] > scores["pixel"][1] - 1.0, scores  # the detail does not cost the likeness
