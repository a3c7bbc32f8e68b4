"""Training loop: config errors before any work, run-directory layout, exact resume, fallback
from damaged snapshots, SIGKILL recovery, graceful stop, transfer learning with Freeze-D, CLI."""

from __future__ import annotations

import copy
import json
import re
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from gan_core.data.writer import write_images
from gan_core.models.checkpoint import load_network, load_training_state, save_network
from gan_core.nn.networks import Discriminator, Generator
from gan_core.train.loop import TrainingConfigError, _Run, latest_snapshot, list_snapshots, train
from tests.support.training_data import micro8_config, noise_images


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Every test here runs on one torch thread (see tests/unit/conftest.py)."""


@pytest.fixture
def data8(tmp_path):
    return write_images(tmp_path / "data8.zip", noise_images(12, res=8))


def _events(run_dir) -> list[dict]:
    return [json.loads(line) for line in (Path(run_dir) / "progress.jsonl").read_text().splitlines()]


def _tensors(path, part="G_ema") -> dict:
    return {k: v.clone() for k, v in load_network(path, parts=(part,))[part].state_dict().items()}


# ------------------------------------------------------------------ bad input

@pytest.mark.parametrize("change, message", [
    (dict(steps=0), "steps must be"),
    (dict(snapshot_every=0), "snapshot_every must be"),
    (dict(batch=6), "multiple of 4"),
    (dict(resolution=12), "power of two"),
    (dict(resolution=16), "resolution 16 was asked"),
    (dict(aug="sometimes"), "aug must be"),
    (dict(aug_p=1.5), "aug_p"),
    (dict(freeze_d=5), "freeze_d=5"),
    (dict(metrics=("is",)), "unknown metric"),
    (dict(preset="huge"), "preset must be"),
    (dict(augment_preset="xyz"), "augment_preset must be"),
    (dict(grid_size=(0, 3)), "grid_size"),
    (dict(gamma=-1.0), "gamma must be"),
])
def test_bad_options_fail_before_any_work(tmp_path, data8, change, message):
    run_dir = tmp_path / "run"
    with pytest.raises(TrainingConfigError, match=message):
        train(micro8_config(data8, run_dir, **change))
    assert not run_dir.exists()


def test_batch_must_split_over_gpus(tmp_path, data8):
    with pytest.raises(TrainingConfigError, match="cannot be split evenly over 2 GPUs"):
        micro8_config(data8, tmp_path / "r", batch=5).validate(world_size=2)


def test_missing_and_empty_datasets_are_refused(tmp_path):
    with pytest.raises(TrainingConfigError, match="not found"):
        train(micro8_config(tmp_path / "nope.zip", tmp_path / "r"))
    import zipfile
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("dataset.json", "{}")
    with pytest.raises(TrainingConfigError, match="no images"):
        train(micro8_config(empty, tmp_path / "r"))
    odd = write_images(tmp_path / "odd.zip", noise_images(2, res=12))
    with pytest.raises(TrainingConfigError, match="power-of-two"):
        train(micro8_config(odd, tmp_path / "r"))
    with pytest.raises(TrainingConfigError, match="unknown training option"):
        train({"data": str(odd), "run_dir": str(tmp_path / "r"), "stepz": 3})
    assert not (tmp_path / "r").exists()


def test_fid_without_inception_weights_is_refused(tmp_path, data8, monkeypatch):
    monkeypatch.delenv("LATENT_STUDIO_INCEPTION", raising=False)
    with pytest.raises(TrainingConfigError, match="LATENT_STUDIO_INCEPTION"):
        train(micro8_config(data8, tmp_path / "r", metrics=("fid",)))


def _micro_base(path, res=8, with_d=True):
    torch.manual_seed(1)
    G = Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=res, img_channels=3,
                  mapping_kwargs={"num_layers": 2}, synthesis_kwargs={"channel_base": 128, "channel_max": 16})
    D = Discriminator(c_dim=0, img_resolution=res, img_channels=3, channel_base=128, channel_max=16,
                      epilogue_kwargs={"mbstd_group_size": 4})
    G_ema = copy.deepcopy(G)
    with torch.no_grad():  # a distinct EMA, so a loader that mixes up G and G_ema shows
        for p in G_ema.parameters():
            p.add_(0.01 * torch.randn_like(p))
    return save_network(path, G_ema, G=G, D=D if with_d else None)


def test_base_checkpoint_errors(tmp_path, data8):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(TrainingConfigError, match="not a generator checkpoint"):
        train(micro8_config(data8, tmp_path / "r", base=str(junk), network_kwargs=None))
    base16 = _micro_base(tmp_path / "b16.safetensors", res=16)
    with pytest.raises(TrainingConfigError, match="16 px images but the dataset is 8 px"):
        train(micro8_config(data8, tmp_path / "r", base=str(base16), network_kwargs=None))
    with pytest.raises(TrainingConfigError, match="base checkpoint not found"):
        train(micro8_config(data8, tmp_path / "r", base=str(tmp_path / "missing.safetensors"), network_kwargs=None))
    assert not (tmp_path / "r").exists()


# ------------------------------------------------------------------ layout and events

def test_run_directory_layout_and_events(tmp_path, data8):
    run_dir = tmp_path / "run"
    seen = []
    summary = train(micro8_config(data8, run_dir, steps=5, snapshot_every=2, metrics=("swd",), metric_images=8),
                    on_progress=seen.append)
    assert summary["step"] == 5 and not summary["stopped"]
    snaps = run_dir / "snapshots"
    steps = [s["step"] for s in list_snapshots(run_dir)]
    assert steps == [0, 2, 4, 5]  # step 0, every 2, and the end
    for s in steps:
        for name in (f"network-{s:06d}.safetensors", f"state-{s:06d}.pt", f"grid-{s:06d}.png"):
            assert (snaps / name).is_file(), name
    index = json.loads((snaps / "index.json").read_text())
    assert [e["step"] for e in index["snapshots"]] == steps
    assert json.loads((run_dir / "config.json").read_text())["steps"] == 5

    events = _events(run_dir)
    assert [e["event"] for e in events] == [e["event"] for e in seen]
    start = events[0]
    assert start["event"] == "start" and start["preset"] == "tiny" and start["resolution"] == 8
    assert start["gamma"] == pytest.approx(0.0002 * 8 ** 2 / 4)  # the reference heuristic
    assert start["lr"] == 0.0025 and start["ema_kimg"] == pytest.approx(4 * 10 / 32)
    progress = [e for e in events if e["event"] == "progress"]
    assert [e["step"] for e in progress] == [1, 2, 3, 4, 5]
    for e in progress:
        assert {"step", "kimg", "losses", "ada_p", "r_t", "sec_per_kimg", "images_per_s", "eta_s"} <= set(e)
        assert e["kimg"] == pytest.approx(e["step"] * 4 / 1000)
    assert {"G", "D", "r1", "pl"} <= set().union(*(e["losses"] for e in progress))
    snap_events = [e for e in events if e["event"] == "snapshot"]
    assert all(np.isfinite(e["swd"]) for e in snap_events)
    assert events[-1]["event"] == "done"

    # exported network carries the provenance the server and the add-on show
    from gan_core.models.checkpoint import read_network_config
    cfg = read_network_config(snaps / "network-000005.safetensors")
    assert cfg["step"] == 5 and cfg["kimg"] == pytest.approx(0.02)
    assert cfg["meta"]["dataset"]["count"] == 12 and cfg["meta"]["training"]["batch"] == 4
    state = load_training_state(snaps / "state-000005.pt")
    assert state["step"] == 5 and state["nimg"] == 20
    assert {"G", "D", "G_ema", "G_opt", "D_opt", "rng", "pl_mean", "augment_p"} <= set(state)
    assert latest_snapshot(run_dir)["step"] == 5

    # EMA differs from G after training (ramp-up makes it lag behind)
    G_ema, G = _tensors(snaps / "network-000005.safetensors"), _tensors(snaps / "network-000005.safetensors", "G")
    assert any(not torch.equal(G_ema[k], G[k]) for k in G)


def test_grid_is_the_same_latents_every_snapshot(tmp_path, data8):
    from PIL import Image
    run_dir = tmp_path / "run"
    train(micro8_config(data8, run_dir, steps=2, snapshot_every=1, aug="off", grid_size=(3, 2)))
    grids = [np.asarray(Image.open(run_dir / "snapshots" / f"grid-{s:06d}.png")) for s in (0, 1, 2)]
    assert grids[0].shape == (16, 24, 3)
    assert not np.array_equal(grids[0], grids[2])
    # identical networks render identical grids: same run seed -> same fixed latents
    other = tmp_path / "other"
    train(micro8_config(data8, other, steps=1, snapshot_every=1, aug="off", grid_size=(3, 2)))
    assert np.array_equal(grids[0], np.asarray(Image.open(other / "snapshots" / "grid-000000.png")))


# ------------------------------------------------------------------ resume

def test_resume_continues_exactly_where_it_stopped(tmp_path, data8):
    # Interrupted at step 3, mid-way through an ADA interval (updates at 4 and 8): the resumed run
    # must end bit-identical to an uninterrupted one (weights, optimisers, RNG, data order, ADA).
    opts = dict(snapshot_every=3, aug_p=0.3)
    straight = tmp_path / "straight"
    train(micro8_config(data8, straight, steps=8, **opts))
    broken = tmp_path / "broken"
    first = train(micro8_config(data8, broken, steps=3, **opts))
    assert first["step"] == 3
    second = train(micro8_config(data8, broken, steps=8, **opts))
    assert second["step"] == 8 and second["trained_steps"] == 5
    resumed = [e for e in _events(broken) if e["event"] == "resumed"]
    assert resumed and resumed[0]["step"] == 3

    a = load_training_state(straight / "snapshots" / "state-000008.pt")
    b = load_training_state(broken / "snapshots" / "state-000008.pt")
    assert a["augment_p"] != 0.3  # ADA moved p, so its controller state mattered
    assert a["augment_p"] == b["augment_p"] and a["nimg"] == b["nimg"]
    for part in ("G", "D", "G_ema"):
        for k in a[part]:
            assert torch.equal(a[part][k], b[part][k]), f"{part}.{k} differs after resume"
    assert torch.equal(a["pl_mean"], b["pl_mean"])


def test_finished_run_is_not_retrained(tmp_path, data8):
    run_dir = tmp_path / "run"
    events = []
    train(micro8_config(data8, run_dir, steps=2, grid_size=None), on_progress=events.append)
    assert all(e["grid"] is None for e in events if e["event"] == "snapshot")
    assert all(s["grid"] is None for s in list_snapshots(run_dir))
    assert not list((run_dir / "snapshots").glob("grid-*.png"))
    before = (run_dir / "snapshots" / "state-000002.pt").stat().st_mtime_ns
    summary = train(micro8_config(data8, run_dir, steps=2))
    assert summary["trained_steps"] == 0
    assert (run_dir / "snapshots" / "state-000002.pt").stat().st_mtime_ns == before


def _truncate_state(snaps):
    p = snaps / "state-000004.pt"
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def _remove_network(snaps):
    (snaps / "network-000004.safetensors").unlink()


def _truncate_network(snaps):
    p = snaps / "network-000004.safetensors"
    p.write_bytes(p.read_bytes()[:-100])  # the header is whole; the last tensor is cut short


def _garble_network(snaps):
    p = snaps / "network-000004.safetensors"
    data = bytearray(p.read_bytes())
    data[8:40] = b"#" * 32  # breaks the JSON header
    p.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_truncate_state, _remove_network, _truncate_network, _garble_network])
def test_damaged_newest_snapshot_falls_back_to_previous(tmp_path, data8, damage):
    run_dir = tmp_path / "run"
    train(micro8_config(data8, run_dir, steps=4, snapshot_every=2))
    damage(run_dir / "snapshots")
    assert latest_snapshot(run_dir)["step"] == 2
    summary = train(micro8_config(data8, run_dir, steps=5, snapshot_every=2))
    resumed = [e for e in _events(run_dir) if e["event"] == "resumed"][-1]
    assert resumed["step"] == 2 and resumed["skipped_snapshots"] == [4]
    assert summary["step"] == 5 and summary["trained_steps"] == 3
    assert [s["step"] for s in list_snapshots(run_dir)] == [0, 2, 4, 5]
    load_training_state(run_dir / "snapshots" / "state-000004.pt")  # rewritten, valid again


def test_unreadable_index_falls_back_to_the_files(tmp_path, data8):
    run_dir = tmp_path / "run"
    train(micro8_config(data8, run_dir, steps=2, snapshot_every=1))
    (run_dir / "snapshots" / "index.json").write_text("{not json")
    assert [s["step"] for s in list_snapshots(run_dir)] == [0, 1, 2]
    summary = train(micro8_config(data8, run_dir, steps=3, snapshot_every=1))
    assert summary["trained_steps"] == 1
    assert json.loads((run_dir / "snapshots" / "index.json").read_text())["snapshots"][-1]["step"] == 3


def test_all_snapshots_damaged_starts_afresh(tmp_path, data8):
    run_dir = tmp_path / "run"
    train(micro8_config(data8, run_dir, steps=2, snapshot_every=1))
    for p in (run_dir / "snapshots").glob("state-*.pt"):
        p.write_bytes(b"garbage")
    assert latest_snapshot(run_dir) is None
    summary = train(micro8_config(data8, run_dir, steps=2, snapshot_every=1))
    assert summary["trained_steps"] == 2
    failed = [e for e in _events(run_dir) if e["event"] == "resume_failed"]
    assert failed and failed[0]["skipped_snapshots"] == [0, 1, 2]
    assert [s["step"] for s in list_snapshots(run_dir)] == [0, 1, 2]


_KILL_SCRIPT = """
import sys, torch
torch.set_num_threads(1)
from gan_core.train.loop import TrainingConfig, train
cfg = TrainingConfig(**__import__("json").loads(sys.argv[1]))
train(cfg)
"""


def test_sigkill_mid_training_resumes_from_last_snapshot(tmp_path, data8):
    run_dir = tmp_path / "run"
    cfg = micro8_config(data8, run_dir, steps=100000, snapshot_every=3).to_dict()
    proc = subprocess.Popen([sys.executable, "-c", _KILL_SCRIPT, json.dumps(cfg)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 240
        while time.time() < deadline:
            snaps = list_snapshots(run_dir) if (run_dir / "snapshots" / "index.json").exists() else []
            if any(s["step"] >= 3 for s in snaps):
                break
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.2)
        else:
            pytest.fail("no snapshot within 240 s")
        time.sleep(0.3)  # let it get into the next steps (maybe mid-write)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
    last = latest_snapshot(run_dir)["step"]
    assert last >= 3
    summary = train(micro8_config(data8, run_dir, steps=last + 2, snapshot_every=3))
    resumed = [e for e in _events(run_dir) if e["event"] == "resumed"][-1]
    assert resumed["step"] == last
    assert summary["step"] == last + 2 and summary["trained_steps"] == 2
    assert all(s["step"] <= last + 2 for s in list_snapshots(run_dir))
    assert not list((run_dir / "snapshots").glob(".*.tmp"))  # half-written files of the killed run are gone


def test_should_stop_ends_with_a_final_snapshot(tmp_path, data8):
    run_dir = tmp_path / "run"
    calls = []

    def should_stop():
        calls.append(1)
        return len(calls) > 3

    summary = train(micro8_config(data8, run_dir, steps=50, snapshot_every=20, aug="fixed", aug_p=0.5,
                            augment_preset="bgcc"), should_stop=should_stop)
    assert summary["stopped"] and summary["step"] == 3
    assert [s["step"] for s in list_snapshots(run_dir)] == [0, 3]


# ------------------------------------------------------------------ transfer learning

def test_fine_tune_from_base_with_frozen_d_blocks(tmp_path, data8):
    base = _micro_base(tmp_path / "base.safetensors")
    run_dir = tmp_path / "run"
    train(micro8_config(data8, run_dir, base=str(base), network_kwargs=None, steps=2, freeze_d=1, aug="off"))
    before, after = _tensors(base, "D"), _tensors(run_dir / "snapshots" / "network-000002.safetensors", "D")
    # b8 is the highest-resolution D block: frozen; b4 (the epilogue) keeps training
    frozen = [k for k in before if k.startswith("b8.") and not k.endswith("resample_filter")]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("b4."))
    g_before, g_after = _tensors(base, "G"), _tensors(run_dir / "snapshots" / "network-000002.safetensors", "G")
    assert any(not torch.equal(g_before[k], g_after[k]) for k in g_before)
    # step-0 snapshot is the base itself (G and G_ema each kept)
    for part in ("G_ema", "G"):
        g0, b0 = _tensors(run_dir / "snapshots" / "network-000000.safetensors", part), _tensors(base, part)
        assert all(torch.equal(g0[k], b0[k]) for k in g0), part


def test_generator_only_base_gets_a_fresh_discriminator(tmp_path, data8):
    base = _micro_base(tmp_path / "g_only.safetensors", with_d=False)
    summary = train(micro8_config(data8, tmp_path / "run", base=str(base), network_kwargs=None, steps=1, aug="off"))
    assert summary["step"] == 1


# ------------------------------------------------------------------ CLI

def test_cli_train_and_its_errors(tmp_path, data8, capsys):
    from server.cli import main
    out = tmp_path / "cli_run"
    assert main(["train", "--data", str(data8), "-o", str(out), "--steps", "0"]) == 1
    assert "steps must be" in capsys.readouterr().err
    assert not out.exists()
    rc = main(["train", "--data", str(data8), "-o", str(out), "--steps", "1", "--batch", "4", "--preset", "tiny",
               "--aug", "fixed", "--aug-p", "0.2", "--mirror", "--no-pl", "--snapshot-every", "1", "--device", "cpu",
               "--quiet"])
    assert rc == 0
    assert "finished at step 1" in capsys.readouterr().out
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["mirror"] and cfg["pl_weight"] == 0 and cfg["aug"] == "fixed"
    assert load_training_state(out / "snapshots" / "state-000001.pt")["augment_p"] == pytest.approx(0.2)


def test_cli_resume_says_so_and_a_finished_run_has_nothing_to_do(tmp_path, data8, capsys, one_torch_thread):
    from server.cli import main
    out = tmp_path / "run"
    common = ["train", "--data", str(data8), "-o", str(out), "--batch", "4", "--preset", "tiny", "--device", "cpu",
              "--snapshot-every", "2", "--report-every", "1"]
    assert main([*common, "--steps", "6"]) == 0
    first = capsys.readouterr()
    assert "estimate:" in first.out and "MB per snapshot" in first.out
    assert " 0%|" not in first.err  # the bar appears with the first progress line, not as a stray 0%
    assert main([*common, "--steps", "8"]) == 0
    resumed = capsys.readouterr()
    assert "resuming from step 6" in resumed.out
    rates = [float(r) for r in re.findall(r"([0-9.]+)step/s", resumed.err)]
    assert all(rate < 10_000 for rate in rates), rates  # the bar counts only the new steps
    before = (out / "progress.jsonl").read_text()
    assert main([*common, "--steps", "8"]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert (out / "progress.jsonl").read_text() == before  # nothing was loaded or run


def test_cli_base_by_model_name(tmp_path, data8, capsys, monkeypatch, one_torch_thread):
    from gan_core.nn.networks import build_generator
    from gan_core.models.checkpoint import save_network
    from server.cli import main
    from tests.support.training_data import MICRO8_NETWORKS
    monkeypatch.setenv("LATENT_STUDIO_DATA", str(tmp_path / "data"))
    G = build_generator(dict(c_dim=0, img_resolution=8, img_channels=3, **MICRO8_NETWORKS["G"]))
    save_network(tmp_path / "data" / "models" / "micro.safetensors", G)
    common = ["train", "--data", str(data8), "--batch", "4", "--steps", "1", "--device", "cpu", "--quiet"]
    assert main([*common, "-o", str(tmp_path / "ft"), "--base", "micro"]) == 0
    assert json.loads((tmp_path / "ft" / "config.json").read_text())["base"].endswith("models/micro.safetensors")
    assert main([*common, "-o", str(tmp_path / "ft2"), "--base", "nope"]) == 1
    err = capsys.readouterr().err
    assert "'nope' is neither a file nor a model" in err and "micro" in err


def test_cli_ctrl_c_stops_gracefully_with_a_final_snapshot(tmp_path, data8):
    out = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "server.cli", "train", "--data", str(data8), "-o", str(out),
                             "--steps", "100000", "--batch", "4", "--preset", "tiny", "--snapshot-every", "100000",
                             "--device", "cpu", "--report-every", "1", "--quiet"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 240
        while time.time() < deadline:
            progress = out / "progress.jsonl"
            if progress.exists() and '"event": "progress"' in progress.read_text():
                break
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr.decode()  # scripts can tell it was interrupted
    assert "stopped early" in stdout.decode() and "run the same command again" in stderr.decode()
    steps = [s["step"] for s in list_snapshots(out)]
    assert steps[0] == 0 and len(steps) == 2 and steps[1] >= 1  # the final snapshot where it stopped


def test_ada_tunes_p_from_the_sign_of_real_logits(tmp_path):
    # Two images: D soon tells them from fakes (r_t > 0.6) and p must rise; when r_t drops below
    # the target p must fall. Progress lines every 4 steps coincide with ADA's updates.
    data = write_images(tmp_path / "two.zip", noise_images(2, res=8))
    events = []
    train(micro8_config(data, tmp_path / "run", steps=40, snapshot_every=1000, ada_kimg=0.2, report_every=4),
          on_progress=events.append)
    progress = [e for e in events if e["event"] == "progress"]
    step_size = 4 * 4 / (0.2 * 1000)
    rises = 0
    prev_p = 0.0
    for e in progress:
        # the reference's rule: p moves by sign(r_t - target) steps (no move when r_t hits 0.6)
        expected = min(max(prev_p + np.sign(e["r_t"] - 0.6) * step_size, 0.0), 1.0)
        assert e["ada_p"] == pytest.approx(expected), e
        rises += e["ada_p"] > prev_p
        prev_p = e["ada_p"]
    assert rises >= 1


def test_class_conditional_training(tmp_path):
    data = write_images(tmp_path / "labelled.zip", noise_images(8, res=8), labels=[0, 1, 2, 0, 1, 2, 0, 1])
    run_dir = tmp_path / "run"
    train(micro8_config(data, run_dir, steps=2, snapshot_every=2))
    nets = load_network(run_dir / "snapshots" / "network-000002.safetensors", parts=("G_ema", "D"))
    assert nets["G_ema"].c_dim == 3 and nets["D"].c_dim == 3
    assert nets["config"]["meta"]["dataset"]["label_dim"] == 3


class _TinyFeatureNet(torch.nn.Module):
    """Stands in for the Inception file (not downloadable here) with the same call signature:
    uint8 NCHW in, [N, D] features out. A real (random) conv net, saved as TorchScript."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 16, 3)

    def forward(self, x: torch.Tensor, return_features: bool = True) -> torch.Tensor:
        return torch.relu(self.conv(x.float() / 255)).mean(dim=[2, 3])


def test_fid_and_kid_at_snapshots_with_local_feature_network(tmp_path, data8, monkeypatch):
    weights = tmp_path / "features.pt"
    torch.jit.save(torch.jit.script(_TinyFeatureNet()), str(weights))
    monkeypatch.setenv("LATENT_STUDIO_INCEPTION", str(weights))
    events = []
    train(micro8_config(data8, tmp_path / "run", steps=1, snapshot_every=1, metrics=("fid", "kid", "swd"),
                  metric_images=8), on_progress=events.append)
    snaps = [e for e in events if e["event"] == "snapshot"]
    assert len(snaps) == 2
    for e in snaps:
        assert e["fid"] >= 0 and np.isfinite(e["kid"]) and e["swd"] > 0
    assert list_snapshots(tmp_path / "run")[-1]["metrics"]["fid"] == snaps[-1]["fid"]


def test_ada_counts_the_real_logits_of_the_r1_phase_too(tmp_path):
    """As the reference's r_t: every D forward on reals adds its signs, the lazy R1 phase's
    (steps 0, 16, ...) as well as the main phase's."""
    data = write_images(tmp_path / "d.zip", noise_images(4, res=8))
    run = _Run(micro8_config(data, tmp_path / "run", steps=8, r1_interval=16, grid_size=None), None, None)
    run.setup()
    counts = []
    for _ in range(3):
        run.train_step()
        counts.append(run.ada.state_dict()["partial"][1])
    assert counts == [2 * 4, 3 * 4, 4 * 4]  # step 0: main + R1; steps 1, 2: main only
