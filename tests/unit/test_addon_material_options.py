"""The add-on's bpy-free material options (addon/core/material_options.py) and the seamless
fields of its Generate / Bake Walk / training requests (addon/core/seamless.py).

The request fields are checked against the server's own request schemas: what the add-on
sends for each panel choice must be accepted, and mean what the panel says.
"""

from __future__ import annotations

import pytest

from addon.core import limits, seamless
from addon.core.material_options import (BOX_COORDINATES, PROJECTIONS, MaterialOptions, MaterialOptionsError,
                                         sequence_timing)

# -- seamless and size multiplier ----------------------------------------------------------


def test_only_a_choice_the_user_made_is_sent():
    assert seamless.output_fields("MODEL", 1) == {}  # what an older server also takes
    assert seamless.output_fields("ON", 1) == {"seamless": True}
    assert seamless.output_fields("OFF", 1) == {"seamless": False}
    assert seamless.output_fields("MODEL", 3) == {"size_multiplier": 3}
    assert seamless.output_fields("ON", limits.MAX_SIZE_MULTIPLIER) == {
        "seamless": True, "size_multiplier": limits.MAX_SIZE_MULTIPLIER}


@pytest.mark.parametrize("bad", [0, -1, limits.MAX_SIZE_MULTIPLIER + 1, 2.0, True, "2", None])
def test_a_size_multiplier_out_of_range_is_refused_in_words(bad):
    with pytest.raises(ValueError, match=f"Size multiplier must be a whole number from 1 to {limits.MAX_SIZE_MULTIPLIER}"):
        seamless.output_fields("MODEL", bad)


def test_a_bigger_image_that_is_not_seamless_is_refused_before_sending():
    with pytest.raises(ValueError, match="Size multiplier 2 makes seamless images only: set Seamless to On or Model default"):
        seamless.output_fields("OFF", 2)
    assert seamless.output_fields("OFF", 1) == {"seamless": False}


def test_bigger_images_count_as_the_server_counts_them():
    from gan_core import rules

    for size in range(1, limits.MAX_SIZE_MULTIPLIER + 1):
        assert seamless.images_allowed(limits.SEEDS_PER_REQUEST, size) == rules.enlarged_limit(
            rules.SEEDS_PER_REQUEST, size)
    assert seamless.images_allowed(64, 2) == 16 and seamless.images_allowed(64, 8) == 1


def test_an_unknown_seamless_choice_is_refused():
    with pytest.raises(ValueError, match="Seamless must be one of MODEL, ON, OFF"):
        seamless.output_fields("YES", 1)


def test_seamless_choices_are_enum_items_with_the_model_default_first():
    choices = seamless.SEAMLESS_CHOICES
    assert all(len(c) == 3 and all(isinstance(x, str) for x in c) for c in choices)
    assert limits.values(choices)[0] == seamless.MODEL_DEFAULT
    assert [seamless.seamless_value(v) for v in limits.values(choices)] == [None, True, False]


def test_the_server_accepts_every_field_the_add_on_sends():
    """Each panel choice, in a real request body, through the server's request schemas."""
    from server.generation.schemas import GenerateRequest
    from server.jobs.schemas import JobCreate
    from server.walks.schemas import WalkRequest

    model = {"model_id": "m"}
    for choice in limits.values(seamless.SEAMLESS_CHOICES):
        for size in (1, 2, limits.MAX_SIZE_MULTIPLIER) if choice != "OFF" else (1,):
            fields = seamless.output_fields(choice, size)
            generate = GenerateRequest.model_validate({"model": model, "seeds": [1], **fields})
            walk = WalkRequest.model_validate({"model": model, "waypoints": [{"frame": 1, "seed": 1},
                                                                              {"frame": 3, "seed": 2}], **fields})
            for parsed in (generate, walk):
                assert parsed.seamless is seamless.seamless_value(choice)
                assert parsed.size_multiplier == size
    job = JobCreate.model_validate({"dataset_id": "d", "tileable": True})
    assert job.tileable is True
    assert JobCreate.model_validate({"dataset_id": "d"}).tileable is False  # not sent: off


# -- material options ----------------------------------------------------------------------


def test_plain_options_need_no_coordinate_nodes():
    plain = MaterialOptions()
    assert not plain.bump and not plain.needs_coordinates
    assert plain.image_projection == "FLAT" and plain.coordinate_output == "UV" and plain.summary() == ""


def test_scale_and_box_projection_need_coordinates_from_the_right_output():
    tiled = MaterialOptions(scale=4)
    assert tiled.needs_coordinates and tiled.coordinate_output == "UV" and tiled.image_projection == "FLAT"
    box = MaterialOptions(projection="BOX")
    assert box.needs_coordinates and box.coordinate_output == "Object" and box.image_projection == "BOX"
    assert MaterialOptions(projection="BOX", box_coordinates="GENERATED").coordinate_output == "Generated"
    # the box coordinates only matter to a box projection
    assert MaterialOptions(box_coordinates="GENERATED").coordinate_output == "UV"


def test_summary_names_what_is_built():
    opts = MaterialOptions(bump=True, bump_strength=0.5, scale=2.5, projection="BOX", box_blend=0.3)
    assert opts.summary() == "bump 0.5, scale 2.5, box projection (object coordinates, blend 0.3)"


@pytest.mark.parametrize("field, value, message", [
    ("bump_strength", 1.5, "Bump strength must be a number from 0 to 1"),
    ("bump_strength", "0.5", "Bump strength must be a number from 0 to 1"),
    ("scale", 0, "Scale must be a number from 0.001 to 1000"),
    ("scale", True, "Scale must be a number from 0.001 to 1000"),
    ("projection", "SPHERE", "Projection must be one of UV, BOX"),
    ("box_coordinates", "UV", "Box coordinates must be one of OBJECT, GENERATED"),
    ("box_blend", -0.1, "Box blend must be a number from 0 to 1"),
])
def test_bad_options_are_refused_in_words(field, value, message):
    with pytest.raises(MaterialOptionsError, match=message):
        MaterialOptions(**{field: value})


def test_option_choices_are_enum_items():
    for choices in (PROJECTIONS, BOX_COORDINATES):
        assert all(len(c) == 3 and all(isinstance(x, str) for x in c) for c in choices)
        assert len(set(limits.values(choices))) == len(choices)


def test_sequence_timing_maps_scene_frames_to_file_numbers():
    # Blender shows file number scene_frame - frame_start + 1 + frame_offset
    for start, count, first in ((5, 3, 5), (1, 24, 1), (0, 2, 0), (10, 4, 1)):
        t = sequence_timing(start, count, first)
        assert t["frame_start"] == start and t["frame_duration"] == count
        shown = [frame - t["frame_start"] + 1 + t["frame_offset"] for frame in range(start, start + count)]
        assert shown == list(range(first, first + count))
    with pytest.raises(MaterialOptionsError, match="frame_count must be a whole number of at least 1"):
        sequence_timing(1, 0, 1)
    with pytest.raises(MaterialOptionsError, match="first_number must be a whole number of at least 0"):
        sequence_timing(1, 3, -1)
