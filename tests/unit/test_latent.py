"""Latent tools: seed parsing, interpolation, easing, keyed walks, truncation and style mixing."""

from __future__ import annotations

import numpy as np
import pytest

from gan_core.latent import (
    EASINGS,
    LatentError,
    Waypoint,
    lerp,
    parse_frame_range,
    parse_keys,
    parse_seeds,
    seeds_to_z,
    slerp,
    style_mix,
    truncate,
    walk_latents,
)
from gan_core.rules import MAX_SEED


def test_parse_seeds_ranges_and_lists():
    assert parse_seeds("0-3,12") == [0, 1, 2, 3, 12]
    assert parse_seeds(" 5 , 2 - 4 ") == [5, 2, 3, 4]
    assert parse_seeds("7") == [7]
    assert parse_seeds(str(MAX_SEED)) == [MAX_SEED]
    assert parse_seeds([3, 1]) == [3, 1]
    assert parse_seeds(9) == [9]


@pytest.mark.parametrize("bad,message", [
    ("", "no seeds"),
    ("abc", "not a seed"),
    ("1.5", "not a seed"),
    ("-3", "non-negative"),
    ("2--3", "non-negative"),
    ("1,,2", "empty item"),
    ("9-2", "backwards"),
    (str(MAX_SEED + 1), "too large"),
    ("0-4294967295", "too many"),
    ([1, -1], "out of range"),
    ([1.5], "whole number"),
    (None, "seeds must be"),
])
def test_parse_seeds_rejects_junk(bad, message):
    with pytest.raises(LatentError, match=message):
        parse_seeds(bad)


def test_seeds_to_z_matches_reference_convention():
    z = seeds_to_z([0, 3], 64)
    assert z.dtype == np.float32 and z.shape == (2, 64)
    np.testing.assert_array_equal(z[1], np.random.RandomState(3).randn(1, 64)[0].astype(np.float32))
    assert not np.allclose(z[0], z[1])


def test_lerp_and_slerp_endpoints_and_shape():
    rng = np.random.RandomState(0)
    a, b = rng.randn(32).astype(np.float32), rng.randn(32).astype(np.float32)
    for fn in (lerp, slerp):
        np.testing.assert_allclose(fn(a, b, 0.0), a, atol=1e-5)
        np.testing.assert_allclose(fn(a, b, 1.0), b, atol=1e-5)
        assert fn(a, b, 0.5).dtype == np.float32
    np.testing.assert_allclose(lerp(a, b, 0.25), a + 0.25 * (b - a), atol=1e-6)


def test_slerp_follows_the_arc():
    a, b = np.array([1.0, 0.0], np.float32), np.array([0.0, 1.0], np.float32)
    np.testing.assert_allclose(slerp(a, b, 0.5), [np.sqrt(0.5), np.sqrt(0.5)], atol=1e-6)
    # a lerp midpoint would have norm 0.707: slerp keeps the norm of unit vectors
    assert abs(np.linalg.norm(slerp(a, b, 0.3)) - 1) < 1e-6
    # parallel vectors: falls back to a straight line rather than dividing by zero
    np.testing.assert_allclose(slerp(a, 2 * a, 0.5), 1.5 * a, atol=1e-6)
    batch = slerp(np.stack([a, a]), np.stack([b, a]), 0.5)
    assert batch.shape == (2, 2)
    np.testing.assert_allclose(batch[1], a, atol=1e-6)


@pytest.mark.parametrize("name", sorted(EASINGS))
def test_easings_are_monotone_from_0_to_1(name):
    fn = EASINGS[name]
    ts = np.linspace(0, 1, 41)
    values = np.array([fn(t) for t in ts])
    assert abs(values[0]) < 1e-9 and abs(values[-1] - 1) < 1e-9
    assert np.all(np.diff(values) >= -1e-12)


def test_smooth_easing_has_zero_speed_at_keys():
    fn = EASINGS["smooth"]
    assert fn(0.01) < 0.001 and 1 - fn(0.99) < 0.001
    assert EASINGS["linear"](0.25) == 0.25


def test_parse_keys():
    keys = parse_keys("48:seed=7, 0:seed=1,96:3")
    assert [(k.frame, k.seed) for k in keys] == [(0, 1), (48, 7), (96, 3)]
    for bad, message in (("", "no keys"), ("0:seed=x", "bad key"), ("a:seed=1", "bad key"),
                         ("0:seed=1,0:seed=2", "same frame"), (f"0:seed={MAX_SEED + 1}", "too large"),
                         ("-1:seed=1", "bad key")):
        with pytest.raises(LatentError, match=message):
            parse_keys(bad)


def test_waypoint_validation():
    with pytest.raises(LatentError, match="exactly one"):
        Waypoint(0)
    with pytest.raises(LatentError, match="exactly one"):
        Waypoint(0, seed=1, z=np.zeros(4))
    with pytest.raises(LatentError, match="finite"):
        Waypoint(0, z=np.array([np.nan, 0.0]))
    with pytest.raises(LatentError, match="wants 8"):
        Waypoint(0, z=np.zeros(4)).vector(8)


def test_walk_hits_keys_and_holds_outside():
    keys = parse_keys("2:seed=1,6:seed=7")
    frames = dict(walk_latents(keys, 16, 0, 8, interp="lerp"))
    assert sorted(frames) == list(range(9))
    z1, z7 = seeds_to_z([1, 7], 16)
    for f in (0, 1, 2):
        np.testing.assert_allclose(frames[f], z1, atol=1e-6)
    for f in (6, 7, 8):
        np.testing.assert_allclose(frames[f], z7, atol=1e-6)
    np.testing.assert_allclose(frames[4], (z1 + z7) / 2, atol=1e-6)
    np.testing.assert_allclose(frames[3], z1 + 0.25 * (z7 - z1), atol=1e-6)


def test_walk_easing_changes_inner_frames_only():
    keys = parse_keys("0:seed=1,4:seed=2")
    lin = dict(walk_latents(keys, 8, 0, 4, interp="lerp", easing="linear"))
    smooth = dict(walk_latents(keys, 8, 0, 4, interp="lerp", easing="smooth"))
    np.testing.assert_allclose(lin[2], smooth[2], atol=1e-6)  # smoothstep(0.5) == 0.5
    assert np.abs(lin[1] - smooth[1]).max() > 1e-3
    z1, z2 = seeds_to_z([1, 2], 8)
    np.testing.assert_allclose(smooth[1], z1 + EASINGS["smooth"](0.25) * (z2 - z1), atol=1e-6)


def test_walk_loop_closes_back_to_first_key():
    keys = parse_keys("0:seed=1,4:seed=2")
    frames = dict(walk_latents(keys, 8, 0, 7, interp="lerp", loop=True))
    z1, z2 = seeds_to_z([1, 2], 8)
    np.testing.assert_allclose(frames[4], z2, atol=1e-6)
    # frame 7 is 3/4 of the way from key 2 back to key 1 (reached on frame 8 == frame 0)
    np.testing.assert_allclose(frames[7], z2 + 0.75 * (z1 - z2), atol=1e-6)
    open_walk = dict(walk_latents(keys, 8, 0, 7, interp="lerp", loop=False))
    np.testing.assert_allclose(open_walk[7], z2, atol=1e-6)
    # step size across the wrap equals the step size inside a segment
    step_wrap = np.linalg.norm(frames[0] - frames[7])
    step_in = np.linalg.norm(frames[5] - frames[4])
    assert abs(step_wrap - step_in) < 1e-4


def test_walk_loop_keys_after_start():
    keys = parse_keys("2:seed=1,5:seed=2")
    frames = dict(walk_latents(keys, 8, 0, 7, interp="lerp", loop=True))
    z1, z2 = seeds_to_z([1, 2], 8)
    # wrap segment runs from frame 5 (seed 2) to frame 10 (= frame 2, seed 1)
    np.testing.assert_allclose(frames[0], z2 + 0.6 * (z1 - z2), atol=1e-6)
    np.testing.assert_allclose(frames[2], z1, atol=1e-6)


def test_walk_is_lazy_and_validates_eagerly():
    keys = parse_keys("0:seed=1,1000000:seed=2")
    gen = walk_latents(keys, 8, 0, 10 ** 6)
    frame, z = next(gen)
    assert frame == 0 and z.shape == (8,)
    with pytest.raises(LatentError, match="start <= end"):
        walk_latents(keys, 8, 5, 2)
    with pytest.raises(LatentError, match="inside frames"):
        walk_latents(keys, 8, 0, 10, loop=True)
    with pytest.raises(LatentError, match="easing"):
        walk_latents(keys, 8, 0, 10, easing="bouncy")
    with pytest.raises(LatentError, match="interpolation"):
        walk_latents(keys, 8, 0, 10, interp="cubic")
    with pytest.raises(LatentError, match="map seeds to w"):
        walk_latents(keys, 8, 0, 10, space="w")


def test_walk_w_space_with_resolver_and_vectors():
    keys = [Waypoint(0, z=np.zeros(4)), Waypoint(2, seed=5)]
    frames = dict(walk_latents(keys, 4, 0, 2, interp="lerp", space="w",
                               resolve=lambda k: np.full(4, 2.0) if k.seed is not None else k.z))
    np.testing.assert_allclose(frames[1], np.ones(4), atol=1e-6)


def test_parse_frame_range():
    assert parse_frame_range("1-250") == (1, 250)
    assert parse_frame_range("7") == (7, 7)
    for bad in ("9-3", "a-b", "-4", ""):
        with pytest.raises(LatentError):
            parse_frame_range(bad)


def test_truncate_and_cutoff():
    ws = np.arange(12, dtype=np.float32).reshape(1, 3, 4)
    w_avg = np.ones(4, np.float32)
    out = truncate(ws, w_avg, 0.5)
    np.testing.assert_allclose(out, 1 + 0.5 * (ws - 1))
    out = truncate(ws, w_avg, 0.0, cutoff=1)
    np.testing.assert_allclose(out[0, 0], w_avg)
    np.testing.assert_allclose(out[0, 1:], ws[0, 1:])
    assert ws[0, 0, 0] == 0  # input untouched


def test_style_mix():
    a = np.zeros((2, 6, 3), np.float32)
    b = np.ones((2, 6, 3), np.float32)
    mixed = style_mix(a, b, 4)
    assert mixed[:, :4].sum() == 0 and np.all(mixed[:, 4:] == 1)
    mixed = style_mix(a, b, [0, 2])
    assert np.all(mixed[:, [0, 2]] == 1) and mixed[:, [1, 3, 4, 5]].sum() == 0
    assert a.sum() == 0
    with pytest.raises(LatentError, match="out of range"):
        style_mix(a, b, 7)
    with pytest.raises(LatentError, match="out of range"):
        style_mix(a, b, [6])
    with pytest.raises(LatentError, match="cannot mix"):
        style_mix(a, np.ones((2, 5, 3)), 2)
