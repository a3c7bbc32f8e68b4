"""Metrics: SWD separates different image distributions, FID/KID math on known statistics,
and a clean, explained refusal when the Inception weights are not present."""

import numpy as np
import pytest
import torch

from gan_core.train.metrics import (
    MetricError,
    MetricUnavailableError,
    SlicedWassersteinDistance,
    feature_statistics,
    fid_from_features,
    frechet_distance,
    inception_path,
    kernel_inception_distance,
    laplacian_pyramid,
    load_inception,
)


def _discs(n, res=32, seed=0):
    rng = np.random.RandomState(seed)
    yy, xx = np.mgrid[0:res, 0:res]
    out = np.full([n, res, res, 3], 230, np.uint8)
    for i in range(n):
        cy, cx = rng.uniform(8, res - 8, size=2)
        mask = (yy - cy) ** 2 + (xx - cx) ** 2 < 36
        out[i][mask] = rng.randint(0, 256, size=3)
    return out


def test_laplacian_pyramid_reconstructs_the_image():
    x = torch.rand([2, 3, 32, 32])
    levels = laplacian_pyramid(x, min_resolution=8)
    assert [lvl.shape[-1] for lvl in levels] == [32, 16, 8]
    rec = levels[-1]
    for band in reversed(levels[:-1]):
        rec = torch.nn.functional.interpolate(rec, scale_factor=2, mode="bilinear", align_corners=False) + band
    assert torch.allclose(rec, x, atol=1e-5)


def test_swd_small_for_same_distribution_large_for_different():
    real = _discs(64, seed=0)
    same = _discs(64, seed=1)
    noise = np.random.RandomState(2).randint(0, 256, size=real.shape).astype(np.uint8)
    swd = SlicedWassersteinDistance(real, patches_per_image=32)
    d_same = swd(same)["swd"]
    d_noise = swd(noise)["swd"]
    assert d_noise > 5 * d_same
    # float NCHW input gives the same value as uint8 NHWC
    as_float = torch.from_numpy(same).permute(0, 3, 1, 2).float() / 127.5 - 1
    assert swd(as_float)["swd"] == pytest.approx(d_same, rel=1e-5)


def test_swd_levels_and_bad_input():
    real = _discs(8)
    out = SlicedWassersteinDistance(real, patches_per_image=16)(real)
    assert len(out["swd_levels"]) == 2 and out["swd"] < 0.2
    with pytest.raises(MetricError):
        SlicedWassersteinDistance(real[:1])
    with pytest.raises(MetricError):
        SlicedWassersteinDistance(real)(_discs(4, res=64))
    with pytest.raises(MetricError):
        SlicedWassersteinDistance(np.zeros([4, 4]))


def test_frechet_distance_matches_closed_form_for_diagonal_gaussians():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    v1, v2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2)
    assert frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(expected)
    assert frechet_distance(mu1, np.diag(v1), mu1, np.diag(v1)) == pytest.approx(0.0, abs=1e-9)


def test_fid_and_kid_on_random_features():
    rng = np.random.RandomState(0)
    a = rng.randn(400, 16)
    b = rng.randn(400, 16)
    c = rng.randn(400, 16) * 1.5 + 0.5
    assert fid_from_features(a, b) < 0.5
    assert fid_from_features(a, c) > 5 * fid_from_features(a, b)
    assert abs(kernel_inception_distance(a, b, num_subsets=20, max_subset_size=200)) < 0.05
    assert kernel_inception_distance(a, c, num_subsets=20, max_subset_size=200) > 0.2
    mu, sigma = feature_statistics(a)
    assert mu.shape == (16,) and sigma.shape == (16, 16)
    with pytest.raises(MetricError):
        feature_statistics(np.zeros(5))
    with pytest.raises(MetricError):
        kernel_inception_distance(a, rng.randn(10, 8))


def test_inception_absent_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.delenv("LATENT_STUDIO_INCEPTION", raising=False)
    with pytest.raises(MetricUnavailableError, match="LATENT_STUDIO_INCEPTION"):
        inception_path()
    with pytest.raises(MetricUnavailableError, match="not found"):
        inception_path(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not torchscript")
    with pytest.raises(MetricUnavailableError, match="TorchScript"):
        load_inception(junk)
