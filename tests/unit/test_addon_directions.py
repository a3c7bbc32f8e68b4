"""addon/core/directions.py (no bpy): model ids, queries, the listing, and the walk's
`directions` built from sampled amounts. (Against the real server: tests/unit/server/
test_directions_api.py; inside Blender: tests/blender/test_addon_directions.py.)"""

from __future__ import annotations

import pytest

from addon.core import directions as core
from addon.core import limits
from addon.core.walks import WalkError
from gan_core import rules


def test_the_addons_copy_of_the_direction_rules():
    assert limits.values(limits.DIRECTION_RANGES) == rules.DIRECTION_RANGES
    assert (limits.MAX_DIRECTIONS, limits.DEFAULT_DIRECTIONS) == (rules.MAX_DIRECTIONS, rules.DEFAULT_DIRECTIONS)
    assert limits.MAX_DIRECTION_AMOUNT == rules.MAX_DIRECTION_AMOUNT
    assert limits.MAX_WALK_DIRECTIONS == rules.MAX_WALK_DIRECTIONS
    assert limits.DEFAULT_PREVIEW_AMOUNT == rules.DEFAULT_PREVIEW_AMOUNT
    assert limits.PREVIEW_PSI == rules.PREVIEW_PSI


@pytest.mark.parametrize("model, expected", [
    ({"model_id": "faces"}, "faces"),
    ({"job_id": 3, "step": 40}, "job:3:40"),
    ({"model_id": "job:3:40"}, "job:3:40"),
])
def test_model_ids(model, expected):
    assert core.model_id(model) == expected


def test_a_job_without_its_step_is_not_sent():
    with pytest.raises(core.DirectionsError, match="resolved to its step"):
        core.model_id({"job_id": 3})


def test_queries_and_their_refusals():
    assert core.listing_query("coarse", 4) == "layers=coarse&k=4"
    assert core.preview_query(5, seed=2) == "amount=5.0&seed=2&psi=0.7"
    with pytest.raises(core.DirectionsError, match="Unknown layer range 'deep'"):
        core.listing_query("deep", 4)
    with pytest.raises(core.DirectionsError, match="1 to 16 directions"):
        core.listing_query("all", 17)
    with pytest.raises(core.DirectionsError, match="from 0 to 100"):
        core.preview_query(-1)


def test_listing_is_read_and_malformed_ones_refused():
    body = {"directions": [{"id": "fine:0", "index": 0, "range": "fine", "layers": [5, 8], "eigenvalue": 2.5,
                            "vector": [0.0], "preview_url": "/x"}]}
    assert core.parse_listing(body) == [{"id": "fine:0", "range": "fine", "index": 0, "layers": [5, 8],
                                         "eigenvalue": 2.5}]
    for bad in ({}, {"directions": [{"id": "a"}]}, {"directions": [{**body["directions"][0], "layers": "x"}]}):
        with pytest.raises(core.DirectionsError, match="not in the expected form"):
            core.parse_listing(bad)


def test_preview_files_are_per_model_and_direction(tmp_path):
    a = core.preview_file(str(tmp_path), {"job_id": 3, "step": 40}, "coarse:0")
    b = core.preview_file(str(tmp_path), {"model_id": "faces"}, "coarse:0")
    c = core.preview_file(str(tmp_path), {"model_id": "faces"}, "coarse:1")
    assert len({a, b, c}) == 3 and all(p.startswith(str(tmp_path)) and p.endswith(".png") for p in (a, b, c))
    assert ":" not in a.rsplit("/", 1)[-1]


def test_walk_directions_send_the_moving_ones_with_an_amount_per_frame():
    sampled = [("Coarse 1", "coarse:0", [0.0, 1.5, 3.0]),
               ("Fine 2", "fine:1", [0.0, 0.0, 0.0]),  # left at 0: nothing to send
               ("All 1", "all:0", [-2, -2, -2])]
    assert core.walk_directions(sampled, 10, 12) == [
        {"id": "coarse:0", "amounts": [0.0, 1.5, 3.0]}, {"id": "all:0", "amounts": [-2.0, -2.0, -2.0]}]
    assert core.walk_directions([("Fine 2", "fine:1", [0.0] * 3)], 10, 12) == []


@pytest.mark.parametrize("sampled, words", [
    ([("Coarse 1", "coarse:0", [0.0, 150.0, 0.0])], "Direction Coarse 1 is 150 at frame 11: amounts go from -100 to 100"),
    ([("Coarse 1", "coarse:0", [float("nan"), 0.0, 0.0])], "Direction Coarse 1 is nan at frame 10"),
    ([("Coarse 1", "coarse:0", [1.0, 2.0])], "Direction Coarse 1: 2 amounts for 3 frames"),
    ([(f"All {i}", f"all:{i}", [1.0] * 3) for i in range(17)], "17 directions move in this walk; at most 16"),
])
def test_walk_directions_that_the_server_would_refuse_are_stopped_here(sampled, words):
    with pytest.raises(core.DirectionsError, match=words) as caught:
        core.walk_directions(sampled, 10, 12)
    assert isinstance(caught.value, WalkError)  # Bake Walk reports it like any walk problem
