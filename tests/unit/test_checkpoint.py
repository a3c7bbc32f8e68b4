"""Checkpoint format: round trips, atomic writes, and clear errors for damaged or foreign files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from gan_core.models.checkpoint import (
    CheckpointError,
    check_network_file,
    load_network,
    load_training_state,
    read_network_config,
    save_network,
    save_training_state,
    sidecar_path,
)
from gan_core.nn.networks import Discriminator, Generator


def _nets(channel_max=16, seed=0):
    torch.manual_seed(seed)
    kw = dict(channel_base=128, channel_max=channel_max, conv_clamp=256)
    G = Generator(8, 0, 8, 16, 3, mapping_kwargs={"num_layers": 1}, synthesis_kwargs=kw)
    G_ema = Generator(**G.init_kwargs)
    with torch.no_grad():
        for p in G_ema.parameters():
            p.add_(torch.randn_like(p))  # make G_ema differ from G so a swap would show
        G_ema.mapping.w_avg.normal_()
    D = Discriminator(0, 16, 3, channel_base=128, channel_max=channel_max, epilogue_kwargs={"mbstd_group_size": 2})
    return G_ema, G, D


def _same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def test_round_trip_all_parts(tmp_path):
    G_ema, G, D = _nets()
    path = save_network(tmp_path / "net.safetensors", G_ema, G=G, D=D, meta={"dataset": "cubes"}, step=500, kimg=8.0)
    assert path == tmp_path / "net.safetensors"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.json", "net.safetensors"]  # no temp files left
    loaded = load_network(path, parts=("G_ema", "G", "D"))
    _same_state(loaded["G_ema"], G_ema)
    _same_state(loaded["G"], G)
    _same_state(loaded["D"], D)
    cfg = loaded["config"]
    assert cfg["format"] == "latent-studio-network" and cfg["format_version"] == 1
    assert (cfg["resolution"], cfg["z_dim"], cfg["w_dim"], cfg["c_dim"], cfg["img_channels"]) == (16, 8, 8, 0, 3)
    assert (cfg["step"], cfg["kimg"], cfg["meta"]) == (500, 8.0, {"dataset": "cubes"})
    assert cfg["G_kwargs"] == G.init_kwargs and cfg["D_kwargs"] == D.init_kwargs
    assert json.loads(sidecar_path(path).read_text()) == cfg == read_network_config(path)
    z = torch.randn([2, 8])
    with torch.no_grad():
        assert torch.allclose(loaded["G_ema"](z, None, noise_mode="const"), G_ema.eval()(z, None, noise_mode="const"))
    assert not loaded["G_ema"].training


def test_only_g_ema_saved(tmp_path):
    G_ema, _, _ = _nets()
    path = save_network(tmp_path / "g.safetensors", G_ema)
    assert read_network_config(path)["D_kwargs"] is None
    assert set(load_network(path)) == {"config", "G_ema"}
    with pytest.raises(CheckpointError, match="no D network"):
        load_network(path, parts=("G_ema", "D"))
    with pytest.raises(CheckpointError, match="unknown checkpoint part"):
        load_network(path, parts=("E",))


def test_truncated_file_is_reported(tmp_path):
    G_ema, _, _ = _nets()
    path = save_network(tmp_path / "g.safetensors", G_ema)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 100])
    with pytest.raises(CheckpointError, match="truncated"):
        load_network(path)
    path.write_bytes(data[:5])
    with pytest.raises(CheckpointError, match="truncated"):
        read_network_config(path)
    path.write_bytes(data[:200])
    with pytest.raises(CheckpointError, match="truncated"):
        read_network_config(path)


def test_foreign_and_missing_files(tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    with pytest.raises(CheckpointError, match="not a .safetensors"):
        load_network(junk)
    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(3)}, str(plain))
    with pytest.raises(CheckpointError, match="not a Latent Studio network"):
        load_network(plain)
    with pytest.raises(CheckpointError, match="not found"):
        load_network(tmp_path / "nope.safetensors")


def test_tensors_that_do_not_match_the_config(tmp_path):
    G_small, _, _ = _nets(channel_max=8)
    G_big, _, _ = _nets(channel_max=16)
    good = save_network(tmp_path / "good.safetensors", G_big)
    config = read_network_config(good)
    bad = tmp_path / "bad.safetensors"
    tensors = {f"G_ema.{k}": v.contiguous() for k, v in G_small.state_dict().items()}
    save_file(tensors, str(bad), metadata={"latent_studio": json.dumps(config)})
    with pytest.raises(CheckpointError, match="do not match its config.*wrong shape"):
        load_network(bad)
    del tensors["G_ema.mapping.w_avg"]
    tensors["G_ema.extra"] = torch.zeros(1)
    save_file(tensors, str(bad), metadata={"latent_studio": json.dumps(config)})
    with pytest.raises(CheckpointError, match="missing 1 tensor.*G_ema.mapping.w_avg"):
        load_network(bad)


def test_config_problems(tmp_path):
    G_ema, _, _ = _nets()
    good = save_network(tmp_path / "g.safetensors", G_ema)
    config = read_network_config(good)
    tensors = {f"G_ema.{k}": v.contiguous() for k, v in G_ema.state_dict().items()}
    path = tmp_path / "x.safetensors"
    save_file(tensors, str(path), metadata={"latent_studio": json.dumps(dict(config, format_version=99))})
    with pytest.raises(CheckpointError, match="format version 99"):
        load_network(path)
    broken = dict(config, G_kwargs=dict(config["G_kwargs"], img_resolution=20))
    save_file(tensors, str(path), metadata={"latent_studio": json.dumps(broken)})
    with pytest.raises(CheckpointError, match="cannot build G_ema.*power of two"):
        load_network(path)


def test_failed_save_keeps_old_file(tmp_path):
    G_ema, G, _ = _nets()
    path = save_network(tmp_path / "g.safetensors", G_ema)
    before = path.read_bytes()
    with pytest.raises(CheckpointError, match="JSON"):
        save_network(path, G_ema, meta={"bad": object()})
    with pytest.raises(CheckpointError, match="init_kwargs"):
        save_network(path, torch.nn.Linear(2, 2))
    with pytest.raises(CheckpointError, match="end in .safetensors"):
        save_network(tmp_path / "g.json", G_ema)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.json", "g.safetensors"]


def test_training_state_round_trip(tmp_path):
    state = {"step": 12, "kimg": 0.5, "ada_p": 0.1, "name": None, "opt": {"state": {0: {"exp_avg": torch.ones(3)}}},
             "rng": [torch.get_rng_state(), 5]}
    path = save_training_state(tmp_path / "state.pt", state)
    loaded = load_training_state(path)
    assert loaded["step"] == 12 and loaded["name"] is None
    assert torch.equal(loaded["opt"]["state"][0]["exp_avg"], torch.ones(3))
    assert torch.equal(loaded["rng"][0], state["rng"][0])


def test_training_state_refuses_objects_and_damage(tmp_path):
    with pytest.raises(CheckpointError, match=r"state\['arr'\] is a ndarray"):
        save_training_state(tmp_path / "s.pt", {"arr": np.zeros(3)})
    assert not (tmp_path / "s.pt").exists()
    path = save_training_state(tmp_path / "s.pt", {"w": torch.zeros(100)})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a readable training state"):
        load_training_state(path)
    evil = tmp_path / "evil.pt"
    torch.save({"obj": _Custom()}, evil)  # an arbitrary object: a weights_only load must refuse it
    with pytest.raises(CheckpointError, match="not a readable training state"):
        load_training_state(evil)
    with pytest.raises(CheckpointError, match="not found"):
        load_training_state(tmp_path / "missing.pt")


class _Custom:
    pass


def test_check_network_file_finds_what_loading_finds_without_reading_tensors(tmp_path):
    G_ema, G, D = _nets()
    path = save_network(tmp_path / "net.safetensors", G_ema, G=G, D=D)
    assert check_network_file(path, parts=("G_ema", "G", "D")) == read_network_config(path)
    data = path.read_bytes()
    path.write_bytes(data[:-100])  # a tensor cut short
    for check in (load_network, check_network_file):
        with pytest.raises(CheckpointError, match="truncated"):
            check(path)
    only_g = save_network(tmp_path / "g.safetensors", G_ema)
    with pytest.raises(CheckpointError, match="no D network"):
        check_network_file(only_g, parts=("G_ema", "D"))
    small, _, _ = _nets(channel_max=8)
    bad = tmp_path / "bad.safetensors"
    tensors = {f"G_ema.{k}": v.contiguous() for k, v in small.state_dict().items()}
    save_file(tensors, str(bad), metadata={"latent_studio": json.dumps(read_network_config(only_g))})
    with pytest.raises(CheckpointError, match="wrong shape"):
        check_network_file(bad)
    # Garbage in the tensor bytes passes both (safetensors has no checksums): the check is
    # as strong as a full load, not stronger.
    garbled = bytearray(only_g.read_bytes())
    garbled[-64:] = b"\xff" * 64
    only_g.write_bytes(bytes(garbled))
    check_network_file(only_g)
    load_network(only_g)
