"""ADA augmentation pipeline: identity at p=0 (without paying for grid_sample), exactness of
the pixel-blitting transforms, differentiability, and statistics of the colour transforms."""

import pytest
import torch
import torch.nn.functional as F

from gan_core.train.ada import AdaController
from gan_core.train.augment import AUGMENT_PRESETS, AugmentError, AugmentPipe


def _images(n=8, c=3, res=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand([n, c, res, res], generator=g) * 2 - 1


def test_p_zero_is_identity_without_grid_sample(monkeypatch):
    calls = []
    real_grid_sample = F.grid_sample

    def counting(*args, **kwargs):
        calls.append(1)
        return real_grid_sample(*args, **kwargs)

    monkeypatch.setattr(F, "grid_sample", counting)
    pipe = AugmentPipe.from_preset("bgcc", p=0.0)
    x = _images()
    assert torch.equal(pipe(x), x)
    assert calls == []
    pipe.p = 0.5
    pipe(x)
    assert calls == [1]  # all geometric transforms share ONE sampling pass


def test_colour_only_pipeline_never_resamples(monkeypatch):
    monkeypatch.setattr(F, "grid_sample", lambda *a, **k: pytest.fail("grid_sample called"))
    pipe = AugmentPipe(brightness=1, contrast=1, p=1.0)
    out = pipe(_images())
    assert out.shape == (8, 3, 16, 16)


@pytest.mark.parametrize("name", ["xflip", "rotate90", "xint"])
def test_blit_transforms_permute_pixels_exactly(name):
    # With p=1 every image is transformed; the three "blit" ops land on pixel centres, so the
    # output must hold the input's pixel values (as a multiset), nothing interpolated.
    torch.manual_seed(1)
    pipe = AugmentPipe(**{name: 1}, p=1.0)
    x = torch.arange(16 * 16, dtype=torch.float32).reshape(1, 1, 16, 16).repeat(8, 1, 1, 1)
    out = pipe(x)
    assert torch.allclose(out, out.round(), atol=1e-3)
    if name != "xint":  # translation with reflection padding duplicates border pixels
        for i in range(8):
            assert torch.equal(out[i].flatten().round().sort().values, x[i].flatten().sort().values)
    assert not torch.equal(out, x)  # some image was actually changed


def test_xflip_produces_mirror_images():
    torch.manual_seed(0)
    pipe = AugmentPipe(xflip=1, p=1.0)
    x = _images(n=64)
    out = pipe(x)
    flipped = torch.flip(x, dims=[3])
    is_same = [(torch.allclose(o, a, atol=1e-5)) for o, a in zip(out, x)]
    is_flip = [(torch.allclose(o, f, atol=1e-5)) for o, f in zip(out, flipped)]
    assert all(s or f for s, f in zip(is_same, is_flip))
    assert 15 < sum(is_flip) < 49  # about half are flipped


def test_gradients_flow_through_every_transform():
    pipe = AugmentPipe.from_preset("bgcc", p=1.0)
    x = _images().requires_grad_(True)
    pipe(x).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_brightness_statistics_match_the_configured_std():
    torch.manual_seed(0)
    pipe = AugmentPipe(brightness=1, brightness_std=0.2, p=1.0)
    x = torch.zeros([4000, 3, 2, 2])
    shift = pipe(x).mean(dim=[1, 2, 3])
    assert abs(shift.std().item() - 0.2) < 0.02
    assert abs(shift.mean().item()) < 0.02


def test_probability_scales_the_fraction_of_augmented_images():
    torch.manual_seed(0)
    pipe = AugmentPipe(brightness=1, p=0.25)
    x = torch.zeros([4000, 3, 2, 2])
    changed = (pipe(x).abs().amax(dim=[1, 2, 3]) > 0).float().mean().item()
    assert 0.22 < changed < 0.28


def test_saturation_and_hue_keep_grey_pixels_grey():
    # Grey lies on the luma axis: hue rotation and saturation scaling must leave it unchanged.
    pipe = AugmentPipe(hue=1, saturation=1, p=1.0)
    grey = torch.full([16, 3, 4, 4], 0.3)
    assert torch.allclose(pipe(grey), grey, atol=1e-5)


def test_lumaflip_inverts_grey():
    torch.manual_seed(0)
    pipe = AugmentPipe(lumaflip=1, p=1.0)
    grey = torch.full([64, 3, 2, 2], 0.5)
    out = pipe(grey)
    values = sorted(set(round(v, 4) for v in out[:, 0, 0, 0].tolist()))
    assert values == [-0.5, 0.5]


def test_cutout_zeroes_a_square():
    pipe = AugmentPipe(cutout=1, cutout_size=0.5, p=1.0)
    out = pipe(torch.ones([8, 3, 16, 16]))
    zero_fraction = (out == 0).float().mean(dim=[1, 2, 3])
    assert ((zero_fraction > 0.05) & (zero_fraction <= 0.25)).all()


def test_bad_settings_raise_clear_errors():
    with pytest.raises(AugmentError, match="p=1.5"):
        AugmentPipe(p=1.5)
    pipe = AugmentPipe()
    with pytest.raises(AugmentError):
        pipe.p = -0.1
    with pytest.raises(AugmentError, match="strength"):
        AugmentPipe(xflip=2)
    with pytest.raises(AugmentError, match="preset"):
        AugmentPipe.from_preset("nope")
    with pytest.raises(AugmentError, match="3-channel"):
        AugmentPipe(hue=1, p=1.0)(torch.zeros([2, 1, 4, 4]))
    with pytest.raises(AugmentError, match="N, C, H, W"):
        AugmentPipe(xflip=1, p=1.0)(torch.zeros([3, 4, 4]))
    assert set(AUGMENT_PRESETS["bgc"]) >= {"xflip", "hue", "xfrac"}


def test_ada_controller_moves_p_towards_target():
    ctrl = AdaController(batch_size=16, target=0.6, interval=4, ada_kimg=1.0)
    step_size = 16 * 4 / 1000
    for _ in range(4):  # D confident on reals: r_t = 1 > 0.6 -> p rises
        ctrl.accumulate(torch.ones(16))
        updated = ctrl.end_step()
    assert updated and ctrl.r_t == 1.0
    assert ctrl.p == pytest.approx(step_size)
    for _ in range(8):  # r_t = -1 < 0.6 -> p falls, clamped at 0
        ctrl.accumulate(-torch.ones(16))
        ctrl.end_step()
    assert ctrl.p == 0.0
    for _ in range(4 * 1000):
        ctrl.accumulate(torch.ones(16))
        ctrl.end_step()
    assert ctrl.p == 1.0  # clamped at 1


def test_ada_controller_speed_matches_reference():
    # The reference lets p go 0 -> 1 in ada_kimg=500 thousand images.
    ctrl = AdaController(batch_size=32, ada_kimg=500)
    steps = 0
    while ctrl.p < 1.0:
        ctrl.accumulate(torch.ones(32))
        ctrl.end_step()
        steps += 1
    assert steps * 32 == pytest.approx(500_000, rel=0.01)


def test_ada_controller_state_roundtrip():
    ctrl = AdaController(batch_size=8, ada_kimg=1)
    for _ in range(4):
        ctrl.accumulate(torch.ones(8))
        ctrl.end_step()
    other = AdaController(batch_size=8, ada_kimg=1)
    other.load_state_dict(ctrl.state_dict())
    assert other.p == ctrl.p and other.r_t == ctrl.r_t
