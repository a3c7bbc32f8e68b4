"""Semantic directions (gan_core.directions): SeFa from a generator's own weights, layer
ranges, and walks that move along directions with per-frame amounts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gan_core import rules
from gan_core.directions import (Direction, DirectionError, WalkDirection, compute_directions, layer_range,
                                 parse_direction_id, preview_ws, sefa, style_layers, style_weights)
from gan_core.generate import ModelRunner
from gan_core.latent import Waypoint, seeds_to_z, walk_latents
from gan_core.models.checkpoint import save_network
from gan_core.nn.networks import build_generator, preset_kwargs

RANGES = rules.DIRECTION_RANGES


def _tiny(resolution: int = 32, seed: int = 0):
    torch.manual_seed(seed)
    return build_generator(preset_kwargs(resolution, "tiny")["G"]).eval()


@pytest.fixture(scope="module")
def G():
    return _tiny()


@pytest.fixture(scope="module")
def runner(G):
    return ModelRunner(G, device="cpu")


# ----------------------------------------------------------------------------- the directions


@pytest.mark.parametrize("name", RANGES)
def test_directions_are_orthonormal_ranked_and_sign_fixed(G, name):
    dirs = compute_directions(G, name, rules.MAX_DIRECTIONS)
    assert [d.id for d in dirs] == [f"{name}:{i}" for i in range(rules.MAX_DIRECTIONS)]
    vecs = np.stack([d.vector for d in dirs])
    assert vecs.dtype == np.float32 and vecs.shape == (rules.MAX_DIRECTIONS, G.w_dim)
    np.testing.assert_allclose(vecs @ vecs.T, np.eye(len(dirs)), atol=1e-5)
    values = [d.eigenvalue for d in dirs]
    assert values == sorted(values, reverse=True) and values[-1] > 0
    for v in vecs:  # the largest-magnitude component is positive
        assert v[np.argmax(np.abs(v))] > 0
    assert all(d.layers == layer_range(G, name) for d in dirs)


def test_directions_are_deterministic_from_a_file_or_a_generator(G, tmp_path):
    path = save_network(tmp_path / "m.safetensors", G)
    from_file = compute_directions(ModelRunner(path, device="cpu"), "coarse", 8)
    again = compute_directions(G, "coarse", 8)
    for a, b in zip(from_file, again):
        assert a.id == b.id and a.layers == b.layers
        np.testing.assert_array_equal(a.vector, b.vector)
    # asking for fewer gives the same leading directions (ids stay stable whatever k is)
    fewer = compute_directions(G, "coarse", 3)
    for a, b in zip(fewer, again):
        np.testing.assert_array_equal(a.vector, b.vector)


def test_sefa_matches_the_svd_of_the_normalised_style_weights(G):
    """An independent route to the same vectors: the right singular vectors of A (rows unit)."""
    weights = style_weights(G, layer_range(G, "all"))
    rows = sum(layer["affine"].weight.shape[0] for layer in style_layers(G))
    assert weights.shape == (rows, G.w_dim)
    vecs, values = sefa(weights, 6)
    a = weights / np.linalg.norm(weights, axis=1, keepdims=True)
    _, sv, vt = np.linalg.svd(a, full_matrices=False)
    np.testing.assert_allclose(values, sv[:6] ** 2, rtol=1e-9)
    np.testing.assert_allclose(np.abs(np.sum(vecs * vt[:6], axis=1)), 1.0, atol=1e-5)


def test_the_first_direction_moves_the_styles_most(G):
    """SeFa's promise in style space: no unit vector changes the normalised styles more."""
    layers = layer_range(G, "all")
    weights = style_weights(G, layers)
    a = weights / np.linalg.norm(weights, axis=1, keepdims=True)
    first = compute_directions(G, "all", 1)[0].vector.astype(np.float64)
    rng = np.random.default_rng(0)
    randoms = rng.standard_normal((200, G.w_dim))
    randoms /= np.linalg.norm(randoms, axis=1, keepdims=True)
    assert np.sum((a @ first) ** 2) >= np.max(np.sum((a @ randoms.T) ** 2, axis=0))


@pytest.mark.parametrize("name", RANGES)
def test_the_first_direction_changes_the_image_more_than_a_random_one(runner, name):
    dirs = compute_directions(runner, name, 1)
    start, end = dirs[0].layers
    ws = runner.map_z(seeds_to_z(range(8), runner.z_dim), psi=0.7)
    base = runner.synthesize_ws(ws).astype(np.float64)

    def change(vector):  # mean absolute pixel change when every image moves 1 unit along `vector`
        moved = ws.copy()
        moved[:, start:end] += vector
        return np.abs(runner.synthesize_ws(moved).astype(np.float64) - base).mean()

    rng = np.random.default_rng(1)
    randoms = rng.standard_normal((16, runner.w_dim)).astype(np.float32)
    randoms /= np.linalg.norm(randoms, axis=1, keepdims=True)
    random_changes = [change(v) for v in randoms]
    first = change(dirs[0].vector)
    assert first > 1.1 * np.mean(random_changes), (first, random_changes)
    if name == "all":
        assert first > max(random_changes), (first, random_changes)


# ----------------------------------------------------------------------------- layer ranges


def test_layer_ranges_follow_the_resolution_bands():
    # 256 px: 14 ws. w index -> resolution: 4 | 8 8 | 16 16 | 32 32 | 64 64 | 128 128 | 256 256 256
    G = _tiny(256)
    assert G.num_ws == 14
    assert layer_range(G, "all") == (0, 14)
    assert layer_range(G, "coarse") == (0, 3)
    assert layer_range(G, "middle") == (3, 7)
    assert layer_range(G, "fine") == (7, 14)


@pytest.mark.parametrize("resolution, expected", [
    (32, {"coarse": (0, 3), "middle": (3, 5), "fine": (5, 8)}),  # 4 resolutions: 4-8 | 16 | 32
    (16, {"coarse": (0, 1), "middle": (1, 3), "fine": (3, 6)}),  # 3 resolutions: one each
])
def test_small_models_split_their_resolutions_in_three(resolution, expected):
    G = _tiny(resolution)
    got = {name: layer_range(G, name) for name in expected}
    assert got == expected
    # the three ranges tile the layers, in order
    assert got["coarse"][0] == 0 and got["coarse"][1] == got["middle"][0]
    assert got["middle"][1] == got["fine"][0] and got["fine"][1] == G.num_ws


def test_a_model_too_small_for_a_range_says_so():
    G = _tiny(8)
    assert layer_range(G, "coarse") == (0, 1)
    with pytest.raises(DirectionError, match="8 px model has too few layers for a 'fine' range"):
        layer_range(G, "fine")


@pytest.mark.parametrize("call, words", [
    (lambda G: layer_range(G, "deep"), "layers must be one of all, coarse, middle, fine, got 'deep'"),
    (lambda G: compute_directions(G, "all", 0), "k must be a whole number from 1 to 16"),
    (lambda G: compute_directions(G, "all", rules.MAX_DIRECTIONS + 1), "k must be a whole number from 1 to 16"),
    (lambda G: compute_directions(G, "all", True), "k must be a whole number"),
    (lambda G: compute_directions(object(), "all", 4), "need a StyleGAN2 generator"),
])
def test_bad_direction_requests_are_refused(G, call, words):
    with pytest.raises(DirectionError, match=words.replace("(", r"\(").replace(")", r"\)")):
        call(G)


@pytest.mark.parametrize("text, expected", [("coarse:0", ("coarse", 0)), ("all:15", ("all", 15))])
def test_direction_ids_parse(text, expected):
    assert parse_direction_id(text) == expected


@pytest.mark.parametrize("text", ["coarse", "coarse:", "deep:1", "fine:-1", "fine:x", "all:16", "", None])
def test_bad_direction_ids_are_refused(text):
    with pytest.raises(DirectionError, match="unknown direction id"):
        parse_direction_id(text)


def test_preview_latents_walk_symmetrically_around_the_centre(G):
    d = compute_directions(G, "middle", 1)[0]
    base = np.random.default_rng(0).standard_normal((G.num_ws, G.w_dim)).astype(np.float32)
    ws = preview_ws(base, d, 4.0, steps=5)
    assert ws.shape == (5, G.num_ws, G.w_dim)
    np.testing.assert_array_equal(ws[2], base)
    start, end = d.layers
    np.testing.assert_array_equal(ws[:, :start], np.broadcast_to(base[:start], ws[:, :start].shape))
    np.testing.assert_array_equal(ws[:, end:], np.broadcast_to(base[end:], ws[:, end:].shape))
    np.testing.assert_allclose(ws[4, start:end] - base[start:end], np.broadcast_to(4.0 * d.vector, (end - start, G.w_dim)),
                               atol=1e-5)
    np.testing.assert_allclose(ws[0, start:end] - base[start:end], -(ws[4, start:end] - base[start:end]), atol=1e-5)


# ----------------------------------------------------------------------------- walks along directions

KEYS = [Waypoint(frame=2, seed=3), Waypoint(frame=6, seed=9)]
START, END = 1, 7  # 7 frames, the first before the first key


def _amounts(*values):
    return np.asarray(values, dtype=np.float32)


def _expected_frames(runner, directions, interp, psi, batch_size):
    """The walk computed from the public pieces: the latent path, map_z / broadcast, the offsets
    (rendered in the walk's batches: CPU convolutions may round differently per batch size)."""
    space = "w" if interp == "lerp" else "z"
    if space == "w":
        def resolve(key):
            return runner.map_z(key.vector(runner.z_dim)[None], psi=psi)[0, 0]
        latents = list(walk_latents(KEYS, runner.w_dim, START, END, interp=interp, space="w", resolve=resolve))
        ws = np.repeat(np.stack([v for _, v in latents])[:, None], runner.num_ws, axis=1)
    else:
        latents = list(walk_latents(KEYS, runner.z_dim, START, END, interp=interp, space="z"))
        ws = runner.map_z(np.stack([v for _, v in latents]), psi=psi)
    for d in directions:
        start, end = d.layers
        ws[:, start:end] += np.asarray(d.amounts)[:, None, None] * d.vector
    return runner.synthesize_ws(ws, batch_size=batch_size)


@pytest.mark.parametrize("interp", ["slerp", "lerp"])
def test_walk_frames_follow_the_amounts_given_per_frame(runner, interp):
    coarse, fine = compute_directions(runner, "coarse", 1)[0], compute_directions(runner, "fine", 2)[1]
    directions = [
        WalkDirection(coarse.vector, coarse.layers, _amounts(0, 1, 2, 3, 4, 3, -8)),
        WalkDirection(fine.vector, fine.layers, _amounts(5, 0, 0, -2.5, 0, 0, 1)),
    ]
    got = list(runner.render_walk(KEYS, START, END, interp=interp, psi=0.7, batch_size=3, directions=directions))
    assert [f for f, _ in got] == list(range(START, END + 1))
    expected = _expected_frames(runner, directions, interp, 0.7, 3)
    # the keys are mapped and the frames synthesised through other calls than the walk's, so a
    # last-bit difference may flip one channel of a pixel by one level (CI saw 1 value in 21504)
    _same_but_for_rounding(np.stack([img for _, img in got]), expected)
    plain = np.stack([img for _, img in runner.render_walk(KEYS, START, END, interp=interp, psi=0.7)])
    moved = [not np.array_equal(a, b) for a, b in zip(plain, expected)]
    assert moved == [True] * 7  # every frame has a non-zero amount somewhere


def _same_but_for_rounding(a, b):
    """Equal up to the last bits of the float kernels: the CPU's matrix and convolution
    libraries pick their code path by batch shape and memory alignment, so the same latent in
    another batch (a resumed walk) or through another call path can round one channel of a
    pixel the other way. At most 1 level, on at most 0.1 % of the values."""
    diff = np.abs(a.astype(int) - b.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.001, (diff.max(), (diff > 0).mean())


def test_zero_amounts_give_the_plain_walk_and_skipped_frames_stay_skipped(runner):
    d = compute_directions(runner, "all", 1)[0]
    zero = [WalkDirection(d.vector, d.layers, np.zeros(END - START + 1, np.float32))]
    plain = list(runner.render_walk(KEYS, START, END, psi=0.7))
    edited = list(runner.render_walk(KEYS, START, END, psi=0.7, directions=zero))
    assert [f for f, _ in edited] == [f for f, _ in plain]
    for (_, a), (_, b) in zip(plain, edited):
        _same_but_for_rounding(a, b)
    ramp = [WalkDirection(d.vector, d.layers, np.linspace(-3, 3, END - START + 1, dtype=np.float32))]
    full = dict(runner.render_walk(KEYS, START, END, psi=0.7, directions=ramp))
    part = dict(runner.render_walk(KEYS, START, END, psi=0.7, directions=ramp, skip_frames={1, 4}))
    assert sorted(part) == [2, 3, 5, 6, 7]
    for frame, img in part.items():  # a resumed walk renders the same frames as a full one
        _same_but_for_rounding(img, full[frame])


def test_truncation_acts_on_the_keys_not_on_the_offsets(runner):
    """An amount is the same distance in W at every psi: at psi 0 the keys collapse onto
    w_avg, but the direction still moves the image."""
    d = compute_directions(runner, "all", 1)[0]
    n = END - START + 1
    moved = [WalkDirection(d.vector, d.layers, np.full(n, 4.0, np.float32))]
    frames = np.stack([img for _, img in runner.render_walk(KEYS, START, END, psi=0.0, batch_size=8,
                                                             directions=moved)])
    w_avg = runner.G.mapping.w_avg.detach().numpy()
    expected_ws = np.repeat(np.repeat(w_avg[None, None], runner.num_ws, axis=1), n, axis=0)
    expected_ws[:, d.layers[0]:d.layers[1]] += 4.0 * d.vector
    np.testing.assert_array_equal(frames, runner.synthesize_ws(expected_ws, batch_size=8))


@pytest.mark.parametrize("edit, words", [
    (lambda d, n: WalkDirection(d.vector, d.layers, np.zeros(n - 1)), r"has 6 numbers; the walk has 7 frames \(1-7\)"),
    (lambda d, n: WalkDirection(d.vector, d.layers, np.zeros(n + 1)), "has 8 numbers; the walk has 7 frames"),
    (lambda d, n: WalkDirection(d.vector, d.layers, np.r_[np.zeros(n - 1), np.nan]),
     r"directions\[0\].amounts\[6\] must be from -100.0 to 100.0"),
    (lambda d, n: WalkDirection(d.vector, d.layers, np.r_[101.0, np.zeros(n - 1)]),
     r"directions\[0\].amounts\[0\] must be from -100.0 to 100.0, got 101.0"),
    (lambda d, n: WalkDirection(d.vector, d.layers, []), "must be a non-empty list of numbers"),
    (lambda d, n: WalkDirection(d.vector[:5], d.layers, np.zeros(n)), "the vector must be 64 finite numbers"),
    (lambda d, n: WalkDirection(np.full(64, np.inf), d.layers, np.zeros(n)), "the vector must be 64 finite numbers"),
    (lambda d, n: WalkDirection(d.vector, (3, 3), np.zeros(n)), r"layers \[3, 3\) must lie within \[0, 8\)"),
    (lambda d, n: WalkDirection(d.vector, (0, 9), np.zeros(n)), r"layers \[0, 9\) must lie within \[0, 8\)"),
])
def test_bad_walk_directions_are_refused_before_any_frame(runner, edit, words):
    d = compute_directions(runner, "all", 1)[0]
    with pytest.raises(DirectionError, match=words):
        runner.render_walk(KEYS, START, END, directions=[edit(d, END - START + 1)])


def test_too_many_walk_directions_are_refused(runner):
    d = compute_directions(runner, "all", 1)[0]
    many = [WalkDirection(d.vector, d.layers, np.zeros(END - START + 1))] * (rules.MAX_WALK_DIRECTIONS + 1)
    with pytest.raises(DirectionError, match=f"at most {rules.MAX_WALK_DIRECTIONS} directions per walk"):
        runner.render_walk(KEYS, START, END, directions=many)


def test_direction_json_carries_what_a_client_needs(G):
    d = compute_directions(G, "fine", 2)[1]
    assert isinstance(d, Direction)
    out = d.to_json()
    assert out["id"] == "fine:1" and out["index"] == 1 and out["range"] == "fine"
    assert out["layers"] == list(layer_range(G, "fine")) and len(out["vector"]) == G.w_dim
    np.testing.assert_allclose(out["vector"], d.vector)


@pytest.mark.parametrize("check, value, words", [
    (rules.check_direction_range, "top", "layers must be one of all, coarse, middle, fine"),
    (rules.check_direction_count, 17, "k must be a whole number from 1 to 16"),
    (rules.check_direction_amount, -100.5, "amount must be from -100.0 to 100.0"),
    (rules.check_direction_amount, "1", "amount must be a number"),
    (rules.check_direction_amounts, [1, 2, "x"], r"amounts\[2\] must be a number"),
    (rules.check_direction_amounts, 3.0, "amounts must be a non-empty list of numbers"),
])
def test_direction_rules(check, value, words):
    with pytest.raises(rules.RuleError, match=words):
        check(value)
    assert rules.check_direction_amounts([0, -100, 100.0]) == [0.0, -100.0, 100.0]
