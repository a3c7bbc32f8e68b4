"""Walk keys in W: stored w / W+ latents and style-mixed keys (gan_core.latent + ModelRunner).

The reference mixing rule is gan_core.latent.style_mix: a mixed key's ws are its own latent's
with the layers >= from_layer taken from the other latent. Frames at mixed keys must be
exactly what that rule renders, for every crossover layer; between keys each layer moves in
a straight line in W.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gan_core.generate import ModelRunner
from gan_core.latent import LatentError, Mix, Waypoint, key_ws, same_latent, style_mix, walk_ws, ws_count
from gan_core.nn.networks import build_generator, preset_kwargs

PSI = 0.7


@pytest.fixture(scope="module")
def runner():
    torch.manual_seed(0)
    G = build_generator(preset_kwargs(16, "tiny")["G"]).eval()
    with torch.no_grad():  # a tracked w_avg away from zero, so psi visibly pulls towards it
        G.mapping.w_avg.copy_(torch.randn([G.w_dim]) * 0.5)
    return ModelRunner(G, device="cpu")


def _ws(runner, seed, psi=PSI):
    return runner.map_z(np.random.RandomState(seed).randn(1, runner.z_dim), psi)[0]


def _key(runner):
    return lambda z: runner.map_z(z[None], PSI)[0]


# ----------------------------------------------------------------------------- keys


@pytest.mark.parametrize("kwargs, words", [
    ({}, "needs exactly one of a seed or a vector"),
    ({"seed": 1, "w": [0.0] * 4}, "needs exactly one of a seed or a vector"),
    ({"w": [[[0.0]]]}, "w must be finite numbers"),
    ({"w": [0.0, float("nan")]}, "w must be finite numbers"),
    ({"w": []}, "w must be finite numbers"),
    ({"seed": 1, "mix": "seed 2"}, "mix must be a Mix"),
])
def test_bad_keys_are_refused(kwargs, words):
    with pytest.raises(LatentError, match=words.replace("(", r"\(")):
        Waypoint(frame=0, **kwargs)


@pytest.mark.parametrize("kwargs, words", [
    ({"from_layer": 2}, "mix needs exactly one of a seed, z or w"),
    ({"from_layer": 2, "seed": 1, "z": [0.0]}, "mix needs exactly one"),
    ({"from_layer": -1, "seed": 1}, "mix.from_layer must be a whole number >= 0"),
    ({"from_layer": True, "seed": 1}, "mix.from_layer must be a whole number >= 0"),
    ({"from_layer": 1.5, "seed": 1}, "mix.from_layer must be a whole number >= 0"),
])
def test_bad_mixes_are_refused(kwargs, words):
    with pytest.raises(LatentError, match=words):
        Mix(**kwargs)


def test_keys_round_trip_through_json_exactly():
    rng = np.random.RandomState(0)
    keys = [Waypoint(0, seed=3), Waypoint(1, z=rng.randn(5)), Waypoint(2, w=rng.randn(4)),
            Waypoint(3, w=rng.randn(6, 4), mix=Mix(2, seed=9)), Waypoint(4, seed=1, mix=Mix(0, w=rng.randn(4))),
            Waypoint(5, z=rng.randn(5), mix=Mix(6, z=rng.randn(5)))]
    back = [Waypoint.from_dict(json.loads(json.dumps(k.to_dict()))) for k in keys]
    assert all(same_latent(a, b) and a.frame == b.frame for a, b in zip(keys, back))
    assert keys[0].to_dict() == {"frame": 0, "seed": 3}  # plain keys are stored as they always were
    assert set(keys[1].to_dict()) == {"frame", "z"}
    assert [k.in_w for k in back] == [False, False, True, True, True, True]
    # a different mix is a different latent (a loop closes only on the very same key)
    assert not same_latent(keys[3], Waypoint(3, w=keys[3].w, mix=Mix(3, seed=9)))
    assert not same_latent(keys[3], Waypoint(3, w=keys[3].w))


def test_ws_count_is_the_generators():
    for res in (8, 16, 32, 64, 256):
        assert ws_count(res) == build_generator(preset_kwargs(res, "tiny")["G"]).num_ws, res
    assert ws_count(4) == 2 and ws_count(1024) == 18
    with pytest.raises(LatentError):
        ws_count(48)


def test_w_keys_are_broadcast_or_used_per_layer(runner):
    n, d = runner.num_ws, runner.w_dim
    w = np.arange(d, dtype=np.float32)
    assert np.array_equal(key_ws(Waypoint(0, w=w), n, d, runner.z_dim), np.tile(w, (n, 1)))
    per_layer = np.random.RandomState(1).randn(n, d).astype(np.float32)
    assert np.array_equal(key_ws(Waypoint(0, w=per_layer), n, d, runner.z_dim), per_layer)
    with pytest.raises(LatentError, match=rf"key at frame 0: w has shape \[3\], this model wants \[{d}\] or \[{n}, {d}\]"):
        key_ws(Waypoint(0, w=[1.0, 2.0, 3.0]), n, d, runner.z_dim)
    with pytest.raises(LatentError, match=r"key at frame 0, mix: w has shape \[2, 5\]"):
        key_ws(Waypoint(0, seed=1, mix=Mix(1, w=np.zeros((2, 5)))), n, d, runner.z_dim)
    with pytest.raises(LatentError, match=f"mix.from_layer {n + 1} is out of range: this model has {n} layers"):
        key_ws(Waypoint(0, seed=1, mix=Mix(n + 1, seed=2)), n, d, runner.z_dim)


def test_mixed_keys_follow_the_reference_rule_at_every_crossover(runner):
    n, d, zd = runner.num_ws, runner.w_dim, runner.z_dim
    a, b = _ws(runner, 11), _ws(runner, 12)
    for layer in range(n + 1):
        got = key_ws(Waypoint(0, seed=11, mix=Mix(layer, seed=12)), n, d, zd, _key(runner))
        assert np.array_equal(got, style_mix(a, b, layer)), layer
        assert np.array_equal(got[:layer], a[:layer]) and np.array_equal(got[layer:], b[layer:])
    # a stored w mixed with a seed: the w's layers below the crossover, psi only on the seed
    w = np.random.RandomState(2).randn(d).astype(np.float32)
    got = key_ws(Waypoint(0, w=w, mix=Mix(3, seed=12)), n, d, zd, _key(runner))
    assert np.array_equal(got, style_mix(np.tile(w, (n, 1)), b, 3))


# ----------------------------------------------------------------------------- walks


def test_w_walks_move_every_layer_in_a_straight_line(runner):
    n, d, zd = runner.num_ws, runner.w_dim, runner.z_dim
    w0 = np.random.RandomState(3).randn(n, d).astype(np.float32)
    keys = [Waypoint(0, w=w0), Waypoint(4, seed=5, mix=Mix(2, seed=6))]
    end = key_ws(keys[1], n, d, zd, _key(runner))
    frames = dict(walk_ws(keys, 0, 4, num_ws=n, w_dim=d, z_dim=zd, map_z=_key(runner)))
    assert sorted(frames) == [0, 1, 2, 3, 4]
    assert np.array_equal(frames[0], w0) and np.array_equal(frames[4], end)
    for f in (1, 2, 3):
        assert np.allclose(frames[f], w0 + (end - w0) * f / 4, atol=1e-6)
    eased = dict(walk_ws(keys, 0, 4, num_ws=n, w_dim=d, z_dim=zd, map_z=_key(runner), easing="smooth"))
    assert np.allclose(eased[1], w0 + (end - w0) * 0.15625, atol=1e-6)  # smoothstep(1/4)


def test_rendered_mixed_walk_equals_the_reference_at_its_keys(runner):
    layer = 3
    w = np.random.RandomState(4).randn(runner.w_dim).astype(np.float32)
    keys = [Waypoint(0, seed=21, mix=Mix(layer, seed=22)), Waypoint(3, w=w), Waypoint(6, seed=23)]
    frames = dict(runner.render_walk(keys, 0, 6, interp="slerp", psi=PSI, batch_size=4))
    expected = runner.synthesize_ws(np.stack([style_mix(_ws(runner, 21), _ws(runner, 22), layer),
                                              np.tile(w, (runner.num_ws, 1)), _ws(runner, 23)]))
    for frame, image in zip((0, 3, 6), expected):
        assert np.array_equal(frames[frame], image), frame
    # a seed key in a W walk is the same image as that seed generated (psi applied to seeds)
    assert np.abs(frames[6].astype(int) - runner.generate(seeds=[23], psi=PSI)[0]).max() <= 1
    # slerp means lerp in W: the same frames either way
    lerped = dict(runner.render_walk(keys, 0, 6, interp="lerp", psi=PSI, batch_size=4))
    assert all(np.array_equal(frames[f], lerped[f]) for f in frames)
    # the mix changes the picture (the crossover is not a no-op on this model)
    plain = dict(runner.render_walk([Waypoint(0, seed=21), Waypoint(3, w=w)], 0, 3, psi=PSI))
    assert not np.array_equal(plain[0], frames[0])


def test_resumed_mixed_walk_renders_the_missing_frames_identically(runner):
    keys = [Waypoint(0, seed=1, mix=Mix(2, seed=2)), Waypoint(5, w=_ws(runner, 3))]
    stored = [Waypoint.from_dict(json.loads(json.dumps(k.to_dict()))) for k in keys]
    full = dict(runner.render_walk(keys, 0, 5, psi=PSI, batch_size=2))
    rest = dict(runner.render_walk(stored, 0, 5, psi=PSI, batch_size=2, skip_frames={0, 1, 4}))
    assert sorted(rest) == [2, 3, 5]
    assert all(np.array_equal(rest[f], full[f]) for f in rest)


def test_looping_mixed_walk_closes_on_its_first_key(runner):
    from gan_core.latent import loop_keys_and_range

    first = Waypoint(0, seed=1, mix=Mix(2, seed=2))
    keys, start, end = loop_keys_and_range([first, Waypoint(4, seed=3), Waypoint(8, seed=1, mix=Mix(2, seed=2))])
    assert (start, end, len(keys)) == (0, 7, 2)
    keys, start, end = loop_keys_and_range([first, Waypoint(4, seed=3), Waypoint(8, seed=1, mix=Mix(3, seed=2))])
    assert (start, end, len(keys)) == (0, 8, 3)


def test_plain_seed_walks_do_not_change_path(runner):
    """Seed/z keys alone still render through the z (slerp) or w (lerp) path, not W+."""
    keys = [Waypoint(0, seed=1), Waypoint(4, seed=2)]
    assert not any(k.in_w for k in keys)
    z_walk = dict(runner.render_walk(keys, 0, 4, interp="slerp", psi=PSI))
    w_walk = dict(runner.render_walk(keys, 0, 4, interp="lerp", psi=PSI))
    assert not np.array_equal(z_walk[2], w_walk[2])  # slerp in z differs from lerp in w between keys


def test_directions_move_a_mixed_walk_on_their_layers(runner):
    """Walk directions (gan_core.directions) add to the W+ latents of mixed keys like to any walk's."""
    from gan_core.directions import WalkDirection

    keys = [Waypoint(0, seed=1, mix=Mix(2, seed=2)), Waypoint(3, w=_ws(runner, 3)[0])]
    vector = np.random.RandomState(5).randn(runner.w_dim).astype(np.float32)
    still = WalkDirection(vector=vector, layers=(0, 2), amounts=np.zeros(4, np.float32))
    moved = WalkDirection(vector=vector, layers=(0, 2), amounts=np.array([0, 0, 3, 0], np.float32))
    plain = dict(runner.render_walk(keys, 0, 3, psi=PSI))
    zero = dict(runner.render_walk(keys, 0, 3, psi=PSI, directions=[still]))
    edited = dict(runner.render_walk(keys, 0, 3, psi=PSI, directions=[moved]))
    assert all(np.array_equal(plain[f], zero[f]) for f in plain)
    ws2 = dict(walk_ws(keys, 0, 3, num_ws=runner.num_ws, w_dim=runner.w_dim, z_dim=runner.z_dim,
                       map_z=_key(runner)))[2].copy()
    ws2[0:2] += 3 * vector
    assert np.array_equal(edited[2], runner.synthesize_ws(ws2[None])[0])
    assert np.array_equal(edited[1], plain[1]) and not np.array_equal(edited[2], plain[2])
