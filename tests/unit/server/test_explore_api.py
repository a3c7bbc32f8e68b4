"""POST /explore in-process, from a real tiny checkpoint in the models folder: the answer's
shape, determinism, an exact pick, which PNGs it carries, every refusal (status, code and
message), a full queue, and the contract the add-on reads."""

from __future__ import annotations

import base64
import io
import threading

import numpy as np
import pytest
from PIL import Image

from addon.core import api as addon_api
from gan_core import rules
from server.explore.schemas import ExploreOut
from server.openapi import build_openapi
from tests.support.http import assert_json_error
from tests.support.inprocess import add_tiny_model

MODEL = {"model_id": "tinybase"}
SERVER_SETTINGS = {"generate_queue": 1}
Z_DIM = 64  # the tiny preset


@pytest.fixture(scope="module")
def server(api):
    return add_tiny_model(api)


def _png(text: str) -> np.ndarray:
    data = base64.b64decode(text)
    assert data.startswith(b"\x89PNG")
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def _explore(server, **body):
    r = server.post("explore", json={"model": MODEL, **body})
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()


def test_the_answer_has_every_cell_with_its_latents_and_images(server):
    a = _explore(server, center={"seed": 3}, grid=3, distance=0.4, psi=0.7, seed=5)
    ExploreOut.model_validate(a)  # the documented shape, field for field
    assert (a["model"], a["grid"], a["distance"], a["psi"], a["seed"], a["noise_mode"]) == (MODEL, 3, 0.4, 0.7, 5, "const")
    assert a["seamless"] is False and a["resolution"] == 32 and a["center_index"] == 4
    assert [(c["index"], c["row"], c["col"]) for c in a["cells"]] == [(i, i // 3, i % 3) for i in range(9)]
    assert all(len(c["z"]) == Z_DIM and len(c["w"]) == Z_DIM for c in a["cells"])
    grid = _png(a["grid_png"])
    assert grid.shape == (96, 96, 3)
    for c in a["cells"]:
        r, col = c["row"], c["col"]
        assert np.array_equal(_png(c["png"]), grid[r * 32:(r + 1) * 32, col * 32:(col + 1) * 32])
    seed_z = np.random.RandomState(3).randn(Z_DIM).astype(np.float32)
    assert np.array_equal(np.asarray(a["cells"][4]["z"], dtype=np.float32), seed_z)  # the centre is the seed's z


def test_the_same_request_gives_the_same_answer_and_another_neighbourhood_another(server):
    body = dict(center={"seed": 8}, grid=2, distance=0.5, psi=0.9, seed=1)
    a, b = _explore(server, **body), _explore(server, **body)
    assert a == b
    c = _explore(server, **{**body, "seed": 2})
    assert c["cells"][0] == a["cells"][0]  # the centre stays
    assert [x["png"] for x in c["cells"][1:]] != [x["png"] for x in a["cells"][1:]]


def test_a_picked_cell_is_the_exact_centre_of_the_next_grid(server):
    first = _explore(server, center={"seed": 11}, grid=3, distance=0.5, psi=0.8, seed=4)
    for pick in (0, 7, 8):
        cell = first["cells"][pick]
        for size in (3, 4):
            again = _explore(server, center={"z": cell["z"]}, grid=size, distance=0.5, psi=0.8, seed=4)
            middle = again["cells"][again["center_index"]]
            assert (middle["z"], middle["w"]) == (cell["z"], cell["w"])
            assert np.array_equal(_png(middle["png"]), _png(cell["png"])), (pick, size)


def test_images_chooses_the_pngs(server):
    only_cells = _explore(server, center={"seed": 1}, grid=2, images="cells")
    only_grid = _explore(server, center={"seed": 1}, grid=2, images="grid")
    assert only_cells["grid_png"] is None and all(c["png"] for c in only_cells["cells"])
    assert only_grid["grid_png"] and all(c["png"] is None for c in only_grid["cells"])
    assert [c["z"] for c in only_cells["cells"]] == [c["z"] for c in only_grid["cells"]]


def test_defaults(server):
    a = _explore(server, center={"seed": 1})
    assert (a["grid"], a["distance"], a["psi"], a["seed"]) == (rules.EXPLORE_DEFAULT_GRID,
                                                               rules.EXPLORE_DEFAULT_DISTANCE, 1.0, 0)


@pytest.mark.parametrize("body, status, code, words", [
    ({"center": {"seed": 1}, "grid": 1}, 422, "invalid_input", "grid must be a whole number from 2 to 8, got 1"),
    ({"center": {"seed": 1}, "grid": 9}, 422, "invalid_input", "grid must be a whole number from 2 to 8"),
    ({"center": {"seed": 1}, "grid": "3"}, 422, "invalid_input", "grid must be a whole number"),
    ({"center": {"seed": 1}, "grid": True}, 422, "invalid_input", "grid must be a whole number"),
    ({"center": {"seed": 1}, "distance": -0.5}, 422, "invalid_input", "distance must be from 0.0 to 1.0"),
    ({"center": {"seed": 1}, "distance": 1.01}, 422, "invalid_input", "distance must be from 0.0 to 1.0"),
    ({"center": {"seed": 1}, "distance": "far"}, 422, "invalid_input", "distance must be a number"),
    ({"center": {"seed": 1}, "psi": 5}, 422, "invalid_input", "psi 5 is out of range"),
    ({"center": {"seed": 1}, "seed": -1}, 422, "invalid_input", "seed must be a whole number from 0 to 4294967295"),
    ({"center": {"seed": 1}, "seed": 2 ** 32}, 422, "invalid_input", "seed must be a whole number from 0"),
    ({"center": {"seed": 1}, "noise_mode": "loud"}, 422, "invalid_input", "noise_mode must be one of const"),
    ({"center": {"seed": 1}, "images": "all"}, 422, "invalid_input", "images must be one of both, grid, cells"),
    ({"center": {"seed": 1}, "seamless": "yes"}, 422, "invalid_input", "seamless must be true or false"),
    ({"center": {"seed": 1}, "colour": "red"}, 422, "invalid_input", "unknown field(s): colour"),
    ({}, 422, "invalid_input", "center is required"),
    ({"center": {}}, 422, "invalid_input", "center needs either seed or z"),
    ({"center": {"seed": 1, "z": [0.5] * Z_DIM}}, 422, "invalid_input", "center needs either seed or z"),
    ({"center": {"seed": -2}}, 422, "invalid_input", "center: seed must be a whole number"),
    ({"center": {"w": [0.5] * Z_DIM}}, 422, "invalid_input", "unknown field(s) in center: w"),
    ({"center": {"z": "0.5"}}, 422, "invalid_input", "center.z must be a list"),
    ({"center": {"z": ["a"]}}, 422, "invalid_input", "center.z[0] must be a number"),
    ({"center": {"z": [0.5] * 3}}, 422, "invalid_input", f"center.z must have {Z_DIM} numbers for this model"),
    ({"center": {"z": [0.0] * Z_DIM}}, 422, "invalid_input", "center.z is all zeros"),
    ({"center": {"z": [1e300] * Z_DIM}}, 422, "invalid_input", "center.z contains numbers too large"),
    ({"model": {"model_id": "nope"}, "center": {"seed": 1}}, 404, "model_not_found", "no model with id 'nope'"),
    ({"model": {"job_id": 4242}, "center": {"seed": 1}}, 404, "job_not_found", "no job with id 4242"),
    ({"model": {"model_id": "scratch"}, "center": {"seed": 1}}, 422, "invalid_input", "untrained network"),
    ({"model": None, "center": {"seed": 1}}, 422, "invalid_input", "model must be an object"),
])
def test_refusals(server, body, status, code, words):
    assert_json_error(server.post("explore", json={"model": MODEL, **body}), status, code, words)


def test_refusals_without_a_model(server):
    assert_json_error(server.post("explore", json={"center": {"seed": 1}}), 422, "invalid_input", "model is required")
    assert_json_error(server.post("explore", data=b"[]", content_type="application/json"), 400, "bad_request",
                      "must be an object")


def test_a_full_render_queue_answers_503_and_explore_runs_on_the_render_thread(server, monkeypatch):
    started, release = threading.Event(), threading.Event()

    def hold():
        started.set()
        release.wait(30)

    blocker = threading.Thread(target=server.state.renders.run, args=(hold,))
    blocker.start()
    try:
        assert started.wait(10)
        r = server.post("explore", json={"model": MODEL, "center": {"seed": 1}})
        assert_json_error(r, 503, "server_busy", "try again")
        assert "Retry-After" in r.headers
    finally:
        release.set()
        blocker.join(10)
    threads = []
    real = server.state.model_cache.get
    monkeypatch.setattr(server.state.model_cache, "get",
                        lambda path: threads.append(threading.current_thread().name) or real(path))
    assert server.post("explore", json={"model": MODEL, "center": {"seed": 1}}).status_code == 200
    assert len(threads) == 1 and threads[0].startswith("generate")


def test_openapi_documents_what_the_addon_reads(server):
    document = build_openapi(server.app)
    op = document["paths"]["/api/v1/explore"]["post"]
    schemas = document["components"]["schemas"]
    request = schemas[op["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]]
    assert request["properties"]["grid"]["maximum"] == rules.EXPLORE_MAX_GRID
    assert request["properties"]["images"]["enum"] == list(rules.EXPLORE_IMAGES)
    answer = schemas[op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]]
    assert set(addon_api.EXPLORE_FIELDS) <= set(answer["properties"])
    assert set(addon_api.EXPLORE_CELL_FIELDS) <= set(schemas["ExploreCell"]["properties"])
    assert {"404", "422", "503"} <= set(op["responses"])
