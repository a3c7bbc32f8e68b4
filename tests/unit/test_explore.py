"""The latent-space explorer: gan_core.explore (the neighbourhood, determinism, exact picks,
refusals) and the add-on's bpy-free side (addon/core/explore.py: request, history, cells)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from addon.core import api as addon_api
from addon.core import explore as addon_explore
from addon.core import limits
from gan_core import rules
from gan_core.explore import ExploreError, _batches, center_index, center_z, explore, neighbour_latents
from gan_core.generate import GenerateError, ModelRunner, image_grid
from tests.support.jobs import write_tiny_base_model


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    return ModelRunner(write_tiny_base_model(tmp_path_factory.mktemp("explore") / "tiny.safetensors"), device="cpu")


# ----------------------------------------------------------------------------- the neighbourhood


@pytest.mark.parametrize("grid, index", [(2, 0), (3, 4), (4, 5), (5, 12), (8, 27)])
def test_the_centre_sits_in_the_middle(grid, index):
    assert center_index(grid) == index


def test_neighbours_are_seeded_and_keep_the_centre_exactly():
    c = center_z(64, seed=7)
    a = neighbour_latents(c, 3, 0.4, seed=11)
    assert a.dtype == np.float32 and a.shape == (9, 64)
    assert np.array_equal(a, neighbour_latents(c, 3, 0.4, seed=11))
    assert not np.array_equal(a, neighbour_latents(c, 3, 0.4, seed=12))
    assert np.array_equal(a[4], c)
    others = np.delete(a, 4, axis=0)
    assert len({row.tobytes() for row in others}) == 8  # eight different neighbours


@pytest.mark.parametrize("distance", [0.0, 0.1, 0.5, 1.0])
def test_distance_is_the_angle_from_the_centre_as_a_fraction_of_a_right_angle(distance):
    c = center_z(128, seed=3)
    cells = neighbour_latents(c, 4, distance, seed=5).astype(np.float64)
    length = np.linalg.norm(c)
    assert np.allclose(np.linalg.norm(cells, axis=1), length, rtol=1e-5)  # on the centre's shell
    cosines = cells @ c / (np.linalg.norm(cells, axis=1) * length)
    expected = math.cos(distance * math.pi / 2)
    assert np.allclose(np.delete(cosines, center_index(4)), expected, atol=1e-5)


def test_a_picked_z_survives_json_exactly():
    cells = neighbour_latents(center_z(64, seed=1), 3, 0.3, seed=0)
    back = np.asarray(json.loads(json.dumps(cells.tolist())), dtype=np.float32)
    assert np.array_equal(back, cells)
    assert np.array_equal(center_z(64, z=cells[2].tolist()), cells[2])


# ----------------------------------------------------------------------------- rendering


def test_same_request_same_images_and_latents(runner, one_torch_thread):
    kwargs = dict(seed=5, grid=3, distance=0.4, neighbourhood_seed=2, psi=0.7)
    a, b = explore(runner, **kwargs), explore(runner, **kwargs)
    assert a.images.shape == (9, 32, 32, 3) and a.z.shape == (9, runner.z_dim) and a.w.shape == (9, runner.w_dim)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.z, b.z) and np.array_equal(a.w, b.w)
    assert len({img.tobytes() for img in a.images}) == 9
    other = explore(runner, **{**kwargs, "neighbourhood_seed": 3})
    assert np.array_equal(other.images[4], a.images[4]) and not np.array_equal(other.images, a.images)
    # the centre cell is the seed's own image at that psi
    assert np.array_equal(a.z[4], center_z(runner.z_dim, seed=5))
    # w: the truncated mapping of each z, mapped on its own (so no neighbour can change its bits)
    assert np.array_equal(a.w, np.concatenate([runner.map_z(z[None], psi=0.7)[:, 0] for z in a.z]))


@pytest.mark.parametrize("grid, picks, then", [(3, (0, 4, 8), (3, 2)), (4, (1, 15), (5, 4))])
def test_a_picked_cell_regenerates_exactly_as_the_next_centre(runner, one_torch_thread, grid, picks, then):
    first = explore(runner, seed=9, grid=grid, distance=0.5, neighbourhood_seed=1, psi=0.8, batch_size=8)
    for pick in picks:
        cell = json.loads(json.dumps(first.cells()[pick]))  # as the client gets it
        for size in then:  # the user may change the grid size before picking
            again = explore(runner, z=cell["z"], grid=size, distance=0.5, neighbourhood_seed=1, psi=0.8, batch_size=8)
            c = center_index(size)
            assert np.array_equal(again.z[c], first.z[pick])
            assert np.array_equal(again.w[c], first.w[pick])
            assert np.array_equal(again.images[c], first.images[pick]), (grid, pick, size)


def test_how_the_grid_is_batched_never_changes_a_pixel(runner, one_torch_thread):
    # batches of fewer than 4 would take other kernel paths (1 level off in places on this
    # model): the explorer splits the grid evenly and pads a small batch
    whole = explore(runner, seed=0, grid=3, distance=0.5, psi=0.8, batch_size=16)
    for batch_size in (1, 2, 4, 8):
        again = explore(runner, seed=0, grid=3, distance=0.5, psi=0.8, batch_size=batch_size)
        assert np.array_equal(again.images, whole.images), batch_size


@pytest.mark.parametrize("n, batch_size, sizes", [
    (4, 8, [4]), (9, 8, [4, 5]), (16, 8, [8, 8]), (25, 8, [6, 6, 6, 7]), (64, 8, [8] * 8), (9, 1, [3, 3, 3]),
    (9, 64, [9]),
])
def test_batches_are_even_and_cover_the_grid(n, batch_size, sizes):
    batches = _batches(n, batch_size)
    assert [stop - start for start, stop in batches] == sizes
    assert batches[0][0] == 0 and batches[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(batches, batches[1:]))


def test_each_cells_w_is_what_its_image_was_made_from(runner, one_torch_thread):
    g = explore(runner, seed=4, grid=2, distance=0.6, neighbourhood_seed=0, psi=0.5)
    cells = json.loads(json.dumps(g.cells()))
    ws = np.asarray([cells[3]["w"], cells[1]["w"]], dtype=np.float32)
    assert np.array_equal(runner.synthesize_ws(ws), g.images[[3, 1]])
    assert [(c["index"], c["row"], c["col"]) for c in cells] == [(0, 0, 0), (1, 0, 1), (2, 1, 0), (3, 1, 1)]


def test_the_grid_image_puts_each_cell_in_its_row_and_column(runner, one_torch_thread):
    g = explore(runner, seed=1, grid=2, distance=0.5)
    image = g.grid_image()
    assert image.shape == (64, 64, 3)
    assert np.array_equal(image, image_grid(g.images, 2))
    assert np.array_equal(image[32:, :32], g.images[2])


def test_the_device_is_held_for_the_mapping_and_per_batch(runner, one_torch_thread):
    entered = []

    class Hold:
        def __enter__(self):
            entered.append(1)

        def __exit__(self, *exc):
            return False

    g = explore(runner, seed=1, grid=3, distance=0.5, batch_size=4, hold=Hold)
    assert len(entered) == 1 + 9  # the mapping, then (on the CPU) each cell on its own
    assert len(g.images) == 9


@pytest.mark.parametrize("kwargs, words", [
    (dict(seed=1, grid=1), "grid must be a whole number from 2 to 8, got 1"),
    (dict(seed=1, grid=9), "grid must be a whole number from 2 to 8"),
    (dict(seed=1, grid=True), "grid must be a whole number"),
    (dict(seed=1, grid=3.0), "grid must be a whole number"),
    (dict(seed=1, distance=-0.1), "distance must be from 0.0 to 1.0"),
    (dict(seed=1, distance=1.5), "distance must be from 0.0 to 1.0"),
    (dict(seed=1, distance=float("nan")), "distance must be from 0.0 to 1.0"),
    (dict(seed=1, distance="0.3"), "distance must be a number"),
    (dict(seed=1, neighbourhood_seed=-1), "seed must be a whole number from 0 to 4294967295"),
    (dict(seed=1, neighbourhood_seed=2 ** 32), "seed must be a whole number from 0 to 4294967295"),
    (dict(), "center needs either a seed or a z vector"),
    (dict(seed=1, z=[0.0] * 64), "center needs either a seed or a z vector"),
    (dict(seed=-3), "center.seed: seed -3 is out of range"),
    (dict(z=[0.5] * 3), "center.z must have 64 numbers for this model, got shape [3]"),
    (dict(z=[[0.5] * 64]), "center.z must have 64 numbers"),
    (dict(z=[0.0] * 64), "center.z is all zeros"),
    (dict(z=[1e300] * 64), "center.z contains numbers too large"),
    (dict(z=["a"] * 64), "center.z must be a list of numbers"),
    (dict(seed=1, psi=3), "psi 3 is out of range"),
    (dict(seed=1, noise_mode="loud"), "noise mode must be one of const, random, none"),
    (dict(seed=1, seamless="yes"), "seamless must be true, false or left out"),
    (dict(seed=1, batch_size=0), "batch size must be a whole number from 1"),
])
def test_refusals_name_the_field_and_render_nothing(runner, kwargs, words):
    calls = []
    real = runner.map_z
    runner.map_z = lambda *a, **k: calls.append(1) or real(*a, **k)
    try:
        with pytest.raises(ValueError) as info:
            explore(runner, **kwargs)
    finally:
        del runner.map_z
    assert isinstance(info.value, (ExploreError, GenerateError))
    assert words in str(info.value), str(info.value)
    assert calls == []


def test_rules_validators():
    assert rules.check_explore_grid(4) == 4 and rules.check_explore_distance(1) == 1.0
    with pytest.raises(rules.RuleError, match="^grid"):
        rules.check_explore_grid(0)
    with pytest.raises(rules.RuleError, match="^distance"):
        rules.check_explore_distance(2)


# ----------------------------------------------------------------------------- the add-on's side (no bpy)


def test_addon_limits_are_the_rules():
    assert (limits.EXPLORE_MIN_GRID, limits.EXPLORE_MAX_GRID) == (rules.EXPLORE_MIN_GRID, rules.EXPLORE_MAX_GRID)
    assert (0.0, limits.EXPLORE_MAX_DISTANCE) == (rules.EXPLORE_MIN_DISTANCE, rules.EXPLORE_MAX_DISTANCE)
    assert addon_api.EXPLORE_IMAGES in rules.EXPLORE_IMAGES


def test_explore_body():
    body = addon_explore.explore_body({"model_id": "m"}, {"seed": 3}, 4, 0.25, 0.7, 9)
    assert body == {"model": {"model_id": "m"}, "center": {"seed": 3}, "grid": 4, "distance": 0.25, "psi": 0.7,
                    "seed": 9, "noise_mode": limits.NOISE_MODE, "images": "cells"}
    for args, words in [((1, 0.3, 0.7), "2 to 8 cells"), ((3, 1.5, 0.7), "distance"), ((3, 0.3, 9.0), "psi")]:
        with pytest.raises(addon_explore.ExploreError, match=words):
            addon_explore.explore_body({"model_id": "m"}, {"seed": 3}, *args, 0)
    for center in ({"seed": -1}, {"z": []}, {"z": ["x"]}, {"seed": 1, "z": [1.0]}, {"w": [1.0]}, None, {"seed": True}):
        with pytest.raises(addon_explore.ExploreError, match="centre is broken"):
            addon_explore.explore_body({"model_id": "m"}, center, 3, 0.3, 0.7, 0)


def test_history_recentre_and_back():
    s = addon_explore.new_state()
    s = addon_explore.recentre(s, {"seed": 1})
    assert s == {"center": {"seed": 1}, "history": []}
    s = addon_explore.recentre(s, {"z": [0.5, 1.0]})
    s = addon_explore.recentre(s, {"z": [0.5, 1.0]})  # the same centre again: no new history entry
    s = addon_explore.recentre(s, {"seed": 2})
    assert s["history"] == [{"seed": 1}, {"z": [0.5, 1.0]}]
    s = addon_explore.go_back(s)
    assert s == {"center": {"z": [0.5, 1.0]}, "history": [{"seed": 1}]}
    s = addon_explore.go_back(s)
    assert s == {"center": {"seed": 1}, "history": []}
    with pytest.raises(addon_explore.ExploreError, match="Nothing to go back to"):
        addon_explore.go_back(s)
    for i in range(addon_explore.HISTORY_LIMIT + 5):
        s = addon_explore.recentre(s, {"seed": 100 + i})
    assert len(s["history"]) == addon_explore.HISTORY_LIMIT and s["history"][-1] == {"seed": 100 + i - 1}


def test_state_round_trips_and_damaged_state_starts_afresh():
    s = addon_explore.recentre(addon_explore.recentre(addon_explore.new_state(), {"seed": 1}), {"z": [0.25]})
    assert addon_explore.load_state(addon_explore.dump_state(s)) == s
    for text in ("", "nope", "[]", '{"center": {"seed": "x"}}', '{"center": null, "history": [5]}'):
        assert addon_explore.load_state(text) == addon_explore.new_state(), text


def test_pick_and_vectors():
    cells = [{"index": i, "z": [float(i), 1.0], "w": [2.0]} for i in range(4)]
    assert addon_explore.pick(cells, 2)["index"] == 2
    assert addon_explore.cell_center(cells[2]) == {"z": [2.0, 1.0]}
    for bad in (-1, 4, "1"):
        with pytest.raises(addon_explore.ExploreError, match="Pick one of the 4 cells"):
            addon_explore.pick(cells, bad)
    with pytest.raises(addon_explore.ExploreError, match="no grid yet"):
        addon_explore.pick([], 0)
    z = [0.1234567, -2.5, 3.0]
    assert addon_explore.parse_vector(addon_explore.vector_text(z)) == z
    for bad in ("", "[]", "{}", "[1, true]", "[1, \"a\"]"):
        with pytest.raises(addon_explore.ExploreError):
            addon_explore.parse_vector(bad)
    model = {"job_id": 3, "step": 40}
    name = addon_explore.cell_name(cells[1], model)
    assert name.startswith("Latent explore ") and name.endswith("(job 3 step 40)") and len(name) <= 63
    assert name != addon_explore.cell_name(cells[2], model)
    assert addon_explore.cell_file(cells[1], model).startswith("latent_job_3_step_40_explore_")
