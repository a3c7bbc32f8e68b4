"""POST /projections in-process, from real tiny checkpoints: refusals up front, the job-like
resource (queued -> running -> done, progress, the latent, the images), the G-only fallback,
the bounded queue, stopping with the server, restart recovery, and the found latent used as
a walk key (with style mixing) whose frames are what the library renders."""

from __future__ import annotations

import base64
import io
import time
import zipfile

import numpy as np
import pytest

from gan_core import rules
from gan_core.latent import style_mix
from server.projections import store
from server.projections.schemas import ProjectionOut
from tests.support.http import assert_json_error
from tests.support.inprocess import wait_walk
from tests.support.jobs import write_tiny_base_model
from tests.support.projection import decode_png, png_base64, wait_projection, write_tiny_model_with_d
from tests.support.training_data import colour_pattern

WITH_D = {"model_id": "tinyd"}
G_ONLY = {"model_id": "tinybase"}
TARGET = colour_pattern(48)  # not square-of-the-model: cropped and resized by the server


def prepare_data_dir(data_dir):
    models = data_dir / "models"
    models.mkdir(parents=True)
    write_tiny_model_with_d(models / "tinyd.safetensors")
    write_tiny_base_model(models / "tinybase.safetensors")


@pytest.fixture(scope="module")
def server(api):
    assert api.post("models/rescan").status_code == 200
    return api


def _create(api, **fields):
    body = {"model": WITH_D, "image": png_base64(TARGET), "steps": 4, **fields}
    return api.post("projections", json=body)


# ----------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("fields, status, code, words", [
    ({"image": "not base64!"}, 422, "invalid_input", "image must be base64 text"),
    ({"image": base64.b64encode(b"hello, not an image").decode()}, 422, "invalid_input", "image: not an image"),
    ({"image": base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(40)).decode()}, 422, "invalid_input", "image: "),
    ({"image": ""}, 422, "invalid_input", "image is empty: send the image file as base64 text"),
    ({"image": 5}, 422, "invalid_input", "image must be base64 text of an image file (PNG, JPEG...), got int"),
    ({"steps": 0}, 422, "invalid_input", f"steps must be a whole number from 1 to {rules.MAX_PROJECTION_STEPS}"),
    ({"steps": rules.MAX_PROJECTION_STEPS + 1}, 422, "invalid_input", "steps must be a whole number"),
    ({"steps": "10"}, 422, "invalid_input", "steps must be a whole number"),
    ({"w_plus": "yes"}, 422, "invalid_input", "w_plus must be true or false"),
    ({"loss": "vgg"}, 422, "invalid_input", "loss must be one of dfeat, pixel"),
    ({"seed": -1}, 422, "invalid_input", "seed must be a whole number"),
    ({"lr": 0.1}, 422, "invalid_input", "unknown field(s): lr"),
    ({"model": {"model_id": "nope"}}, 404, "model_not_found", "no model with id 'nope'"),
    ({"model": {"model_id": "scratch"}}, 422, "invalid_input", "untrained network"),
])
def test_projection_refusals_change_nothing(server, fields, status, code, words):
    before = len(list(store.projections_dir(server.state.config.data_dir).iterdir()))
    assert_json_error(_create(server, **fields), status, code, words)
    assert len(list(store.projections_dir(server.state.config.data_dir).iterdir())) == before


def test_missing_image_and_unknown_projection(server):
    assert_json_error(server.post("projections", json={"model": WITH_D}), 422, "invalid_input", "image is required")
    assert_json_error(server.post("projections", data=b"[]", content_type="application/json"), 400, "bad_request")
    for path in ("projections/999", "projections/999/reconstruction.png", "projections/999/target.png"):
        assert_json_error(server.get(path), 404, "projection_not_found")
    assert_json_error(server.delete("projections/999"), 404, "projection_not_found")


# ----------------------------------------------------------------------------- the resource


def test_projection_runs_in_the_background_and_returns_its_latent(server):
    r = _create(server, steps=6)
    assert r.status_code == 202, r.get_data(as_text=True)
    first = r.get_json()
    ProjectionOut.model_validate(first)
    assert first["state"] in ("queued", "running", "done") and first["progress"] <= 1
    assert first["steps"] == 6 and first["loss_kind"] == "dfeat" and first["note"] is None
    assert first["model"] == WITH_D and first["created_at"].endswith("Z")
    done = wait_projection(server, first["id"])
    ProjectionOut.model_validate(done)
    assert done["state"] == "done", done
    assert done["steps_done"] == 6 and done["progress"] == 1.0 and done["error"] is None
    result = done["result"]
    assert len(result["w"]) == 64 and np.array(result["ws"]).shape == (8, 64) and not result["w_plus"]
    assert np.allclose(np.array(result["ws"]), np.array(result["w"])[None])  # one w for every layer
    assert len(result["losses"]) == 6 and done["loss"] == result["final_loss"]
    target = decode_png(server.get(done["target_url"]).data)
    recon = server.get(done["reconstruction_url"])
    assert recon.status_code == 200 and recon.headers["Content-Type"] == "image/png"
    assert target.shape == decode_png(recon.data).shape == (32, 32, 3)
    assert np.abs(target.astype(int) - colour_pattern(32)).mean() < 20  # the centre square, resized


def test_w_plus_projection_and_the_generator_only_fallback(server):
    r = _create(server, model=G_ONLY, w_plus=True, noise=True, steps=3)
    assert r.status_code == 202, r.get_data(as_text=True)
    assert r.get_json()["loss_kind"] == "pixel" and "no discriminator" in r.get_json()["note"]
    done = wait_projection(server, r.get_json()["id"])
    assert done["state"] == "done" and done["loss_kind"] == "pixel" and "pixel and multi-scale" in done["note"]
    assert done["result"]["w"] is None and done["result"]["w_plus"] and done["noise"]
    assert np.array(done["result"]["ws"]).shape == (8, 64)


def test_the_found_latent_is_a_walk_key_with_style_mixing(server):
    from gan_core.generate import ModelRunner

    done = wait_projection(server, _create(server, steps=4).get_json()["id"])
    w = done["result"]["w"]
    layer = 3
    r = server.post("walks", json={"model": WITH_D, "psi": 0.7, "waypoints": [
        {"frame": 0, "w": w}, {"frame": 2, "seed": 5, "mix": {"seed": 6, "from_layer": layer}},
        {"frame": 4, "w": done["result"]["ws"], "mix": {"w": w, "from_layer": 7}}]})
    assert r.status_code == 202, r.get_data(as_text=True)
    walk = wait_walk(server, r.get_json()["id"])
    assert walk["state"] == "completed", walk
    zf = zipfile.ZipFile(io.BytesIO(server.get(f"walks/{walk['id']}/frames.zip").data))
    frames = {i: decode_png(zf.read(f"frame_{i:05d}.png")) for i in range(5)}
    # the w key renders as the projection's reconstruction (psi does not touch a stored w)
    assert np.abs(frames[0].astype(int) - decode_png(server.get(done["reconstruction_url"]).data)).max() <= 1
    # the mixed key is the reference rule rendered by the library
    runner = ModelRunner(server.state.config.models_dir / "tinyd.safetensors", device="cpu")
    ws5, ws6 = (runner.map_z(np.random.RandomState(s).randn(1, runner.z_dim), 0.7) for s in (5, 6))
    expected = runner.synthesize_ws(style_mix(ws5, ws6, layer))[0]
    assert np.abs(frames[2].astype(int) - expected).max() <= 1
    assert not np.array_equal(frames[1], frames[0])  # between keys the walk moves
    # stored as sent: a resumed walk rebuilds the very same keys
    from server.walks import store as walk_store

    stored = walk_store.get_walk(server.state.db, walk["id"])["params"]["waypoints"]
    assert stored[1] == {"frame": 2, "seed": 5, "mix": {"seed": 6, "from_layer": layer}}
    assert np.array_equal(np.array(stored[0]["w"], np.float32), np.array(w, np.float32))


@pytest.mark.parametrize("key, words", [
    ({"frame": 0, "w": [0.0] * 3}, "waypoints: key at frame 0: w has shape [3], this model wants [64] or [8, 64]"),
    ({"frame": 0, "w": [[0.0] * 64] * 7}, "w has shape [7, 64]"),
    ({"frame": 0, "w": [[0.0, "a"]]}, "waypoints[0]: w must be a list of w_dim numbers"),
    ({"frame": 0, "w": [True, 1.0]}, "waypoints[0]: w must be a list of w_dim numbers"),
    ({"frame": 0, "w": []}, "waypoints[0]: w must be a list of w_dim numbers"),
    ({"frame": 0, "seed": 1, "w": [0.0] * 64}, "needs exactly one of a seed or a vector"),
    ({"frame": 0, "seed": 1, "mix": {"seed": 2, "from_layer": 9}}, "mix.from_layer 9 is out of range: this model has 8"),
    ({"frame": 0, "seed": 1, "mix": {"seed": 2}}, "waypoints[0].mix.from_layer is required"),
    ({"frame": 0, "seed": 1, "mix": {"seed": 2, "z": [0.0] * 64, "from_layer": 1}}, "mix needs exactly one of a seed, z or w"),
    ({"frame": 0, "seed": 1, "mix": {"z": [0.0] * 5, "from_layer": 1}}, "mix: vector has 5 values, the model wants 64"),
    ({"frame": 0, "seed": 1, "mix": {"seed": 2, "from_layer": 1, "weight": 1}}, "unknown field(s) in waypoints[0].mix: weight"),
])
def test_bad_w_and_mix_keys_are_refused(server, key, words):
    def walks() -> int:
        with server.state.db.connect() as conn:
            return conn.execute("SELECT COUNT(*) FROM walks").fetchone()[0]

    before = walks()
    r = server.post("walks", json={"model": WITH_D, "waypoints": [key, {"frame": 3, "seed": 1}]})
    assert_json_error(r, 422, "invalid_input", words)
    assert walks() == before


# ----------------------------------------------------------------------------- limits and stops


def test_a_full_queue_is_503_and_keeps_nothing(make_api):
    api = make_api()
    write_tiny_model_with_d(api.state.config.models_dir / "tinyd.safetensors")
    assert api.post("models/rescan").status_code == 200
    taken = 0
    while api.state.projections.reserve():
        taken += 1
    assert taken == 8
    r = _create(api)
    assert_json_error(r, 503, "server_busy", "projections")
    assert r.headers["Retry-After"]
    assert store.get_projection(api.state.db, 1) is None


def test_stopping_the_server_fails_running_and_queued_projections(make_api):
    api = make_api()
    write_tiny_model_with_d(api.state.config.models_dir / "tinyd.safetensors")
    assert api.post("models/rescan").status_code == 200
    long = _create(api, steps=rules.MAX_PROJECTION_STEPS).get_json()
    queued = _create(api, steps=2).get_json()
    deadline = time.monotonic() + 60
    while api.get(f"projections/{long['id']}").get_json()["state"] != "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    running = api.get(f"projections/{long['id']}").get_json()
    assert running["state"] == "running"
    assert_json_error(api.get(f"projections/{long['id']}/reconstruction.png"), 409, "projection_not_ready",
                      "the reconstruction exists once it is done")
    assert_json_error(api.delete(f"projections/{long['id']}"), 409, "projection_active")
    assert api.get(f"projections/{queued['id']}").get_json()["state"] == "queued"  # one at a time
    api.state.shutdown()
    deadline = time.monotonic() + 60
    while store.get_projection(api.state.db, long["id"])["state"] != "failed" and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in (long["id"], queued["id"]):
        row = store.get_projection(api.state.db, pid)
        assert row["state"] == "failed" and "stopped with the server" in row["error"], row
    assert store.get_projection(api.state.db, long["id"])["steps_done"] < rules.MAX_PROJECTION_STEPS


def test_the_owner_fails_projections_cut_short_by_the_last_stop(tmp_path):
    """A server that owns its data directory marks projections left queued or running failed."""
    from server.app import create_app
    from server.config import ServerConfig
    from server.db import Database
    from server.state import EXTENSION_KEY

    data = tmp_path / "data"
    data.mkdir()
    first = create_app(ServerConfig(data_dir=data, device="cpu"))  # owns the folder: creates the tables
    first.extensions[EXTENSION_KEY].shutdown()
    db = Database(data / "latent-studio.sqlite3")
    params = {"steps": 5, "w_plus": False, "noise": False, "loss": "dfeat", "seed": 0, "loss_used": "dfeat"}
    ids = [store.insert_projection(db, WITH_D, "x.safetensors", params, None)["id"] for _ in range(3)]
    store.update_projection(db, ids[0], state=store.RUNNING, steps_done=2)
    store.update_projection(db, ids[2], state=store.DONE, steps_done=5, result={"w": [0.0]})
    second = create_app(ServerConfig(data_dir=data, device="cpu"))
    try:
        rows = [store.get_projection(db, i) for i in ids]
        assert [r["state"] for r in rows] == ["failed", "failed", "done"]
        assert all("stopped with the server" in r["error"] for r in rows[:2]) and rows[2]["error"] is None
    finally:
        second.extensions[EXTENSION_KEY].shutdown()


def test_a_finished_projection_can_be_deleted(server):
    done = wait_projection(server, _create(server, steps=2).get_json()["id"])
    folder = store.projection_dir(server.state.config.data_dir, done["id"])
    assert (folder / store.RECONSTRUCTION_NAME).exists()
    assert server.delete(f"projections/{done['id']}").status_code == 204
    assert not folder.exists()
    assert_json_error(server.get(f"projections/{done['id']}"), 404, "projection_not_found")


def test_the_addon_reads_only_documented_projection_fields(server):
    """What addon/core/api.py says about projections is what the OpenAPI document promises."""
    from addon.core import api as addon_api
    from addon.core.client import ROUTES

    doc = server.get("openapi.json").get_json()
    schemas = doc["components"]["schemas"]

    def resolve(node):
        while "$ref" in node:
            node = schemas[node["$ref"].rsplit("/", 1)[-1]]
        for option in node.get("anyOf", ()):
            if option.get("type") != "null":
                return resolve(option)
        return node

    for route in ("create_projection", "get_projection"):
        method, template = ROUTES[route]
        path = "/api/v1" + template
        op = doc["paths"][path][method.lower()]
        status = min(s for s in op["responses"] if s.startswith("2"))
        answer = resolve(op["responses"][status]["content"]["application/json"]["schema"])["properties"]
        assert set(addon_api.PROJECTION_FIELDS) <= set(answer), route
        assert tuple(answer["state"]["enum"]) == addon_api.PROJECTION_STATES, route
        assert set(addon_api.PROJECTION_RESULT_FIELDS) <= set(resolve(answer["result"])["properties"]), route
