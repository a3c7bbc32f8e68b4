"""Seamless textures through the real app: POST /generate and POST /walks take `seamless`
(null = the model's own flag) and `size_multiplier`; POST /jobs takes `tileable`, which
reaches the training config. Every refusal is a 422 with the rules' message, and nothing
is created by a refused request."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from gan_core import rules
from gan_core.generate import ModelRunner
from gan_core.models.checkpoint import save_network
from server.jobs import scheduler
from tests.support.http import assert_json_error
from tests.support.inprocess import wait_walk
from tests.support.textures import reference_generator

PLAIN, TILEABLE = {"model_id": "fixplain"}, {"model_id": "fixtile"}
RES = 32
KEYS = [{"frame": 0, "seed": 1}, {"frame": 2, "seed": 2}]


@pytest.fixture(scope="module")
def server(api):
    G = reference_generator()
    models = api.state.config.models_dir
    save_network(models / "fixplain.safetensors", G)
    save_network(models / "fixtile.safetensors", G, tileable=True)
    ids = {m["id"] for m in api.post("models/rescan").get_json()["models"]}
    assert {"fixplain", "fixtile"} <= ids
    return api


@pytest.fixture(scope="module")
def local():
    """The same network, rendered here: what the server must answer."""
    return ModelRunner(reference_generator(), device="cpu")


def _img(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def _generate(server, **fields) -> np.ndarray:
    r = server.post("generate", json={"model": PLAIN, "seeds": [1], **fields})
    assert r.status_code == 200, r.get_json()
    return _img(r.data)


def test_generate_size_multiplier_and_seamless(server, local):
    big = _generate(server, size_multiplier=2)
    assert big.shape == (2 * RES, 2 * RES, 3)
    np.testing.assert_array_equal(big, local.generate(seeds=[1], size_multiplier=2)[0])
    seamless = _generate(server, seamless=True)
    np.testing.assert_array_equal(seamless, local.generate(seeds=[1], seamless=True)[0])
    plain = _generate(server)
    np.testing.assert_array_equal(plain, _generate(server, seamless=None))  # null: this model's flag (off)
    assert not np.array_equal(plain, seamless)


def test_generate_defaults_to_the_models_tileable_flag(server):
    default = _generate(server, model=TILEABLE)
    np.testing.assert_array_equal(default, _generate(server, seamless=True))
    np.testing.assert_array_equal(_generate(server, model=TILEABLE, seamless=False), _generate(server))


def test_generate_enlarged_zip(server, local):
    r = server.post("generate", json={"model": PLAIN, "seeds": [4, 5, 6], "size_multiplier": 3})
    assert r.status_code == 200 and r.mimetype == "application/zip"
    with zipfile.ZipFile(io.BytesIO(r.data)) as zf:
        assert zf.namelist() == ["seed0004.png", "seed0005.png", "seed0006.png"]
        images = [_img(zf.read(name)) for name in zf.namelist()]
    assert all(img.shape == (3 * RES, 3 * RES, 3) for img in images)
    np.testing.assert_array_equal(images[2], local.generate(seeds=[6], size_multiplier=3)[0])


@pytest.mark.parametrize("fields, words", [
    ({"size_multiplier": 0}, "size_multiplier must be a whole number from 1 to 8, got 0"),
    ({"size_multiplier": rules.MAX_SIZE_MULTIPLIER + 1}, "size_multiplier must be a whole number from 1 to 8"),
    ({"size_multiplier": "2"}, "size_multiplier must be a whole number"),
    ({"size_multiplier": True}, "size_multiplier must be a whole number"),
    ({"size_multiplier": 2.5}, "size_multiplier must be a whole number"),
    ({"seamless": "yes"}, "seamless"),
    ({"seamless": 1}, "seamless"),
    ({"size_multiplier": 2, "seamless": False}, "size_multiplier 2 needs seamless mode"),
    ({"seeds": [1, 2], "size_multiplier": 8}, "at most 1 seeds per request at size multiplier 8"),
    ({"seeds": "0-4", "size_multiplier": 4}, "at most 4 seeds per request at size multiplier 4"),
])
def test_generate_refuses_bad_texture_fields(server, fields, words):
    r = server.post("generate", json={"model": PLAIN, "seeds": [1], **fields})
    assert_json_error(r, 422, "invalid_input", words)


def test_generate_allows_the_enlarged_limit_exactly(server):
    r = server.post("generate", json={"model": PLAIN, "seeds": "0-3", "size_multiplier": 4})
    assert r.status_code == 200
    with zipfile.ZipFile(io.BytesIO(r.data)) as zf:
        assert len(zf.namelist()) == 4


def test_walk_renders_enlarged_seamless_frames(server, local):
    r = server.post("walks", json={"model": PLAIN, "waypoints": KEYS, "size_multiplier": 2})
    assert r.status_code == 202, r.get_json()
    walk = wait_walk(server, r.get_json()["id"])
    assert walk["state"] == "completed" and walk["frames_done"] == 3
    frame = _img(server.get(f"walks/{walk['id']}/frames/2.png").data)
    assert frame.shape == (2 * RES, 2 * RES, 3)
    diff = np.abs(frame.astype(int) - local.generate(seeds=[2], size_multiplier=2)[0].astype(int))
    assert diff.max() <= 1  # a walk batch maps z several at a time: equal up to rounding


def test_walk_seamless_null_follows_the_model(server):
    frames = {}
    for name, fields in (("tileable_default", {"model": TILEABLE}), ("plain_seamless", {"seamless": True}),
                         ("plain_default", {})):
        r = server.post("walks", json={"model": PLAIN, "waypoints": KEYS, **fields})
        assert r.status_code == 202, r.get_json()
        walk = wait_walk(server, r.get_json()["id"])
        assert walk["state"] == "completed", walk
        frames[name] = _img(server.get(f"walks/{walk['id']}/frames/0.png").data)
    np.testing.assert_array_equal(frames["tileable_default"], frames["plain_seamless"])
    assert not np.array_equal(frames["plain_default"], frames["plain_seamless"])


@pytest.mark.parametrize("fields, words", [
    ({"size_multiplier": 9}, "size_multiplier must be a whole number from 1 to 8"),
    ({"size_multiplier": 2, "seamless": False}, "size_multiplier 2 needs seamless mode"),
    ({"seamless": "no"}, "seamless"),
    ({"size_multiplier": 8, "frame_end": rules.MAX_WALK_FRAMES // 64}, "at most 156 frames per walk at size multiplier 8"),
])
def test_walk_refuses_bad_texture_fields(server, fields, words):
    before = _walk_rows(server)
    r = server.post("walks", json={"model": PLAIN, "waypoints": KEYS, **fields})
    assert_json_error(r, 422, "invalid_input", words)
    assert _walk_rows(server) == before  # nothing stored or queued


def _walk_rows(server) -> int:
    with server.state.db.connect() as conn:
        return conn.execute("SELECT COUNT(*) FROM walks").fetchone()[0]


def test_job_tileable_option_reaches_the_training_config(server, ready_dataset):
    dataset_id = ready_dataset(server)
    body = {"dataset_id": dataset_id, "resolution": 32, "preset": "tiny", "batch": 4, "augmentation": "off"}
    r = server.post("jobs", json={**body, "tileable": True})
    assert r.status_code == 201, r.get_json()
    job = r.get_json()
    assert job["tileable"] is True
    assert server.get(f"jobs/{job['id']}").get_json()["tileable"] is True
    from server.jobs import store

    row = store.get_job(server.state.db, job["id"])
    config = scheduler.training_config(row, "cpu")
    assert config["tileable"] is True
    plain = server.post("jobs", json=body).get_json()
    assert plain["tileable"] is False
    assert scheduler.training_config(store.get_job(server.state.db, plain["id"]), "cpu")["tileable"] is False
    assert_json_error(server.post("jobs", json={**body, "tileable": "yes"}), 422, "invalid_input", "tileable")


def test_openapi_documents_the_texture_fields(server):
    schemas = server.get("openapi.json").get_json()["components"]["schemas"]
    for name in ("GenerateRequest", "WalkRequest"):
        props = schemas[name]["properties"]
        assert "seamless" in props and props["size_multiplier"]["maximum"] == rules.MAX_SIZE_MULTIPLIER
    assert "tileable" in schemas["JobCreate"]["properties"]
