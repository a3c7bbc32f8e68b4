"""StyleGAN2-ADA networks: exactness against the reference fixture, options and errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gan_core.nn.networks import (
    Discriminator,
    Generator,
    NetworkConfigError,
    build_discriminator,
    build_generator,
    preset_kwargs,
)
from tests.support.reference_fixture import load_arrays, load_state

TOL = 1e-4


@pytest.fixture(scope="module")
def expected():
    return load_arrays("expected.npz")


@pytest.fixture(scope="module")
def config(expected):
    return json.loads(str(expected["config"]))


@pytest.fixture(scope="module")
def G(config):
    kwargs = dict(config["G_kwargs"], c_dim=0, img_resolution=32, img_channels=3)
    net = build_generator(kwargs).eval()
    net.load_state_dict(load_state("G_ema_state.npz"), strict=True)
    return net


@pytest.fixture(scope="module")
def D(config):
    kwargs = dict(config["D_kwargs"], c_dim=0, img_resolution=32, img_channels=3)
    net = build_discriminator(kwargs).eval()
    net.load_state_dict(load_state("D_state.npz"), strict=True)
    return net


def _tiny_G(**synthesis):
    return Generator(64, 0, 64, 32, 3, mapping_kwargs={"num_layers": 2},
                     synthesis_kwargs=dict(channel_base=2048, channel_max=128, conv_clamp=256, **synthesis))


def test_state_dict_keys_and_order_equal_reference(G, D):
    for net, name in ((G, "G_ema_state.npz"), (D, "D_state.npz")):
        ref = load_state(name)
        ours = net.state_dict()
        assert list(ours) == list(ref)
        assert all(tuple(ours[k].shape) == tuple(ref[k].shape) for k in ref)


@pytest.mark.parametrize("tag,psi", [("psi1", 1.0), ("psi07", 0.7)])
def test_generator_reproduces_reference(G, expected, tag, psi):
    z = torch.from_numpy(expected["z"])
    c = torch.zeros([4, 0])
    with torch.no_grad():
        ws = G.mapping(z, c, truncation_psi=psi)
        img = G.synthesis(ws, noise_mode="const")
        img_full = G(z, c, truncation_psi=psi, noise_mode="const")
        # batch 1 takes the fused (grouped conv) path; batch 4 the shared-weight path
        img_single = torch.cat([G.synthesis(ws[i:i + 1], noise_mode="const") for i in range(4)])
    np.testing.assert_allclose(ws.numpy(), expected[f"ws_{tag}"], atol=TOL, rtol=0)
    for out in (img, img_full, img_single):
        np.testing.assert_allclose(out.numpy(), expected[f"img_{tag}"], atol=TOL, rtol=0)
    u8 = (img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy().astype(int)
    ref_u8 = expected[f"img_uint8_{tag}"].astype(int)
    # float differences of ~1e-5 may flip a rounding boundary, never more
    assert np.abs(u8 - ref_u8).max() <= 1
    assert (u8 != ref_u8).mean() < 0.001


def test_w_avg_loaded(G, expected):
    np.testing.assert_array_equal(G.mapping.w_avg.numpy(), expected["w_avg"])


@pytest.mark.parametrize("tag", ["psi1", "psi07"])
def test_discriminator_reproduces_reference_batched(D, expected, tag):
    with torch.no_grad():
        logits = D(torch.from_numpy(expected[f"img_{tag}"]), torch.zeros([4, 0]))
    np.testing.assert_allclose(logits.numpy(), expected[f"d_logits_{tag}"], atol=TOL, rtol=0)


def test_discriminator_reproduces_reference_single(D, expected):
    imgs = torch.from_numpy(expected["img_psi1"])
    with torch.no_grad():
        logits = torch.cat([D(imgs[i:i + 1], torch.zeros([1, 0])) for i in range(4)])
    np.testing.assert_allclose(logits.numpy(), expected["d_logits_psi1_single"], atol=TOL, rtol=0)
    # minibatch-std really mixes the batch: batched logits differ from single ones
    assert np.abs(expected["d_logits_psi1"] - expected["d_logits_psi1_single"]).max() > 1e-3


def test_truncation_cutoff_only_touches_first_layers(G, expected):
    z = torch.from_numpy(expected["z"])
    with torch.no_grad():
        ws = G.mapping(z, None, truncation_psi=0.5, truncation_cutoff=3)
    np.testing.assert_allclose(ws[:, 3:].numpy(), expected["ws_psi1"][:, 3:], atol=TOL, rtol=0)
    w_avg = expected["w_avg"]
    want = w_avg + 0.5 * (expected["ws_psi1"][:, :3] - w_avg)
    np.testing.assert_allclose(ws[:, :3].numpy(), want, atol=TOL, rtol=0)


def test_noise_modes(G, expected):
    ws = torch.from_numpy(expected["ws_psi1"][:2])
    with torch.no_grad():
        const = G.synthesis(ws, noise_mode="const")
        none = G.synthesis(ws, noise_mode="none")
        r1 = G.synthesis(ws, noise_mode="random")
        r2 = G.synthesis(ws, noise_mode="random")
    assert (const - none).abs().max() > 1e-4
    assert (r1 - r2).abs().max() > 1e-4
    with pytest.raises(NetworkConfigError, match="noise mode"):
        G.synthesis(ws, noise_mode="loud")


def test_init_kwargs_rebuild_same_network(G):
    json.dumps(G.init_kwargs)
    clone = Generator(**G.init_kwargs)
    clone.load_state_dict(G.state_dict(), strict=True)
    assert clone.num_ws == G.num_ws == 8
    assert (G.z_dim, G.w_dim, G.c_dim, G.img_resolution, G.img_channels) == (64, 64, 0, 32, 3)


def test_update_emas_moves_w_avg_only_when_asked():
    torch.manual_seed(0)
    G = _tiny_G()
    z = torch.randn([4, 64])
    G.mapping(z, None)
    assert G.mapping.w_avg.abs().max() == 0
    G.mapping(z, None, update_emas=True)
    assert G.mapping.w_avg.abs().max() > 0


@pytest.mark.parametrize("g_arch,d_arch", [("orig", "orig"), ("resnet", "skip"), ("skip", "resnet")])
def test_architectures_and_conditioning_shapes(g_arch, d_arch):
    torch.manual_seed(0)
    G = Generator(16, 5, 16, 16, 3, mapping_kwargs={"num_layers": 1},
                  synthesis_kwargs=dict(channel_base=256, channel_max=16, architecture=g_arch))
    D = Discriminator(5, 16, 3, architecture=d_arch, channel_base=256, channel_max=16,
                      mapping_kwargs={"num_layers": 1}, epilogue_kwargs={"mbstd_group_size": 2})
    assert "mapping.embed.weight" in G.state_dict() and "mapping.embed.weight" in D.state_dict()
    assert "mapping.w_avg" not in D.state_dict()
    assert ("synthesis.b8.torgb.weight" in G.state_dict()) == (g_arch == "skip")
    assert ("synthesis.b8.skip.weight" in G.state_dict()) == (g_arch == "resnet")
    z = torch.randn([2, 16])
    c = torch.eye(5)[:2]
    img = G(z, c, truncation_psi=0.5)
    assert img.shape == (2, 3, 16, 16)
    logits = D(img, c)
    assert logits.shape == (2, 1)
    logits.sum().backward()  # gradients reach G through D
    assert G.mapping.fc0.weight.grad is not None and G.mapping.fc0.weight.grad.abs().sum() > 0


def test_fused_and_unfused_modconv_agree(G, expected):
    ws = torch.from_numpy(expected["ws_psi07"])
    with torch.no_grad():
        fused = G.synthesis(ws, noise_mode="const", fused_modconv=True)
        split = G.synthesis(ws, noise_mode="const", fused_modconv=False)
    np.testing.assert_allclose(fused.numpy(), split.numpy(), atol=TOL, rtol=0)


def test_freeze_layers_stores_weights_as_buffers():
    D = Discriminator(0, 16, 3, channel_base=256, channel_max=16, block_kwargs={"freeze_layers": 2})
    params = dict(D.named_parameters())
    assert "b16.fromrgb.weight" not in params and "b16.conv0.weight" not in params
    assert "b16.conv1.weight" in params
    assert "b16.fromrgb.weight" in D.state_dict()


def test_build_rejects_unknown_and_missing_options(config):
    kwargs = dict(config["G_kwargs"], c_dim=0, img_resolution=32, img_channels=3)
    with pytest.raises(NetworkConfigError, match="bogus"):
        build_generator(dict(kwargs, bogus=1))
    with pytest.raises(NetworkConfigError, match="chanel_base"):
        build_generator(dict(kwargs, synthesis_kwargs={"chanel_base": 1}))
    with pytest.raises(NetworkConfigError, match="img_resolution"):
        build_generator({k: v for k, v in kwargs.items() if k != "img_resolution"})
    with pytest.raises(NetworkConfigError, match="class"):
        build_generator(dict(kwargs, class_name="evil.module.Thing"))
    with pytest.raises(NetworkConfigError, match="mbstd"):
        build_discriminator(dict(config["D_kwargs"], c_dim=0, img_resolution=32, img_channels=3,
                                 epilogue_kwargs={"mbstd_groupsize": 4}))
    with pytest.raises(NetworkConfigError, match="power of two"):
        Generator(8, 0, 8, 48, 3)
    with pytest.raises(NetworkConfigError, match="architecture"):
        Discriminator(0, 16, 3, architecture="transformer")
    assert issubclass(NetworkConfigError, ValueError)


def test_bad_inputs_give_clear_errors(G, D):
    with pytest.raises(NetworkConfigError, match="ws must have shape"):
        G.synthesis(torch.zeros([1, 3, 64]))
    with pytest.raises(NetworkConfigError, match="multiple of the minibatch-std group"):
        D(torch.zeros([6, 3, 32, 32]), torch.zeros([6, 0]))
    with pytest.raises(NetworkConfigError, match=r"\[N, 3, 32, 32\]"):
        D(torch.zeros([4, 3, 16, 16]), torch.zeros([4, 0]))
    with pytest.raises(NetworkConfigError, match=r"z must have shape \[N, 64\]"):
        G.mapping(torch.zeros([2, 32]), None)
    cond = Generator(8, 3, 8, 8, 3, synthesis_kwargs={"channel_base": 64, "channel_max": 8})
    with pytest.raises(NetworkConfigError, match="conditional"):
        cond(torch.zeros([2, 8]), None)


def test_presets():
    tiny = preset_kwargs(32, "tiny")
    G = build_generator(tiny["G"])
    assert {k: tuple(v.shape) for k, v in G.state_dict().items()} == {
        k: tuple(v.shape) for k, v in load_state("G_ema_state.npz").items()}
    D = build_discriminator(tiny["D"])
    assert set(D.state_dict()) == set(load_state("D_state.npz"))
    big = preset_kwargs(256, "stylegan2")
    assert big["G"]["synthesis_kwargs"]["channel_base"] == 32768 and big["G"]["mapping_kwargs"]["num_layers"] == 8
    with pytest.raises(NetworkConfigError, match="preset"):
        preset_kwargs(64, "huge")
    with pytest.raises(NetworkConfigError, match="power of two"):
        preset_kwargs(100, "tiny")


def test_mixed_precision_path_runs_and_stays_close(monkeypatch, config, expected):
    """fp16 blocks only run on CUDA; stand in for the absent GPU by allowing fp16 on the CPU,
    so the reduced-precision code path (pre-normalisation, casts, clamps) is exercised."""
    import gan_core.nn.networks as networks

    monkeypatch.setattr(networks, "_compute_dtype",
                        lambda use_fp16, force_fp32, device: torch.float16 if use_fp16 and not force_fp32
                        else torch.float32)
    kw = dict(config["G_kwargs"], c_dim=0, img_resolution=32, img_channels=3)
    kw["synthesis_kwargs"] = dict(kw["synthesis_kwargs"], num_fp16_res=3)
    G = build_generator(kw).eval()
    G.load_state_dict(load_state("G_ema_state.npz"))
    seen = []
    G.synthesis.b32.conv1.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    z = torch.from_numpy(expected["z"])
    with torch.no_grad():
        img = G(z, None, truncation_psi=0.7, noise_mode="const")
        img_fp32 = G(z, None, truncation_psi=0.7, noise_mode="const", force_fp32=True)
    assert seen == [torch.float16, torch.float32] and img.dtype == torch.float32
    diff = (img.numpy() - expected["img_psi07"])
    assert 0 < np.abs(diff).max() < 0.05 and np.abs(diff).mean() < 5e-3
    np.testing.assert_allclose(img_fp32.numpy(), expected["img_psi07"], atol=TOL, rtol=0)


def test_cpu_never_uses_reduced_precision(expected, config):
    kw = dict(config["G_kwargs"], c_dim=0, img_resolution=32, img_channels=3)
    kw["synthesis_kwargs"] = dict(kw["synthesis_kwargs"], num_fp16_res=4)
    G = build_generator(kw).eval()
    G.load_state_dict(load_state("G_ema_state.npz"))
    with torch.no_grad():
        img = G(torch.from_numpy(expected["z"]), None, noise_mode="const")
    np.testing.assert_allclose(img.numpy(), expected["img_psi1"], atol=TOL, rtol=0)


def _naive_upfirdn(x, f, up, down, pads, gain):
    """Textbook upfirdn: zero-stuff, pad (negative = crop), correlate with flipped filter, decimate."""
    n, c, h, w = x.shape
    big = torch.zeros([n, c, h * up, w * up])
    big[:, :, ::up, ::up] = x
    big = torch.nn.functional.pad(big, list(pads))
    k = (f * gain).flip([0, 1])[None, None].repeat(c, 1, 1, 1)
    return torch.nn.functional.conv2d(big, k, groups=c)[:, :, ::down, ::down]


@pytest.mark.parametrize("up,down,pads", [(2, 1, (2, 1, 2, 1)), (2, 1, (1, 1, 1, 1)), (2, 1, (0, 3, 1, 0)),
                                          (1, 2, (1, 1, 1, 1)), (1, 1, (2, 2, 2, 2)), (1, 1, (-1, 2, 0, 1)),
                                          (2, 2, (1, 1, 1, 1)), (4, 1, (2, 1, 2, 1))])
def test_upfirdn2d_fast_paths_equal_textbook(up, down, pads):
    from gan_core.nn.layers import setup_filter, upfirdn2d

    torch.manual_seed(0)
    x = torch.randn([2, 3, 6, 6])
    f = setup_filter([1, 2, 5, 1])  # asymmetric taps: a flipped or shifted filter would show
    got = upfirdn2d(x, f, up=up, down=down, padding=list(pads), gain=up * up)
    want = _naive_upfirdn(x, f, up, down, pads, up * up)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_one_by_one_resampling_convs_commute_with_filter():
    from gan_core.nn.layers import conv2d_resample, downsample2d, setup_filter, upsample2d

    torch.manual_seed(0)
    x, w = torch.randn([2, 4, 8, 8]), torch.randn([5, 4, 1, 1])
    f = setup_filter()
    conv = torch.nn.functional.conv2d
    torch.testing.assert_close(conv2d_resample(x, w, f, up=2), upsample2d(conv(x, w), f), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(conv2d_resample(x, w, f, down=2), downsample2d(conv(x, w), f), atol=1e-5, rtol=1e-5)


def test_clamp_is_skipped_only_when_it_would_change_nothing():
    """clamp_symmetric returns x itself when every value is inside [-c, c] (the CPU shortcut);
    values and first and second derivatives then equal torch's clamp. Out-of-range values
    and NaN still take the real clamp."""
    from gan_core.nn.layers import clamp_symmetric

    gen = torch.Generator().manual_seed(0)
    inside = (torch.randn([2, 3, 5, 5], generator=gen) * 50).clamp(-255, 255)
    inside[0, 0, 0, 0] = 256.0  # on the bound: torch's clamp passes this gradient too
    for x0, clamped in ((inside, False), (inside * 3, True)):
        results = []
        for fn in (lambda t: clamp_symmetric(t, 256.0), lambda t: t.clamp(-256.0, 256.0)):
            x = x0.clone().requires_grad_(True)
            y = fn(x)
            g, = torch.autograd.grad((y.square() * x0.sign()).sum(), [x], create_graph=True)
            gg, = torch.autograd.grad(g.square().sum(), [x])
            results.append((y.detach(), g.detach(), gg))
        for ours, torchs in zip(*results):
            assert torch.equal(ours, torchs)
        assert (results[0][0].abs().max() == 256) and ((x0.abs() > 256).any() == clamped)
    x = inside.clone()
    assert clamp_symmetric(x, 256.0) is x, "nothing out of range: no new tensor, no pass over it"
    assert clamp_symmetric(x, None) is x and clamp_symmetric(x, -1) is x
    big = inside * 3
    out = clamp_symmetric(big, 256.0, inplace=True)
    assert out is big and big.abs().max() == 256, "in place when asked"
    nan = inside.clone()
    nan[1, 2, 3, 4] = float("nan")
    nan[0, 1, 1, 1] = 1000.0
    out = clamp_symmetric(nan, 256.0)
    assert out[0, 1, 1, 1] == 256 and torch.isnan(out[1, 2, 3, 4]), "NaN present: the real clamp runs"
