"""Seamless (tileable) generation and textures larger than the training resolution.

- The wrap-around ops equal the same ops applied to the periodic extension of their input
  (3x3 tiling, centre crop), for every resampling path the synthesis network uses.
- A seamless image is exactly periodic: rolling the 4x4 const by one cell rolls the image
  by a quarter of its side (any zero padding would break this), for each architecture.
- Seam scores (gan_core.texture): plain output has a seam, seamless output does not; the
  2x2 mosaic of a seamless image has no line at its joints that its own grid lines lack.
- size_multiplier: shapes, seamlessness, and no repetition of one training-resolution block.
- ModelRunner: the checkpoint's `tileable` flag is the default; every refusal.
- Training bits (random_roll, the config option, the flag in a run's snapshots) and the CLI.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from gan_core import rules
from gan_core.generate import GenerateError, ModelRunner
from gan_core.latent import parse_keys
from gan_core.models.checkpoint import network_is_tileable, read_network_config, save_network
from gan_core.nn.layers import LayerConfigError, conv2d_resample, periodic_resize, setup_filter, upsample2d
from gan_core.nn.networks import NetworkConfigError, build_generator, preset_kwargs, set_precision
from gan_core.texture import TextureMeasureError, repetition_score, seam_score
from gan_core.texture_field import layout_entries, layout_field, layout_offsets
from gan_core.train.config import TrainingConfig, TrainingConfigError
from gan_core.train.loop import train
from gan_core.train.tileable import random_roll
from server.cli import main
from server.cli.train import config_from_args
from tests.support.textures import periodic_textures, reference_generator
from tests.support.training_data import micro8_config

RES = 32


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Every test here runs on one torch thread (see tests/unit/conftest.py)."""


@pytest.fixture(scope="module")
def G():
    return reference_generator()


@pytest.fixture(scope="module")
def runner(G):
    return ModelRunner(G, device="cpu")


@pytest.fixture(scope="module")
def model_paths(tmp_path_factory, G):
    folder = tmp_path_factory.mktemp("models")
    return {"plain": save_network(folder / "plain.safetensors", G),
            "tileable": save_network(folder / "tileable.safetensors", G, tileable=True)}


def _random_ws(G, n: int, seed: int = 0) -> torch.Tensor:
    z = torch.from_numpy(np.random.RandomState(seed).randn(n, G.z_dim).astype(np.float32))
    with torch.no_grad():
        return G.mapping(z, torch.zeros([n, G.c_dim]))


def _nhwc(img: torch.Tensor) -> np.ndarray:
    return img.permute(0, 2, 3, 1).numpy()


def _close_u8(a, b):
    """Equal up to rounding: a batch of several maps z with a different matmul than one alone."""
    diff = np.abs(np.asarray(a).astype(int) - np.asarray(b).astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.001


# ----------------------------------------------------------------------------- the ops


def _periodic_reference(op, x: torch.Tensor, up: int) -> torch.Tensor:
    """op on the periodic extension of x: a 3x3 tiling, then the centre period of the output."""
    y = op(x.repeat(1, 1, 3, 3))
    n = x.shape[-1] * up
    return y[:, :, n:2 * n, n:2 * n]


@pytest.mark.parametrize("kernel, up, flip, groups", [
    (3, 1, True, 1), (3, 2, False, 1), (3, 2, True, 1), (1, 2, False, 1), (5, 1, True, 1), (5, 2, False, 1),
    (3, 2, False, 2), (3, 1, True, 2)])
@pytest.mark.parametrize("taps", [(1, 3, 3, 1), (1, 1), (1, 2, 1), (1, 4, 6, 4, 1), (1, 3, 3, 1, 1, 3)],
                         ids=["taps4", "taps2", "taps3", "taps5", "taps6"])
def test_wrapped_conv_equals_conv_of_periodic_input(kernel, up, flip, groups, taps):
    torch.manual_seed(kernel * 10 + up)
    x = torch.randn(2, 4, 8, 8)
    w = torch.randn(6, 4 // groups, kernel, kernel)
    f = setup_filter(taps)

    def op(t, wrap=False):
        return conv2d_resample(t, w, f, up=up, padding=kernel // 2, groups=groups, flip_weight=flip, wrap=wrap)

    wrapped = op(x, wrap=True)
    assert wrapped.shape == (2, 6, 8 * up, 8 * up)
    torch.testing.assert_close(wrapped, _periodic_reference(op, x, up), atol=1e-4, rtol=1e-5)
    if kernel > 1 or len(taps) > up:  # an op that pads at all: its borders differ from the wrapped ones
        assert (op(x) - wrapped).abs().max() > 1e-2


@pytest.mark.parametrize("taps", [(1, 3, 3, 1), (1, 1), (1, 2, 1), (1, 4, 6, 4, 1), (1, 3, 3, 1, 1, 3)])
def test_wrapped_upsample_equals_upsample_of_periodic_input(taps):
    x = torch.randn(2, 3, 4, 4)
    f = setup_filter(taps)
    torch.testing.assert_close(upsample2d(x, f, wrap=True), _periodic_reference(lambda t: upsample2d(t, f), x, 2))


def test_wrap_is_for_upsampling_only():
    with pytest.raises(LayerConfigError, match="synthesis network"):
        conv2d_resample(torch.randn(1, 2, 8, 8), torch.randn(2, 2, 3, 3), setup_filter(), down=2, padding=1, wrap=True)


def test_periodic_resize_hits_the_tile_centres_and_wraps():
    m = torch.randn(2, 3, 4, 4)
    out = periodic_resize(m, 12)  # 3 px per tile: centres at pixels 1, 4, 7, 10
    torch.testing.assert_close(out[:, :, 1::3, 1::3], m)
    torch.testing.assert_close(periodic_resize(torch.roll(m, (1, 1), (2, 3)), 12), torch.roll(out, (3, 3), (2, 3)))
    assert float(out.min()) >= float(m.min()) - 1e-6 and float(out.max()) <= float(m.max()) + 1e-6  # blends only


# ----------------------------------------------------------------------------- the network


def test_plain_mode_is_unchanged(G):
    ws = _random_ws(G, 3)
    with torch.no_grad():
        default = G.synthesis(ws, noise_mode="const")
        assert torch.equal(default, G.synthesis(ws, noise_mode="const", seamless=False))
        assert not torch.equal(default, G.synthesis(ws, noise_mode="const", seamless=True))


@pytest.mark.parametrize("architecture", ["skip", "resnet", "orig"])
@pytest.mark.parametrize("fused", [False, True])
def test_seamless_image_is_exactly_periodic(architecture, fused):
    """Rolling the const by (1, 2) cells must roll the image by (res/4, res/2): a seamless
    network is a chain of circular convolutions. One zero-padded op anywhere breaks this."""
    kwargs = preset_kwargs(RES, "tiny")["G"]
    kwargs["synthesis_kwargs"]["architecture"] = architecture
    torch.manual_seed(1)
    net = build_generator(kwargs).eval()
    ws = _random_ws(net, 2)
    const = net.synthesis.b4.const
    with torch.no_grad():
        image = net.synthesis(ws, noise_mode="none", seamless=True, fused_modconv=fused)
        original = const.detach().clone()
        const.copy_(torch.roll(original, (1, 2), (1, 2)))
        try:
            shifted = net.synthesis(ws, noise_mode="none", seamless=True, fused_modconv=fused)
            plain_shifted = net.synthesis(ws, noise_mode="none", fused_modconv=fused)
        finally:
            const.copy_(original)
        plain = net.synthesis(ws, noise_mode="none", fused_modconv=fused)
    torch.testing.assert_close(shifted, torch.roll(image, (RES // 4, RES // 2), (2, 3)), atol=1e-5, rtol=1e-4)
    assert (plain_shifted - torch.roll(plain, (RES // 4, RES // 2), (2, 3))).abs().max() > 1e-2  # plain: not so


def test_seam_score_plain_versus_seamless(G):
    ws = _random_ws(G, 64)
    with torch.no_grad():
        plain = _nhwc(G.synthesis(ws, noise_mode="const"))
        seamless = _nhwc(G.synthesis(ws, noise_mode="const", seamless=True))
    assert seam_score(plain) > 3  # opposite edges of a plain image are unrelated
    assert seam_score(seamless) < 0.4 * seam_score(plain)
    # The wrap edge lies where the 4x4 const's cell borders do; it is no rougher than those lines.
    assert seam_score(seamless, grid=RES // 4) <= 1.1
    assert seam_score(plain, grid=RES // 4) > 3


def _column_difference(images: np.ndarray, col: int) -> float:
    return float(np.abs(images[:, :, col] - images[:, :, col - 1]).mean())


def test_mosaic_of_a_seamless_image_shows_no_joint(G):
    """Tile each image 2x2 and cut the window whose middle is the joint: the joint column
    differs from its neighbour no more than the other const-grid columns do."""
    ws = _random_ws(G, 64, seed=1)
    with torch.no_grad():
        images = {"plain": _nhwc(G.synthesis(ws, noise_mode="const")),
                  "seamless": _nhwc(G.synthesis(ws, noise_mode="const", seamless=True))}
    ratios = {}
    for mode, img in images.items():
        window = np.tile(img, (1, 2, 2, 1))[:, RES // 2:RES // 2 + RES, RES // 2:RES // 2 + RES]
        joint = _column_difference(window, RES // 2)
        grid_lines = np.mean([_column_difference(window, c) for c in (RES // 4, 3 * RES // 4)])
        ratios[mode] = joint / grid_lines
    assert ratios["seamless"] <= 1.1, ratios
    assert ratios["plain"] > 2, ratios


# ----------------------------------------------------------------------------- size multiplier


@pytest.mark.parametrize("multiplier", [1, 2, 3])
def test_size_multiplier_shapes(G, multiplier):
    ws = _random_ws(G, 2)
    with torch.no_grad():
        img = G.synthesis(ws, noise_mode="random", seamless=True, size_multiplier=multiplier)
    assert img.shape == (2, 3, RES * multiplier, RES * multiplier)


def test_enlarged_texture_is_seamless_and_exactly_periodic(G):
    ws = _random_ws(G, 2)
    field = layout_field(G, ws, 3)
    with torch.no_grad():
        big = G.synthesis(ws, noise_mode="none", seamless=True, size_multiplier=3, style_field=field)
        # Rolling the tile latents by one tile rolls the image by one tile (the tiled const
        # is the same under that shift): the style field wraps around too.
        rolled = G.synthesis(ws, noise_mode="none", seamless=True, size_multiplier=3,
                             style_field=torch.roll(field, (1, 1), (1, 2)))
    torch.testing.assert_close(rolled, torch.roll(big, (RES, RES), (2, 3)), atol=1e-5, rtol=1e-4)
    assert seam_score(_nhwc(big), grid=RES // 4) <= 1.1


@pytest.mark.parametrize("architecture", ["skip", "resnet", "orig"])
@pytest.mark.parametrize("noise_mode", ["const", "random"])
def test_tiled_blocks_give_the_same_image(architecture, noise_mode):
    """Blocks wider than tile_side run tile by tile (bounded memory); the image is the same."""
    kwargs = preset_kwargs(RES, "tiny")["G"]
    kwargs["synthesis_kwargs"]["architecture"] = architecture
    torch.manual_seed(2)
    net = build_generator(kwargs).eval()
    for name, p in net.named_parameters():
        if name.endswith("noise_strength"):  # random init has none: give the noise a part to play
            p.data.fill_(0.3)
    ws = _random_ws(net, 2)
    seen = []
    hook = net.synthesis.b32.register_forward_pre_hook(lambda module, args: seen.append(args[0].shape[-1]))
    try:
        with torch.no_grad():
            torch.manual_seed(7)
            whole = net.synthesis(ws, noise_mode=noise_mode, seamless=True, size_multiplier=3)
            net.synthesis.tile_side = 22  # tiles of 22 px and the remainders: 24 = 22 + 2, 48, 96
            torch.manual_seed(7)
            tiled = net.synthesis(ws, noise_mode=noise_mode, seamless=True, size_multiplier=3)
    finally:
        hook.remove()
    assert seen[0] == 48 and len(seen) > 1 and max(seen[1:]) < 48  # whole, then tiles of the input
    torch.testing.assert_close(tiled, whole, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("precision, fused", [("bf16", False), ("bf16", True), ("fp16", False)])
def test_reduced_precision_enlarged_textures(precision, fused):
    """The small preset's reducible blocks in bf16/fp16 (fp16's overflow guard included) give
    the fp32 texture up to rounding, through the style field and the tiles."""
    torch.manual_seed(0)
    net = build_generator(preset_kwargs(RES, "small")["G"]).eval()
    ws = _random_ws(net, 1)
    field = layout_field(net, ws, 2)
    net.synthesis.tile_side = 16
    with torch.no_grad():
        reference = net.synthesis(ws, noise_mode="const", seamless=True, size_multiplier=2, style_field=field)
        set_precision(net, precision)
        reduced = net.synthesis(ws, noise_mode="const", seamless=True, size_multiplier=2, style_field=field,
                                fused_modconv=fused)
    assert reduced.dtype == torch.float32 and torch.isfinite(reduced).all()
    assert (reduced - reference).abs().mean() < 0.03 and (reduced - reference).abs().max() < 0.2


def _coarse(images: np.ndarray, cell: int = 4) -> np.ndarray:
    """Mean over cell x cell blocks: the layout, without the per-pixel noise."""
    n, h, w, c = images.shape
    return images.astype(np.float64).reshape(n, h // cell, cell, w // cell, cell, c).mean(axis=(2, 4))


def test_enlarged_texture_does_not_repeat_one_block(G, runner):
    """How it is checked: the difference between the image and itself shifted by one
    training-resolution period (repetition_score), over the pixels and over 4x4-block means
    (the layout). An exact tiling scores 0; each extra ingredient must raise the score."""
    seeds, mult = "0-7", 4
    big = runner.generate(seeds=seeds, size_multiplier=mult)  # the runner's way: fresh noise + style field
    assert big.shape == (8, RES * mult, RES * mult, 3)
    assert seam_score(big, grid=RES // 4) <= 1.1
    ws = torch.from_numpy(runner.map_z(np.stack([np.random.RandomState(s).randn(G.z_dim) for s in range(8)])))
    with torch.no_grad():
        tiled = _nhwc(G.synthesis(ws, noise_mode="none", seamless=True, size_multiplier=mult))
        noise_only = _nhwc(G.synthesis(ws, noise_mode="const", seamless=True, size_multiplier=mult))
        base = _nhwc(G.synthesis(ws, noise_mode="none", seamless=True))
    # No noise, one latent: exactly the base image repeated (the measure sees a tiling as 0).
    np.testing.assert_allclose(tiled, np.tile(base, (1, mult, mult, 1)), atol=1e-4)
    assert repetition_score(tiled, RES) < 1e-3
    # Fresh (not tiled) const noise: no two blocks are the same pixels...
    assert repetition_score(noise_only, RES) > 0.5
    # ...but the layout still repeats; the per-tile style field is what varies it.
    assert repetition_score(_coarse(noise_only), RES // 4) < 0.35
    assert repetition_score(_coarse(big.astype(np.float64) / 127.5 - 1), RES // 4) > 0.6
    assert repetition_score(big, RES) > 1.5


def test_enlarged_const_noise_is_fixed_and_random_noise_is_not(G, runner):
    a = runner.generate(seeds=[3], size_multiplier=2)
    assert np.array_equal(a, runner.generate(seeds=[3], size_multiplier=2))
    assert np.array_equal(a, ModelRunner(reference_generator(), device="cpu").generate(seeds=[3], size_multiplier=2))
    r1 = runner.generate(seeds=[3], size_multiplier=2, noise_mode="random")
    r2 = runner.generate(seeds=[3], size_multiplier=2, noise_mode="random")
    assert not np.array_equal(r1, r2)


def test_layout_field_shape_and_offsets(G):
    ws = _random_ws(G, 2)
    field = layout_field(G, ws, 3)
    count = layout_entries(G.synthesis)
    assert field.shape == (2, 3, 3, count, G.w_dim) and 1 <= count < G.num_ws
    offsets = layout_offsets(G, 3)
    torch.testing.assert_close(offsets.mean(dim=(0, 1)), torch.zeros(G.w_dim), atol=1e-5, rtol=0)
    torch.testing.assert_close(field[:, 1, 2], ws[:, :count] + offsets[1, 2])
    assert torch.equal(offsets, layout_offsets(G, 3))  # fixed: the same texture every time


@pytest.mark.parametrize("kwargs, words", [
    (dict(seamless=True, size_multiplier=0), "size_multiplier must be a whole number from 1 to 8"),
    (dict(seamless=True, size_multiplier=rules.MAX_SIZE_MULTIPLIER + 1), "from 1 to 8"),
    (dict(seamless=True, size_multiplier=True), "from 1 to 8"),
    (dict(seamless=True, size_multiplier=2.0), "from 1 to 8"),
    (dict(seamless=False, size_multiplier=2), "needs seamless=True"),
    (dict(seamless="yes"), "seamless must be True or False"),
])
def test_network_refuses_bad_texture_options(G, kwargs, words):
    with pytest.raises(NetworkConfigError, match=words):
        G.synthesis(_random_ws(G, 1), **kwargs)


def test_network_refuses_a_misshapen_style_field(G):
    ws = _random_ws(G, 1)
    with pytest.raises(NetworkConfigError, match="style_field must be"):
        G.synthesis(ws, seamless=True, size_multiplier=2, style_field=torch.zeros(1, 3, 3, 2, G.w_dim))
    with pytest.raises(NetworkConfigError, match="style_field must be"):
        G.synthesis(ws, seamless=True, style_field=torch.zeros(1, 1, 1, 2, G.w_dim))


# ----------------------------------------------------------------------------- ModelRunner


def test_runner_defaults_to_the_checkpoints_flag(model_paths):
    plain, tileable = (ModelRunner(model_paths[k], device="cpu") for k in ("plain", "tileable"))
    assert plain.tileable is False and tileable.tileable is True
    assert read_network_config(model_paths["tileable"])["tileable"] is True
    seamless = plain.generate(seeds=[1, 2], seamless=True)
    np.testing.assert_array_equal(tileable.generate(seeds=[1, 2]), seamless)
    np.testing.assert_array_equal(plain.generate(seeds=[1, 2]), plain.generate(seeds=[1, 2], seamless=False))
    np.testing.assert_array_equal(tileable.generate(seeds=[1, 2], seamless=False), plain.generate(seeds=[1, 2]))
    assert not np.array_equal(seamless, plain.generate(seeds=[1, 2]))
    # A size multiplier implies seamless when it is left to the model.
    assert plain.texture_mode(None, 2) == (True, 2) and plain.texture_mode(None, 1) == (False, 1)


def test_tileable_flag_of_older_configs():
    assert network_is_tileable({}) is False and network_is_tileable(None) is False
    assert network_is_tileable({"meta": {"training": {"tileable": True}}}) is True
    assert network_is_tileable({"meta": {"training": {"tileable": False}}}) is False
    assert network_is_tileable({"tileable": False, "meta": {"training": {"tileable": True}}}) is False


@pytest.mark.parametrize("kwargs, words", [
    (dict(size_multiplier=2, seamless=False), "needs seamless mode"),
    (dict(size_multiplier=9), "size multiplier must be a whole number from 1 to 8"),
    (dict(size_multiplier=0), "from 1 to 8"),
    (dict(size_multiplier="2"), "from 1 to 8"),
    (dict(seamless="yes"), "seamless must be true, false or left out"),
])
def test_runner_refuses_bad_texture_options(runner, kwargs, words):
    with pytest.raises(GenerateError, match=words):
        runner.generate(seeds=[0], **kwargs)
    with pytest.raises(GenerateError, match=words):
        runner.synthesize_ws(np.zeros([1, runner.w_dim], np.float32), **kwargs)
    with pytest.raises(GenerateError, match=words):  # checked before the first frame
        runner.render_walk(parse_keys("0:seed=1,2:seed=2"), 0, 2, **kwargs)


def test_enlarged_batches_render_one_bounded_pass_at_a_time(runner):
    """An enlarged batch of N is rendered max(1, N // mult^2) images per pass, and the
    passes give exactly what one image at a time gives."""
    sizes = []
    hook = runner.G.synthesis.register_forward_pre_hook(lambda module, args: sizes.append(args[0].shape[0]))
    try:
        images = runner.generate(seeds="0-4", size_multiplier=2, batch_size=5)
        assert sizes == [1] * 5
        sizes.clear()
        runner.generate(seeds="0-9", size_multiplier=2, batch_size=10)
        assert sizes == [2] * 5
    finally:
        hook.remove()
    singles = np.concatenate([runner.generate(seeds=[s], size_multiplier=2) for s in range(5)])
    _close_u8(images, singles)


def test_walks_and_ws_take_the_texture_options(runner):
    frames = list(runner.render_walk(parse_keys("0:seed=1,3:seed=2"), 0, 3, batch_size=2, size_multiplier=2))
    assert [f for f, _ in frames] == [0, 1, 2, 3] and frames[0][1].shape == (2 * RES, 2 * RES, 3)
    _close_u8(frames[0][1], runner.generate(seeds=[1], size_multiplier=2)[0])
    _close_u8(frames[3][1], runner.generate(seeds=[2], size_multiplier=2)[0])
    seamless_frames = list(runner.render_walk(parse_keys("0:seed=1,1:seed=2"), 0, 1, seamless=True))
    _close_u8(seamless_frames[1][1], runner.generate(seeds=[2], seamless=True)[0])
    ws = runner.map_z(np.random.RandomState(1).randn(1, runner.z_dim))
    _close_u8(runner.synthesize_ws(ws, size_multiplier=2), runner.generate(seeds=[1], size_multiplier=2))


# ----------------------------------------------------------------------------- measures


def test_seam_score_and_repetition_score_basics():
    textures = np.stack(periodic_textures(16, res=32, max_freq=4))
    assert seam_score(textures) < 1.1  # they tile
    ramp = np.tile(np.linspace(0, 255, 32)[None, :, None], (32, 1, 3))
    assert seam_score(ramp) > 20  # a ramp jumps from white back to black at the wrap
    assert seam_score(np.full([8, 8, 3], 7)) == 1.0
    torch_images = torch.from_numpy(textures).permute(0, 3, 1, 2)
    assert seam_score(torch_images) == pytest.approx(seam_score(textures))
    block = np.random.RandomState(0).randint(0, 255, size=(2, 8, 8, 3))
    assert repetition_score(np.tile(block, (1, 4, 4, 1)), 8) == 0.0
    assert repetition_score(np.random.RandomState(1).randint(0, 255, size=(2, 32, 32, 3)), 8) > 0.8
    for bad, kwargs in ((np.zeros([2, 2, 3]), {}), (np.zeros([5]), {}), (np.zeros([0, 8, 8, 3]), {}),
                        (np.zeros([1, 8, 8, 3]), {"grid": 3}), (np.zeros([1, 8, 8, 3]), {"grid": 8})):
        with pytest.raises(TextureMeasureError):
            seam_score(bad, **kwargs)
    with pytest.raises(TextureMeasureError, match="period"):
        repetition_score(np.zeros([1, 8, 8, 3]), 8)


# ----------------------------------------------------------------------------- training


def test_random_roll_rolls_each_image_by_its_own_shift():
    images = torch.randn(4, 3, 8, 6, requires_grad=True)
    rolled = random_roll(images, generator=torch.Generator().manual_seed(5))
    gen = torch.Generator().manual_seed(5)
    dy, dx = torch.randint(0, 8, [4, 1], generator=gen), torch.randint(0, 6, [4, 1], generator=gen)
    for i in range(4):
        assert torch.equal(rolled[i], torch.roll(images[i], (int(dy[i]), int(dx[i])), (1, 2)))
    assert len({(int(a), int(b)) for a, b in zip(dy, dx)}) > 1
    rolled.sum().backward()  # a permutation: every pixel's gradient is exactly 1
    assert torch.equal(images.grad, torch.ones_like(images))


def test_tileable_option_in_the_config():
    with pytest.raises(TrainingConfigError, match="tileable must be true or false"):
        TrainingConfig(data="x.zip", run_dir="r", tileable="yes")._check_numbers(1)
    config = TrainingConfig(data="x.zip", run_dir="r", tileable=True)
    assert TrainingConfig.from_dict(config.to_dict()).tileable is True
    assert TrainingConfig(data="x.zip", run_dir="r").tileable is False


def test_tileable_run_writes_the_flag(tmp_path):
    from gan_core.data.writer import write_images

    data = write_images(tmp_path / "tex.zip", periodic_textures(8, res=8))
    run_dir = tmp_path / "run"
    train(micro8_config(data, run_dir, tileable=True, steps=2, aug="off", grid_size=None))
    network = run_dir / "snapshots" / "network-000002.safetensors"
    config = read_network_config(network)
    assert config["tileable"] is True and config["meta"]["training"]["tileable"] is True
    assert ModelRunner(network, device="cpu").tileable is True


# ----------------------------------------------------------------------------- command line


def _png_size(path) -> tuple[int, int]:
    with Image.open(path) as img:
        return img.size


def test_cli_generate_and_walk_texture_options(model_paths, tmp_path, capsys):
    out = tmp_path / "gen"
    assert main(["generate", "--model", str(model_paths["plain"]), "--seeds", "0-1", "--size-multiplier", "2",
                 "--device", "cpu", "-o", str(out), "--quiet"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["seed0000.png", "seed0001.png"]
    assert _png_size(out / "seed0000.png") == (2 * RES, 2 * RES)
    for flag, mode in (("--seamless", True), ("--no-seamless", False)):
        folder = tmp_path / flag
        assert main(["generate", "--model", str(model_paths["plain"]), "--seeds", "3", flag, "--device", "cpu",
                     "-o", str(folder), "--quiet"]) == 0
        expected = ModelRunner(model_paths["plain"], device="cpu").generate(seeds=[3], seamless=mode)[0]
        np.testing.assert_array_equal(np.asarray(Image.open(folder / "seed0003.png")), expected)
    default = tmp_path / "default"  # a tileable model: seamless unless told otherwise
    assert main(["generate", "--model", str(model_paths["tileable"]), "--seeds", "3", "--device", "cpu",
                 "-o", str(default), "--quiet"]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(default / "seed0003.png")),
                                  np.asarray(Image.open(tmp_path / "--seamless" / "seed0003.png")))
    walk = tmp_path / "walk"
    assert main(["walk", "--model", str(model_paths["plain"]), "--keys", "0:seed=1,2:seed=2", "--size-multiplier",
                 "2", "--device", "cpu", "-o", str(walk), "--quiet"]) == 0
    assert len(list(walk.glob("frame_*.png"))) == 3 and _png_size(walk / "frame_0000.png") == (2 * RES, 2 * RES)
    capsys.readouterr()


@pytest.mark.parametrize("argv, words", [
    (["--size-multiplier", "2", "--no-seamless"], "needs seamless mode"),
    (["--size-multiplier", "9"], "size multiplier must be a whole number from 1 to 8"),
    (["--size-multiplier", "0"], "from 1 to 8"),
])
def test_cli_refuses_bad_texture_options(model_paths, tmp_path, capsys, argv, words):
    out = tmp_path / "o"
    assert main(["generate", "--model", str(model_paths["plain"]), "--seeds", "0", *argv, "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err
    assert not out.exists() or not any(out.iterdir())  # nothing written
    assert main(["walk", "--model", str(model_paths["plain"]), "--keys", "0:seed=1,2:seed=2", *argv,
                 "-o", str(out)]) == 1
    assert words in capsys.readouterr().err


def test_cli_train_tileable_flag():
    import argparse

    from server.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["train", "--data", "d.zip", "-o", "run", "--tileable"])
    assert isinstance(args, argparse.Namespace) and config_from_args(args).tileable is True
    assert config_from_args(parser.parse_args(["train", "--data", "d.zip", "-o", "run"])).tileable is False
