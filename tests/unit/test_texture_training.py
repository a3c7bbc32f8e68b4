"""Tileable training: a dataset of periodic textures, a micro generator trained with
`tileable=True` (seamless G, rolled views for D) against the same run without it.

What is checked: the run still learns (SWD to the reals falls while D only ever sees rolled
images), the checkpoint records `tileable` and ModelRunner's default output follows it, and
the default output of the tileable model has no seam where the plain model's has one.

The seam is judged two ways (gan_core.texture.seam_score): against all interior neighbours
(<= 1.1, and well below the plain model), and against the interior lines on the network's 4x4
grid (grid = side / 4): a tiny network after a few hundred steps still draws faint lines there,
and the seam must be no rougher than they are. (ModelRunner cuts a seamless tile mid-cell, off
those lines; the grid measure holds wherever the cut is.)

16 px micro networks, one thread, 150 steps per run.
"""

from __future__ import annotations

import numpy as np
import pytest

from gan_core.data.writer import write_images
from gan_core.generate import ModelRunner
from gan_core.models.checkpoint import read_network_config
from gan_core.texture import seam_score
from gan_core.train.loop import TrainingConfig, train
from tests.support.textures import periodic_textures
from tests.support.training_data import MICRO_NETWORKS

pytestmark = pytest.mark.slow

RES, STEPS = 16, 150


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Every test here runs on one torch thread (see tests/unit/conftest.py)."""


def _run(tmp_path, data, tileable: bool) -> tuple[dict, object]:
    run_dir = tmp_path / ("tileable" if tileable else "plain")
    events = []
    train(TrainingConfig(data=str(data), run_dir=str(run_dir), steps=STEPS, snapshot_every=STEPS, batch=8,
                         preset="tiny", network_kwargs=MICRO_NETWORKS, aug="off", grid_size=None, device="cpu",
                         report_every=STEPS, metrics=("swd",), metric_images=64, tileable=tileable),
          on_progress=events.append)
    swd = {e["step"]: e["swd"] for e in events if e["event"] == "snapshot"}
    return swd, run_dir / "snapshots" / f"network-{STEPS:06d}.safetensors"


def test_tileable_training_makes_seamless_textures(tmp_path):
    reals = periodic_textures(64, res=RES)
    assert seam_score(np.stack(reals)) < 1.1  # the data tiles
    data = write_images(tmp_path / "textures.zip", reals)

    swd, tileable_net = _run(tmp_path, data, tileable=True)
    assert swd[STEPS] < swd[0] * 0.7, f"tileable training did not learn: SWD {swd[0]:.3f} -> {swd[STEPS]:.3f}"
    assert read_network_config(tileable_net)["tileable"] is True
    _, plain_net = _run(tmp_path, data, tileable=False)
    assert read_network_config(plain_net)["tileable"] is False

    seeds = list(range(256))
    tiled_runner, plain_runner = ModelRunner(tileable_net, device="cpu"), ModelRunner(plain_net, device="cpu")
    assert tiled_runner.tileable and not plain_runner.tileable
    tiled = tiled_runner.generate(seeds=seeds)  # seamless=None: the checkpoint's flag
    plain = plain_runner.generate(seeds=seeds)
    assert np.array_equal(tiled, tiled_runner.generate(seeds=seeds, seamless=True))
    assert np.array_equal(plain, plain_runner.generate(seeds=seeds, seamless=False))

    tiled_score, plain_score = seam_score(tiled), seam_score(plain)
    assert plain_score > 1.5, f"the plain model shows no seam ({plain_score:.2f}): the comparison proves nothing"
    assert tiled_score <= 1.1, f"the tileable model's textures show a seam ({tiled_score:.2f})"
    assert tiled_score < 0.8 * plain_score, (tiled_score, plain_score)
    grid = RES // 4
    assert seam_score(tiled, grid=grid) <= 1.1, "the seam is rougher than the network's own grid lines"
    assert seam_score(plain, grid=grid) > 1.3
    # The tileable model asked for plain mode shows the seam its wrap padding hides.
    assert seam_score(tiled_runner.generate(seeds=seeds, seamless=False)) > tiled_score
