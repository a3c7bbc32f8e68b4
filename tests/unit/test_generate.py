"""ModelRunner, PNG helpers and the generate/walk CLI, on the reference fixture network."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gan_core.models.checkpoint import save_network
from server.cli import main
from gan_core.generate import GenerateError, ModelRunner, encode_png, image_grid
from gan_core.latent import LatentError, Waypoint, parse_keys
from gan_core.nn.networks import build_generator
from tests.support.reference_fixture import load_arrays, load_state



@pytest.fixture(scope="module")
def expected():
    return load_arrays("expected.npz")


@pytest.fixture(scope="module")
def model_path(tmp_path_factory, expected):
    config = json.loads(str(expected["config"]))
    G = build_generator(dict(config["G_kwargs"], c_dim=0, img_resolution=32, img_channels=3))
    G.load_state_dict(load_state("G_ema_state.npz"))
    return save_network(tmp_path_factory.mktemp("models") / "tiny.safetensors", G, meta={"name": "tiny"})


@pytest.fixture(scope="module")
def runner(model_path):
    return ModelRunner(model_path, device="cpu")


def _close_u8(a, b):
    diff = np.abs(a.astype(int) - b.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.001


@pytest.mark.parametrize("psi,tag", [(1.0, "psi1"), (0.7, "psi07")])
def test_generate_seeds_match_reference(runner, expected, psi, tag):
    images = runner.generate(seeds=[0, 1, 2, 3], psi=psi, noise_mode="const", batch_size=3)
    assert images.dtype == np.uint8 and images.shape == (4, 32, 32, 3)
    _close_u8(images, expected[f"img_uint8_{tag}"])
    _close_u8(runner.generate(seeds="0-3", psi=psi), images)
    _close_u8(runner.generate(z=expected["z"], psi=psi), images)


def test_generate_rejects_bad_arguments(runner):
    for kwargs, message in (
        (dict(seeds=[0], psi=2.5), "out of range"),
        (dict(seeds=[0], psi=float("nan")), "must be a number"),
        (dict(seeds=[0], psi=True), "must be a number"),
        (dict(seeds=[0], noise_mode="loud"), "noise mode"),
        (dict(seeds="a-b"), "not a seed"),
        (dict(seeds=[0], z=np.zeros((1, 64))), "either seeds or z"),
        (dict(), "either seeds or z"),
        (dict(z=np.zeros((2, 12))), r"\[N, 64\]"),
        (dict(z=np.full((1, 64), np.inf)), "NaN or infinite"),
        (dict(seeds=[0], class_idx=2), "not class-conditional"),
        (dict(seeds=[0], batch_size=0), "batch size"),
    ):
        with pytest.raises(GenerateError if "seed" not in message else ValueError, match=message):
            runner.generate(**kwargs)


def test_noise_modes_differ(runner):
    const = runner.generate(seeds=[5], noise_mode="const")
    none = runner.generate(seeds=[5], noise_mode="none")
    assert np.abs(const.astype(int) - none.astype(int)).max() > 0


def test_walk_hits_keys_and_streams_in_batches(runner):
    keys = parse_keys("0:seed=1,6:seed=2")
    calls = []
    original = runner._synthesize_z

    def spy(z, *args):
        calls.append(len(z))
        return original(z, *args)

    runner._synthesize_z = spy
    try:
        frames = runner.render_walk(keys, 0, 6, "slerp", "smooth", False, 0.7, batch_size=3)
        first = next(frames)
        assert calls == [3]  # only one batch computed to hand out the first frame
        rest = list(frames)
    finally:
        del runner._synthesize_z
    assert calls == [3, 3, 1]
    got = dict([first, *rest])
    assert list(got) == list(range(7))
    seeds_img = runner.generate(seeds=[1, 2], psi=0.7)
    _close_u8(got[0], seeds_img[0])
    _close_u8(got[6], seeds_img[1])
    assert np.abs(got[3].astype(int) - got[0].astype(int)).max() > 10  # in-between frames really move


def test_walk_in_w_space_and_loop(runner):
    keys = [Waypoint(0, seed=3), Waypoint(2, seed=4)]
    frames = dict(runner.render_walk(keys, 0, 3, interp="lerp", easing="linear", loop=True, psi=0.5, batch_size=8))
    seeds_img = runner.generate(seeds=[3, 4], psi=0.5)
    _close_u8(frames[0], seeds_img[0])
    _close_u8(frames[2], seeds_img[1])
    # looping: frame 3 lies half way back from seed 4 to seed 3, so it differs from both
    assert np.abs(frames[3].astype(int) - frames[2].astype(int)).max() > 0
    assert np.abs(frames[3].astype(int) - frames[0].astype(int)).max() > 0


@pytest.mark.parametrize("interp", ["slerp", "lerp"])
def test_walk_skip_frames_renders_only_the_rest_identically(runner, interp):
    keys = [Waypoint(0, seed=1), Waypoint(6, seed=2), Waypoint(11, seed=3)]
    full = dict(runner.render_walk(keys, 0, 11, interp, "smooth", True, 0.7, batch_size=4))
    skip = {0, 1, 2, 5, 9}
    calls = []
    original = runner._synthesize_z if interp == "slerp" else runner._synthesize_w
    spy = lambda vecs, *a: calls.append(len(vecs)) or original(vecs, *a)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(runner, "_synthesize_z" if interp == "slerp" else "_synthesize_w", spy)
        rest = list(runner.render_walk(keys, 0, 11, interp, "smooth", True, 0.7, batch_size=4, skip_frames=skip))
    assert [f for f, _ in rest] == [f for f in range(12) if f not in skip]
    assert sum(calls) == 12 - len(skip)  # skipped frames are never synthesized
    for frame, image in rest:  # other batch groupings: equal up to uint8 rounding
        assert np.abs(image.astype(int) - full[frame].astype(int)).max() <= 1, frame


def test_walk_validates_before_rendering(runner):
    keys = parse_keys("0:seed=1,10:seed=2")
    with pytest.raises(LatentError, match="easing"):
        runner.render_walk(keys, 0, 10, easing="bouncy")
    with pytest.raises(GenerateError, match="out of range"):
        runner.render_walk(keys, 0, 10, psi=-3)
    with pytest.raises(LatentError, match="inside frames"):
        runner.render_walk(keys, 0, 5, loop=True)
    with pytest.raises(LatentError, match="wants 64"):
        runner.render_walk([Waypoint(0, z=np.zeros(3))], 0, 1)


def test_encode_png_and_grid():
    rng = np.random.RandomState(0)
    img = rng.randint(0, 256, (5, 7, 3)).astype(np.uint8)
    back = np.array(Image.open(io.BytesIO(encode_png(img))))
    np.testing.assert_array_equal(back, img)
    with pytest.raises(GenerateError, match="uint8"):
        encode_png(img.astype(np.float32))
    imgs = np.stack([np.full((2, 2, 3), i, np.uint8) for i in range(1, 6)])
    grid = image_grid(imgs, cols=3)
    assert grid.shape == (4, 6, 3)
    assert grid[0, 0, 0] == 1 and grid[0, 4, 0] == 3 and grid[2, 2, 0] == 5 and grid[3, 5, 0] == 0
    with pytest.raises(GenerateError, match="columns"):
        image_grid(imgs, cols=0)


def test_cli_generate_and_walk(model_path, expected, tmp_path, capsys):
    out = tmp_path / "gen"
    assert main(["generate", "--model", str(model_path), "--seeds", "0-1", "--psi", "0.7", "--device", "cpu",
                 "-o", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["seed0000.png", "seed0001.png"]
    _close_u8(np.array(Image.open(out / "seed0001.png")), expected["img_uint8_psi07"][1])
    walk = tmp_path / "walk"
    assert main(["walk", "--model", str(model_path), "--keys", "0:seed=1,3:seed=7", "--frames", "0-3",
                 "--easing", "smooth", "--loop", "--batch", "2", "-o", str(walk)]) == 0
    assert sorted(p.name for p in walk.iterdir()) == [f"frame_{i:04d}.png" for i in range(4)]
    assert "wrote 4 frame(s)" in capsys.readouterr().out


def test_cli_walk_moves_along_keyed_directions(model_path, tmp_path, capsys):
    """--direction ID=KEYS renders what render_walk gives with that direction's vector and the
    keyed amounts (straight lines between keys, held outside them)."""
    from gan_core.directions import WalkDirection, direction_by_id, keyed_amounts

    walk = tmp_path / "walk"
    assert main(["walk", "--model", str(model_path), "--keys", "0:seed=1,5:seed=7", "--device", "cpu",
                 "--direction", "coarse:0=1:0,3:4", "--direction", "fine:1=-2", "-o", str(walk)]) == 0
    got = {int(p.stem.split("_")[1]): np.array(Image.open(p)) for p in walk.iterdir()}
    assert sorted(got) == list(range(6))
    runner = ModelRunner(model_path, device="cpu")
    amounts = keyed_amounts([(1, 0.0), (3, 4.0)], 0, 5)
    np.testing.assert_array_equal(amounts, [0, 0, 2, 4, 4, 4])
    coarse, fine = direction_by_id(runner, "coarse:0"), direction_by_id(runner, "fine:1")
    edits = [WalkDirection(coarse.vector, coarse.layers, amounts),
             WalkDirection(fine.vector, fine.layers, np.full(6, -2.0, np.float32))]
    want = dict(runner.render_walk(parse_keys("0:seed=1,5:seed=7"), 0, 5, directions=edits))
    plain = dict(runner.render_walk(parse_keys("0:seed=1,5:seed=7"), 0, 5))
    for frame in range(6):
        _close_u8(got[frame], want[frame])
    assert np.abs(got[3].astype(int) - plain[3]).mean() > 1  # the directions did move the images


@pytest.mark.parametrize("argv,message", [
    (["generate", "--seeds", "3-1"], "backwards"),
    (["generate", "--seeds", "0", "--psi", "7"], "out of range"),
    (["generate", "--seeds", "-4"], "non-negative"),
    (["walk", "--keys", "0:seed=1,5:seed=x"], "bad key"),
    (["walk", "--keys", "0:seed=1,5:seed=2", "--easing", "wobbly"], "unknown easing"),
    (["walk", "--keys", "0:seed=1,5:seed=2", "--frames", "9-2"], "ends before it starts"),
    (["walk", "--keys", "0:seed=1,5:seed=2", "--direction", "coarse:0"], "bad --direction"),
    (["walk", "--keys", "0:seed=1,5:seed=2", "--direction", "sideways:0=1"], "unknown direction id"),
    (["walk", "--keys", "0:seed=1,5:seed=2", "--direction", "all:0=0:1,5"], "bad key '5'"),
    (["walk", "--keys", "0:seed=1,5:seed=2", "--direction", "all:0=0:1,0:2"], "keys frame 0 twice"),
    (["walk", "--keys", "0:seed=1,5:seed=2", "--direction", "all:0=0:1,5:500"], "amounts"),
])
def test_cli_errors_are_one_line(model_path, tmp_path, capsys, argv, message):
    assert main([*argv, "--model", str(model_path), "-o", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_cli_damaged_or_wrong_checkpoint(model_path, tmp_path, capsys):
    data = Path(model_path).read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[: len(data) // 2])
    assert main(["generate", "--model", str(cut), "--seeds", "0", "-o", str(tmp_path / "o")]) == 1
    assert "truncated" in capsys.readouterr().err
    assert main(["generate", "--model", str(tmp_path / "missing.safetensors"), "--seeds", "0",
                 "-o", str(tmp_path / "o")]) == 1
    assert "not found" in capsys.readouterr().err


def test_conditional_model_needs_a_valid_class():
    from gan_core.nn.networks import Generator

    torch.manual_seed(0)
    G = Generator(8, 3, 8, 8, 3, mapping_kwargs={"num_layers": 1},
                  synthesis_kwargs={"channel_base": 64, "channel_max": 8})
    runner = ModelRunner(G, device="cpu")
    a = runner.generate(seeds=[0], class_idx=0)
    b = runner.generate(seeds=[0], class_idx=2)
    assert a.shape == (1, 8, 8, 3) and np.abs(a.astype(int) - b.astype(int)).max() > 0
    for bad in (None, 3, -1, "1"):
        with pytest.raises(GenerateError, match="class from 0 to 2"):
            runner.generate(seeds=[0], class_idx=bad)
    frames = list(runner.render_walk(parse_keys("0:seed=1,2:seed=2"), 0, 2, class_idx=1, batch_size=2))
    assert [f for f, _ in frames] == [0, 1, 2]


def test_cli_loop_closed_by_its_first_key_renders_no_duplicate_frame(model_path, tmp_path):
    """The README's loop (0:seed=1,...,N:seed=1 --loop): frame N would equal frame 0, so a
    looping image sequence would show the same image twice in a row. It is not rendered."""
    walk = tmp_path / "walk"
    assert main(["walk", "--model", str(model_path), "--keys", "0:seed=1,3:seed=7,6:seed=1", "--loop",
                 "--device", "cpu", "--quiet", "-o", str(walk)]) == 0
    names = sorted(p.name for p in walk.iterdir())
    assert names == [f"frame_{i:04d}.png" for i in range(6)]
    first = np.array(Image.open(walk / "frame_0000.png"))
    assert not np.array_equal(first, np.array(Image.open(walk / "frame_0005.png")))


def test_loop_keys_and_range():
    from gan_core.latent import Waypoint, loop_keys_and_range

    keys, start, end = loop_keys_and_range([Waypoint(0, seed=1), Waypoint(48, seed=7), Waypoint(96, seed=1)])
    assert (start, end) == (0, 95) and [k.frame for k in keys] == [0, 48]
    keys, start, end = loop_keys_and_range([Waypoint(0, seed=1), Waypoint(48, seed=7), Waypoint(96, seed=2)])
    assert (start, end) == (0, 96) and len(keys) == 3


def test_map_z_then_synthesize_ws_is_generate(runner, expected):
    ws = runner.map_z(expected["z"], psi=0.7)
    assert ws.shape == (len(expected["z"]), runner.num_ws, runner.w_dim) and ws.dtype == np.float32
    np.testing.assert_array_equal(runner.synthesize_ws(ws, batch_size=3), runner.generate(z=expected["z"], psi=0.7, batch_size=3))
    # One w per image is broadcast to every layer.
    np.testing.assert_array_equal(runner.synthesize_ws(ws[:, 0]), runner.synthesize_ws(ws))
    for bad, message in ((np.zeros((1, 3, 7)), r"\[N, \d+, \d+\]"), (np.full((1, runner.w_dim), np.nan), "NaN")):
        with pytest.raises(GenerateError, match=message):
            runner.synthesize_ws(bad)
