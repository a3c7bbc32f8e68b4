"""The add-on's bpy-free side of projection and style mixing (addon/core): the walk keys it
sends for stored w latents and mixed waypoints, run through the server's own walk schema,
and the projection body and latent it builds."""

from __future__ import annotations

import base64
import json

import pytest

from addon.core import projection
from addon.core.walks import WalkError, Waypoint, waypoint_payload
from addon.core.work import WorkError
from server.validation import parse
from server.walks.schemas import WalkRequest

W = [0.5, -1.25, 2.0]
WS = [[0.5, -1.25, 2.0], [1.0, 0.0, -0.5]]


def test_stored_w_and_mixed_waypoints_become_the_servers_keys():
    keys = waypoint_payload([
        Waypoint(8, 3, use_vector=True, vector=json.dumps(WS), space="W"),
        Waypoint(0, 1, mix=True, mix_seed=9, mix_from_layer=4),
        Waypoint(4, 2, use_vector=True, vector=json.dumps(W), space="W", mix=True, mix_seed=5, mix_from_layer=0),
        Waypoint(6, 7, use_vector=True, vector=json.dumps(W)),  # a z vector, as before
        Waypoint(9, 4),
    ])
    assert keys == [{"frame": 0, "seed": 1, "mix": {"seed": 9, "from_layer": 4}},
                    {"frame": 4, "w": W, "mix": {"seed": 5, "from_layer": 0}},
                    {"frame": 6, "z": W}, {"frame": 8, "w": WS}, {"frame": 9, "seed": 4}]
    body = parse(WalkRequest, {"model": {"model_id": "m"}, "waypoints": keys})  # the server reads them
    assert body.waypoints[1].mix.from_layer == 0 and body.waypoints[3].w == WS


@pytest.mark.parametrize("vector, space", [
    ("[[1.0, 2.0]]", "Z"),  # per-layer rows are a w only
    ("[[1.0], 2.0]", "W"),
    ("[true, 1.0]", "W"),
    ("[]", "W"),
    ("{\"w\": 1}", "W"),
    ("not json", "W"),
])
def test_a_broken_stored_vector_is_refused_before_sending(vector, space):
    with pytest.raises(WalkError, match="at frame 2 is not a list of numbers"):
        waypoint_payload([Waypoint(2, 0, use_vector=True, vector=vector, space=space)])


def test_projection_body_and_latent(tmp_path):
    image = tmp_path / "render.png"
    image.write_bytes(b"\x89PNG fake bytes")
    body = projection.projection_body({"model_id": "m"}, str(image), 50, True, "pixel", seed=3)
    assert base64.b64decode(body["image"]) == image.read_bytes()
    assert {k: v for k, v in body.items() if k != "image"} == {"model": {"model_id": "m"}, "steps": 50,
                                                               "w_plus": True, "loss": "pixel", "seed": 3}
    assert json.loads(projection.latent_text({"w": W, "ws": [W, W], "w_plus": False})) == W
    assert json.loads(projection.latent_text({"w": None, "ws": WS, "w_plus": True})) == WS


def test_projection_body_refusals(tmp_path):
    with pytest.raises(WorkError, match="cannot be read"):
        projection.projection_body({}, str(tmp_path / "missing.png"), 5, False)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(WorkError, match="is empty"):
        projection.projection_body({}, str(empty), 5, False)
    big = tmp_path / "big.png"
    with open(big, "wb") as fh:
        fh.truncate(projection.MAX_IMAGE_BYTES + 1)
    with pytest.raises(WorkError, match="render at a lower resolution"):
        projection.projection_body({}, str(big), 5, False)


def test_the_temporary_render_goes_once_read(tmp_path):
    image = tmp_path / "latent-render-x.png"
    image.write_bytes(b"")

    with pytest.raises(WorkError, match="is empty"):  # refused before any request: no client needed
        projection.project_file(None, None, {}, str(image), 5, False, remove_after_upload=True)
    assert not image.exists()
