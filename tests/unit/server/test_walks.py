"""Latent walks in-process, from a real tiny checkpoint: every refusal of POST /walks
(checked up front, by the same gan_core.latent rules the renderer uses), rendering in the
background, frames and the zip. (A walk resumed after a crash: tests/e2e.)"""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from gan_core import rules
from server.walks.schemas import WalkOut
from tests.support.http import assert_json_error
from tests.support.inprocess import add_tiny_model, wait_walk

MODEL = {"model_id": "tinybase"}
OK = [{"frame": 0, "seed": 1}, {"frame": 4, "seed": 2}]


@pytest.fixture(scope="module")
def server(api):
    return add_tiny_model(api)


def _img(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(np.int16)


@pytest.mark.parametrize("fields, status, code, words", [
    ({"waypoints": []}, 422, "invalid_input", "waypoints needs at least 1 item"),
    ({"waypoints": "0:1"}, 422, "invalid_input", "waypoints must be a list"),
    ({"waypoints": [{"frame": 0}]}, 422, "invalid_input", "waypoints[0]: key at frame 0 needs exactly one of a seed or a vector"),
    ({"waypoints": [{"frame": 0, "seed": 1, "z": [0.0] * 64}]}, 422, "invalid_input", "exactly one of a seed or a vector"),
    ({"waypoints": [{"frame": 0, "z": [0.0] * 3}]}, 422, "invalid_input", "vector has 3 values, the model wants 64"),
    ({"waypoints": [{"frame": 0, "z": ["a"]}]}, 422, "invalid_input", "waypoints[0].z[0] must be a number"),
    ({"waypoints": [{"frame": 0, "seed": 1}, {"frame": 0, "seed": 2}]}, 422, "invalid_input", "two keys on the same frame"),
    ({"waypoints": [{"frame": -1, "seed": 1}]}, 422, "invalid_input", "waypoints[0]: frame must be a whole number >= 0"),
    ({"waypoints": [{"frame": 0, "seed": -1}]}, 422, "invalid_input", "seed must be a whole number from 0 to"),
    ({"waypoints": [{"seed": 1}]}, 422, "invalid_input", "waypoints[0].frame is required"),
    ({"waypoints": [{"frame": 0, "seed": 1, "weight": 2}]}, 422, "invalid_input", "unknown field(s) in waypoints[0]: weight"),
    ({"waypoints": OK, "frame_start": 4, "frame_end": 1}, 422, "invalid_input", "bad frame range 4-1"),
    ({"waypoints": OK, "frame_end": rules.MAX_WALK_FRAMES + 10}, 422, "invalid_input", f"at most {rules.MAX_WALK_FRAMES} frames"),
    ({"waypoints": OK, "easing": "bouncy"}, 422, "invalid_input", "easing must be one of linear, smooth"),
    ({"waypoints": OK, "interpolation": "cubic"}, 422, "invalid_input", "interpolation must be one of slerp, lerp"),
    ({"waypoints": OK, "loop": "yes"}, 422, "invalid_input", "loop must be true or false"),
    ({"waypoints": OK, "loop": True, "frame_start": 1, "frame_end": 3}, 422, "invalid_input", "a looping walk needs all keys inside"),
    ({"waypoints": OK, "psi": 3}, 422, "invalid_input", "psi 3 is out of range"),
    ({"waypoints": OK, "noise_mode": "loud"}, 422, "invalid_input", "noise_mode must be one of"),
    ({"waypoints": OK, "fps": 24}, 422, "invalid_input", "unknown field(s): fps"),
    ({"waypoints": OK, "model": {"model_id": "nope"}}, 404, "model_not_found", "no model with id 'nope'"),
    ({"waypoints": OK, "model": None}, 422, "invalid_input", "model must be an object"),
])
def test_walk_refusals(server, fields, status, code, words):
    assert_json_error(server.post("walks", json={"model": MODEL, **fields}), status, code, words)


def test_walk_body_that_is_not_a_json_object_is_400(server):
    assert_json_error(server.post("walks", data=b"nope", content_type="application/json"), 400, "bad_request")


def test_unknown_walk_and_frame_are_404(server):
    assert_json_error(server.get("walks/9999"), 404, "walk_not_found")
    assert_json_error(server.get("walks/9999/frames.zip"), 404, "walk_not_found")
    assert_json_error(server.get("walks/9999/frames/0.png"), 404, "walk_not_found")


def test_walk_renders_frames_in_the_background(server):
    r = server.post("walks", json={
        "model": MODEL, "waypoints": [{"frame": 5, "seed": 2}, {"frame": 0, "seed": 1}],
        "frame_start": 0, "frame_end": 5, "interpolation": "slerp", "easing": "smooth", "psi": 1.0})
    assert r.status_code == 202, r.get_data(as_text=True)
    walk = r.get_json()
    WalkOut.model_validate(walk)
    assert walk["frames_total"] == 6 and walk["state"] in ("queued", "rendering", "completed")
    assert walk["created_at"].endswith("Z") and walk["model"] == MODEL
    walk = wait_walk(server, walk["id"])
    assert walk["state"] == "completed" and walk["frames_done"] == 6, walk
    zf = zipfile.ZipFile(io.BytesIO(server.get(f"walks/{walk['id']}/frames.zip").data))
    assert zf.namelist() == [f"frame_{i:05d}.png" for i in range(6)]
    f3 = server.get(f"walks/{walk['id']}/frames/3.png")
    assert f3.status_code == 200 and f3.headers["Content-Type"] == "image/png"
    assert f3.data == zf.read("frame_00003.png")
    # A key frame shows exactly its seed; frames between differ from both keys.
    seed1 = _img(server.post("generate", json={"model": MODEL, "seeds": [1]}).data)
    assert np.abs(_img(zf.read("frame_00000.png")) - seed1).max() <= 2
    assert np.abs(_img(zf.read("frame_00003.png")) - seed1).max() > 10
    assert_json_error(server.get(f"walks/{walk['id']}/frames/6.png"), 404, "frame_not_found", "outside 0..5")


def test_walk_zip_waits_for_completion(server):
    r = server.post("walks", json={"model": MODEL, "waypoints": [{"frame": 0, "seed": 1}, {"frame": 119, "seed": 9}],
                                   "interpolation": "lerp", "loop": True})
    assert r.status_code == 202, r.get_data(as_text=True)
    walk_id = r.get_json()["id"]
    assert_json_error(server.get(f"walks/{walk_id}/frames.zip"), 409, "walk_not_ready", "the zip exists once it completes")
    progress = server.get(f"walks/{walk_id}").get_json()
    assert progress["frames_total"] == 120 and 0 <= progress["frames_done"] < 120


def test_z_waypoints_of_the_right_length_are_accepted(server):
    z = np.random.RandomState(0).randn(64).tolist()
    r = server.post("walks", json={"model": MODEL, "waypoints": [{"frame": 0, "z": z}, {"frame": 2, "seed": 5}]})
    assert r.status_code == 202, r.get_data(as_text=True)
    assert wait_walk(server, r.get_json()["id"])["state"] == "completed"
