"""What the user makes follows their umask (shared render machines), not a fixed 0600."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
from PIL import Image

from gan_core.data import build_dataset
from gan_core.fileio import atomic_write_bytes
from gan_core.models.checkpoint import save_network, save_training_state
from gan_core.nn.networks import build_generator
from server.cli import main
from tests.support.training_data import MICRO8_NETWORKS


@pytest.fixture(params=[0o022, 0o077, 0o002])
def umask(request):
    before = os.umask(request.param)
    yield request.param
    os.umask(before)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_atomic_writes_follow_the_umask(tmp_path, umask):
    assert mode(atomic_write_bytes(tmp_path / "a.bin", b"x")) == 0o666 & ~umask
    assert mode(atomic_write_bytes(tmp_path / "a.bin", b"y")) == 0o666 & ~umask  # replacing too


def test_user_outputs_follow_the_umask(tmp_path, umask):
    want = 0o666 & ~umask
    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(src / f"{i}.png")
    report = build_dataset(src, tmp_path / "ds.zip", resolution=32, workers=1)
    assert {mode(report["report_path"]), mode(report["preview_path"]), mode(tmp_path / "ds.zip")} == {want}
    G = build_generator(dict(c_dim=0, img_resolution=8, img_channels=3, **MICRO8_NETWORKS["G"]))
    net = save_network(tmp_path / "net.safetensors", G)
    state = save_training_state(tmp_path / "state.pt", {"step": 1})
    assert {mode(net), mode(net.with_suffix(".json")), mode(state)} == {want}
    assert main(["generate", "--model", str(net), "--seeds", "0", "--device", "cpu", "--quiet",
                 "-o", str(tmp_path / "out")]) == 0
    assert mode(tmp_path / "out" / "seed0000.png") == want
