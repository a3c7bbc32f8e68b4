"""Loading StyleGAN2-ADA snapshot pickles: the reference fixture and our own synthetic ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gan_core.models.pickle_import import load_sg2ada_pickle
from gan_core.models.safe_unpickle import read_snapshot
from tests.support.legacy_fixture import FIXTURE, PKL, pickles


@pytest.fixture(scope="module")
def loaded():
    return load_sg2ada_pickle(PKL)


@pytest.fixture(scope="module")
def expected():
    return np.load(FIXTURE / "expected.npz")


def test_plain_data_reading_gives_reference_state_dicts_in_order():
    snapshot = read_snapshot(PKL)
    for part, npz in (("G_ema", "G_ema_state.npz"), ("D", "D_state.npz")):
        reference = np.load(FIXTURE / npz)
        state = snapshot[part].state_dict()
        assert list(state) == list(reference.files)
        for key in reference.files:
            assert np.array_equal(state[key].numpy(), reference[key]), key
    # G was perturbed apart from G_ema in the fixture: the reader must keep them apart.
    g, g_ema = snapshot["G"].state_dict(), snapshot["G_ema"].state_dict()
    assert list(g) == list(g_ema)
    assert any(not torch.equal(g[k], g_ema[k]) for k in g)


def test_fixture_loads_to_exact_reference_tensors(loaded):
    for part, npz in (("G_ema", "G_ema_state.npz"), ("D", "D_state.npz")):
        reference = np.load(FIXTURE / npz)
        pickles.assert_state_equal(loaded[part], {k: reference[k] for k in reference.files})


def test_fixture_kwargs_and_metadata(loaded):
    config = pickles.fixture_config()
    want_G = {k: v for k, v in config["G_kwargs"].items() if k != "class_name"}
    want_G.update(c_dim=0, img_resolution=32, img_channels=3)
    assert loaded["G_kwargs"] == want_G
    assert loaded["G_ema"].init_kwargs == want_G
    assert loaded["D_kwargs"]["epilogue_kwargs"] == {"mbstd_group_size": 4}
    assert loaded["augment_p"] == pytest.approx(config["aug_p"])
    assert loaded["training_set_kwargs"]["resolution"] == 32
    assert not loaded["G_ema"].training and not any(p.requires_grad for p in loaded["G_ema"].parameters())


def test_fixture_G_ema_reproduces_reference_images_and_ws(loaded, expected):
    G = loaded["G_ema"]
    z = torch.from_numpy(expected["z"]).float()
    c = torch.zeros([len(z), 0])
    with torch.no_grad():
        for psi, suffix in ((1.0, "psi1"), (0.7, "psi07")):
            ws = G.mapping(z, c, truncation_psi=psi)
            assert np.abs(ws.numpy() - expected[f"ws_{suffix}"]).max() <= 1e-4
            img = G.synthesis(ws, noise_mode="const")
            assert np.abs(img.numpy() - expected[f"img_{suffix}"]).max() <= 1e-4


def test_fixture_non_ema_G_reproduces_its_own_images(loaded, expected):
    z = torch.from_numpy(expected["z"]).float()
    with torch.no_grad():
        img = loaded["G"](z, torch.zeros([4, 0]), truncation_psi=1, noise_mode="const").numpy()
    assert np.abs(img - expected["img_G_psi1"]).max() <= 1e-4
    assert np.abs(img - expected["img_psi1"]).max() > 1e-3  # really G, not G_ema again


def test_fixture_D_reproduces_reference_logits(loaded, expected):
    with torch.no_grad():
        logits = loaded["D"](torch.from_numpy(expected["img_psi1"]), torch.zeros([4, 0])).numpy()
    assert np.abs(logits - expected["d_logits_psi1"]).max() <= 1e-4


@pytest.mark.parametrize(
    "variant",
    [
        dict(res=16, c_dim=0, layers=2),
        dict(res=8, c_dim=3, layers=2),  # conditional: mapping.embed
        dict(res=8, c_dim=0, layers=8),  # paper-style 8-layer mapping
        dict(res=64, c_dim=0, layers=2),
    ],
    ids=["res16", "conditional", "mapping8", "res64"],
)
def test_synthetic_snapshots_load_exactly(tmp_path, variant):
    data, G_ema_state, G_state, D_state = pickles.synthetic_snapshot(**variant)
    path = pickles.dump(data, tmp_path / "net.pkl")
    out = load_sg2ada_pickle(path)
    pickles.assert_state_equal(out["G_ema"], G_ema_state)
    pickles.assert_state_equal(out["G"], G_state)
    pickles.assert_state_equal(out["D"], D_state)
    G = out["G_ema"]
    assert (G.img_resolution, G.c_dim, out["G_kwargs"]["mapping_kwargs"]["num_layers"]) == (
        variant["res"], variant["c_dim"], variant["layers"])
    if variant["c_dim"]:
        assert "mapping.embed.weight" in G.state_dict()
    c = torch.zeros([2, G.c_dim])
    if G.c_dim:
        c[:, 1] = 1
    with torch.no_grad():
        img = G(torch.randn([2, G.z_dim]), c, noise_mode="const")
    assert img.shape == (2, 3, variant["res"], variant["res"]) and torch.isfinite(img).all()


def test_snapshot_without_augment_pipe_or_D(tmp_path):
    data, G_ema_state, _, _ = pickles.synthetic_snapshot(with_D=False, augment_p=None)
    out = load_sg2ada_pickle(pickles.dump(data, tmp_path / "net.pkl"))
    assert out["augment_p"] is None and out["D"] is None and out["D_kwargs"] is None
    pickles.assert_state_equal(out["G_ema"], G_ema_state)


def test_fp16_setting_is_kept_but_cpu_runs_fp32(tmp_path):
    data, G_ema_state, _, _ = pickles.synthetic_snapshot(num_fp16_res=2)
    out = load_sg2ada_pickle(pickles.dump(data, tmp_path / "net.pkl"))
    assert out["G_kwargs"]["synthesis_kwargs"]["num_fp16_res"] == 2
    assert out["G_ema"].init_kwargs["synthesis_kwargs"]["num_fp16_res"] == 2
    with torch.no_grad():
        img = out["G_ema"](torch.randn([1, 16]), torch.zeros([1, 0]), noise_mode="const")
    assert img.dtype == torch.float32


def test_module_source_is_never_executed(tmp_path):
    marker = tmp_path / "module_src_was_executed"
    evil_src = f"open({str(marker)!r}, 'w').write('pwned')\nclass Generator:\n    pass\n"
    data, G_ema_state, _, _ = pickles.synthetic_snapshot(module_src=evil_src)
    out = load_sg2ada_pickle(pickles.dump(data, tmp_path / "net.pkl"))
    assert not marker.exists()
    pickles.assert_state_equal(out["G_ema"], G_ema_state)
    # The text is kept as data for provenance, exactly as written.
    assert read_snapshot(tmp_path / "net.pkl")["G_ema"].module_src == evil_src


def test_stylegan3_repository_stylegan2_kwargs_are_folded_into_synthesis(tmp_path):
    from gan_core.nn.networks import build_generator

    state = pickles.random_state(build_generator(pickles.tiny_G_kwargs(res=8)), 5)
    # The stylegan3 repository's --cfg=stylegan2 generator: synthesis options at top level.
    sg3_repo_kwargs = dict(z_dim=16, w_dim=16, mapping_kwargs=dict(num_layers=2), channel_base=256, channel_max=32,
                           num_fp16_res=0, conv_clamp=256, fused_modconv_default="inference_only",
                           c_dim=0, img_resolution=8, img_channels=3)
    out = load_sg2ada_pickle(pickles.dump(pickles.snapshot(state, sg3_repo_kwargs, augment_p=None), tmp_path / "n.pkl"))
    pickles.assert_state_equal(out["G_ema"], state)
    assert out["G_kwargs"] == sg3_repo_kwargs  # the pickle's own, for provenance
    assert out["G_ema"].init_kwargs["synthesis_kwargs"] == pickles.tiny_G_kwargs(res=8)["synthesis_kwargs"]


def test_option_given_twice_with_different_values_is_refused(tmp_path):
    from gan_core.models.pickle_import import LegacyPickleError
    from gan_core.nn.networks import build_generator

    kwargs = pickles.tiny_G_kwargs(res=8)
    state = pickles.random_state(build_generator(kwargs), 6)
    kwargs = dict(kwargs, channel_base=512)  # synthesis_kwargs says 256
    with pytest.raises(LegacyPickleError, match="channel_base twice"):
        load_sg2ada_pickle(pickles.dump(pickles.snapshot(state, kwargs, augment_p=None), tmp_path / "n.pkl"))


def test_protocol_3_snapshot_loads(tmp_path):
    # Python 3.7 (the reference's era) pickles with protocol 3: text GLOBALs, builtins.set.
    import pickletools

    data, G_ema_state, G_state, D_state = pickles.synthetic_snapshot(res=8)
    path = pickles.dump(data, tmp_path / "p3.pkl", protocol=3)
    ops = {op.name for op, _, _ in pickletools.genops(path.read_bytes())}
    assert "GLOBAL" in ops and "STACK_GLOBAL" not in ops and "EMPTY_SET" not in ops
    out = load_sg2ada_pickle(path)
    pickles.assert_state_equal(out["G_ema"], G_ema_state)
    pickles.assert_state_equal(out["G"], G_state)
    pickles.assert_state_equal(out["D"], D_state)


@pytest.mark.gpu
def test_fixture_loads_onto_cuda(expected):
    out = load_sg2ada_pickle(PKL, device="cuda")
    assert next(out["G_ema"].parameters()).device.type == "cuda"
    z = torch.from_numpy(expected["z"]).float().cuda()
    with torch.no_grad():
        img = out["G_ema"](z, torch.zeros([4, 0], device="cuda"), truncation_psi=0.7, noise_mode="const")
    # Looser than on the CPU: cuDNN may run these convolutions in TF32.
    assert np.abs(img.float().cpu().numpy() - expected["img_psi07"]).max() <= 1e-2
