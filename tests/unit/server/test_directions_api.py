"""Semantic directions over HTTP, in-process on a real tiny checkpoint: the listing, preview
strips, walks that move along directions (frames equal to a local gan_core render), the
stored directions a resumed walk renders from, and every refusal."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from gan_core import rules
from gan_core.directions import WalkDirection, compute_directions, preview_ws
from gan_core.generate import ModelRunner, image_grid
from gan_core.latent import Waypoint, seeds_to_z
from server.directions.cache import DirectionCache
from server.directions.schemas import DirectionListing
from server.generation.gpu import BATCH
from server.walks import store
from tests.support.http import assert_json_error
from tests.support.inprocess import add_tiny_model, wait_walk

MODEL_ID = "tinybase"
MODEL = {"model_id": MODEL_ID}
KEYS = [{"frame": 3, "seed": 4}, {"frame": 7, "seed": 11}]
START, END = 2, 9  # 8 frames


@pytest.fixture(scope="module")
def server(api):
    return add_tiny_model(api, MODEL_ID)


@pytest.fixture(scope="module")
def local(server):
    """The same checkpoint, loaded here with gan_core alone."""
    return ModelRunner(server.state.config.models_dir / f"{MODEL_ID}.safetensors", device="cpu")


def _png(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def _frames(api, walk_id: int) -> dict[int, np.ndarray]:
    return {f: _png(api.get(f"walks/{walk_id}/frames/{f}.png").data) for f in range(START, END + 1)}


# ----------------------------------------------------------------------------- the listing


def test_directions_are_listed_with_their_layers_vectors_and_previews(server, local):
    r = server.get(f"models/{MODEL_ID}/directions?layers=coarse&k=4")
    assert r.status_code == 200, r.get_data(as_text=True)
    body = r.get_json()
    DirectionListing.model_validate(body)
    assert body["model"] == MODEL and body["layers"] == "coarse"
    assert (body["num_ws"], body["w_dim"]) == (local.num_ws, local.w_dim)
    expected = compute_directions(local, "coarse", 4)
    assert [d["id"] for d in body["directions"]] == ["coarse:0", "coarse:1", "coarse:2", "coarse:3"]
    for got, want in zip(body["directions"], expected):
        assert got["layers"] == list(want.layers) == [0, 3] and got["range"] == "coarse"
        np.testing.assert_array_equal(np.asarray(got["vector"], dtype=np.float32), want.vector)
        assert got["preview_url"] == f"/api/v1/models/{MODEL_ID}/directions/{got['id']}/preview.png"
    vecs = np.asarray([d["vector"] for d in body["directions"]])
    np.testing.assert_allclose(vecs @ vecs.T, np.eye(4), atol=1e-5)


def test_defaults_and_stable_ids_whatever_k_and_one_computation_per_range(server):
    server.state.directions = DirectionCache()  # start counting from nothing
    body = server.get(f"models/{MODEL_ID}/directions").get_json()
    assert body["layers"] == "all" and len(body["directions"]) == rules.DEFAULT_DIRECTIONS
    assert body["directions"][0]["layers"] == [0, body["num_ws"]]
    more = server.get(f"models/{MODEL_ID}/directions?layers=all&k={rules.MAX_DIRECTIONS}").get_json()
    assert len(more["directions"]) == rules.MAX_DIRECTIONS
    assert more["directions"][:rules.DEFAULT_DIRECTIONS] == body["directions"]
    assert server.state.directions.computed == 1
    server.get(f"models/{MODEL_ID}/directions?layers=fine&k=2")
    assert server.state.directions.computed == 2


@pytest.mark.parametrize("query, status, code, words", [
    ("layers=deep", 422, "invalid_input", "layers must be one of all, coarse, middle, fine, got 'deep'"),
    ("k=0", 422, "invalid_input", "k must be a whole number from 1 to 16, got 0"),
    ("k=17", 422, "invalid_input", "k must be a whole number from 1 to 16, got 17"),
    ("k=four", 422, "invalid_input", "k must be a whole number from 1 to 16, got 'four'"),
    ("k=2.5", 422, "invalid_input", "k must be a whole number"),
])
def test_bad_listing_queries_are_refused(server, query, status, code, words):
    assert_json_error(server.get(f"models/{MODEL_ID}/directions?{query}"), status, code, words)


@pytest.mark.parametrize("model_id, status, code, words", [
    ("nope", 404, "model_not_found", "no model with id 'nope'"),
    ("scratch", 422, "invalid_input", "'scratch' is an untrained network"),
    ("job:999:2", 404, "job_not_found", "no job with id 999"),
    ("job:x", 422, "invalid_input", "not a job model id"),
])
def test_unknown_models_are_refused(server, model_id, status, code, words):
    assert_json_error(server.get(f"models/{model_id}/directions"), status, code, words)
    assert_json_error(server.get(f"models/{model_id}/directions/all:0/preview.png"), status, code, words)


# ----------------------------------------------------------------------------- preview strips


def test_a_preview_strip_is_the_centre_image_moved_both_ways(server, local):
    r = server.get(f"models/{MODEL_ID}/directions/middle:1/preview.png?seed=5&amount=6&steps=3&psi=0.5")
    assert r.status_code == 200 and r.headers["Content-Type"] == "image/png"
    strip = _png(r.data)
    side = local.resolution
    assert strip.shape == (side, 3 * side, 3)
    direction = compute_directions(local, "middle", 2)[1]
    centre = local.map_z(seeds_to_z([5], local.z_dim), psi=0.5)[0]
    expected = image_grid(local.synthesize_ws(preview_ws(centre, direction, 6.0, 3), batch_size=BATCH), cols=3)
    np.testing.assert_array_equal(strip, expected)
    left, mid, right = (strip[:, i * side:(i + 1) * side] for i in range(3))
    assert not np.array_equal(left, mid) and not np.array_equal(right, mid)
    default = _png(server.get(f"models/{MODEL_ID}/directions/coarse:0/preview.png").data)
    assert default.shape == (side, rules.PREVIEW_STEPS * side, 3)


@pytest.mark.parametrize("tail, status, code, words", [
    ("deep:0/preview.png", 404, "direction_not_found", "unknown direction id 'deep:0'"),
    ("coarse/preview.png", 404, "direction_not_found", "unknown direction id 'coarse'"),
    ("all:16/preview.png", 404, "direction_not_found", "rank 0 to 15"),
    ("all:0/preview.png?steps=1", 422, "invalid_input", "steps must be a whole number from 2 to 9, got 1"),
    ("all:0/preview.png?amount=-1", 422, "invalid_input", "amount must be from 0.0 to 100.0, got -1.0"),
    ("all:0/preview.png?amount=nan", 422, "invalid_input", "amount must be a number, got 'nan'"),
    ("all:0/preview.png?seed=-3", 422, "invalid_input", "seed must be a whole number from 0 to"),
    ("all:0/preview.png?psi=9", 422, "invalid_input", "psi 9.0 is out of range"),
])
def test_bad_preview_requests_are_refused(server, tail, status, code, words):
    assert_json_error(server.get(f"models/{MODEL_ID}/directions/{tail}"), status, code, words)


# ----------------------------------------------------------------------------- walks along directions


def _walk_body(directions, **fields):
    return {"model": MODEL, "waypoints": KEYS, "frame_start": START, "frame_end": END, "psi": 0.7,
            "directions": directions, **fields}


AMOUNTS_A = [0.0, 1.5, 3.0, 4.5, 6.0, 2.0, -2.0, -6.0]  # as keyframes sampled per frame would be
AMOUNTS_B = [2.0, 2.0, 0.0, 0.0, -3.25, 0.0, 5.0, 5.0]


@pytest.mark.parametrize("interpolation", ["slerp", "lerp"])
def test_walk_frames_with_per_frame_amounts_equal_a_local_render(server, local, interpolation):
    vector = np.random.default_rng(7).standard_normal(local.w_dim)
    vector = (vector / np.linalg.norm(vector)).astype(np.float32)
    r = server.post("walks", json=_walk_body([
        {"id": "coarse:0", "amounts": AMOUNTS_A},
        {"vector": vector.tolist(), "layers": [3, 5], "amounts": AMOUNTS_B},
    ], interpolation=interpolation))
    assert r.status_code == 202, r.get_data(as_text=True)
    walk = wait_walk(server, r.get_json()["id"])
    assert walk["state"] == "completed", walk
    coarse = compute_directions(local, "coarse", 1)[0]
    edits = [WalkDirection(coarse.vector, coarse.layers, np.asarray(AMOUNTS_A, np.float32)),
             WalkDirection(vector, (3, 5), np.asarray(AMOUNTS_B, np.float32))]
    keys = [Waypoint(k["frame"], seed=k["seed"]) for k in KEYS]
    expected = dict(local.render_walk(keys, START, END, interp=interpolation, psi=0.7, batch_size=BATCH,
                                      directions=edits))
    got = _frames(server, walk["id"])
    assert sorted(got) == sorted(expected)
    for frame in got:
        np.testing.assert_array_equal(got[frame], expected[frame], err_msg=f"frame {frame}")
    # the directions moved every frame that has a non-zero amount
    plain = dict(local.render_walk(keys, START, END, interp=interpolation, psi=0.7, batch_size=BATCH))
    assert all(not np.array_equal(got[f], plain[f]) for f in range(START, END + 1))


def test_zero_amounts_render_the_plain_walk(server):
    plain = server.post("walks", json=_walk_body([]))
    zero = server.post("walks", json=_walk_body([{"id": "fine:2", "amounts": [0.0] * 8}]))
    assert plain.status_code == zero.status_code == 202
    a, b = wait_walk(server, plain.get_json()["id"]), wait_walk(server, zero.get_json()["id"])
    fa, fb = _frames(server, a["id"]), _frames(server, b["id"])
    for frame in fa:
        np.testing.assert_array_equal(fa[frame], fb[frame])
    assert "directions" not in store.get_walk(server.state.db, a["id"])["params"]


def test_a_walk_stores_its_directions_and_a_resumed_walk_renders_the_same(server):
    r = server.post("walks", json=_walk_body([{"id": "middle:0", "amounts": AMOUNTS_A}]))
    walk = wait_walk(server, r.get_json()["id"])
    stored = store.get_walk(server.state.db, walk["id"])["params"]["directions"]
    listed = server.get(f"models/{MODEL_ID}/directions?layers=middle&k=1").get_json()["directions"][0]
    assert stored == [{"id": "middle:0", "layers": listed["layers"], "amounts": AMOUNTS_A, "vector": listed["vector"]}]
    # the walk's answer says what it renders: the directions by id, layers and amounts, no vectors
    settings = server.get(f"walks/{walk['id']}").get_json()["settings"]
    assert settings["directions"] == [{"id": "middle:0", "layers": listed["layers"], "amounts": AMOUNTS_A}]
    assert settings == r.get_json()["settings"], "the same when queued and when done"
    assert [w["frame"] for w in settings["waypoints"]] == [w["frame"] for w in KEYS]
    assert settings["psi"] == 0.7 and settings["loop"] is False and settings["size_multiplier"] == 1
    before = _frames(server, walk["id"])
    # cut short: two frames gone, the walk queued again after a restart (the cache is empty then)
    folder = store.walk_dir(server.state.config.walks_dir, walk["id"])
    for frame in (4, 8):
        (folder / store.frame_name(frame)).unlink()
    server.state.directions = DirectionCache()
    store.update_walk(server.state.db, walk["id"], state=store.QUEUED)
    server.state.walk_runner.submit(walk["id"], reserved=False)
    assert wait_walk(server, walk["id"])["state"] == "completed"
    after = _frames(server, walk["id"])
    for frame in before:
        np.testing.assert_array_equal(after[frame], before[frame])
    assert server.state.directions.computed == 0  # rendered from the stored vectors alone


@pytest.mark.parametrize("directions, words", [
    ([{"id": "coarse:0", "amounts": [1.0] * 7}],
     "directions[0].amounts has 7 numbers; the walk has 8 frames (2-9): give one per frame"),
    ([{"id": "coarse:0", "amounts": [0.0, 101.0] + [0.0] * 6}], "directions[0]: amounts[1] must be from -100.0 to 100.0"),
    ([{"id": "coarse:0", "amounts": [0.0, "1"] + [0.0] * 6}], "directions[0]: amounts[1] must be a number, got '1'"),
    ([{"id": "coarse:0", "amounts": [0.0, True] + [0.0] * 6}], "amounts[1] must be a number, got True"),
    ([{"id": "coarse:0", "amounts": []}], "directions[0]: amounts must be a non-empty list of numbers"),
    ([{"id": "coarse:0"}], "directions[0].amounts is required"),
    ([{"amounts": [0.0] * 8}], "directions[0] needs exactly one of id (a direction of the model) or vector"),
    ([{"id": "coarse:0", "vector": [0.0] * 64, "amounts": [0.0] * 8}], "needs exactly one of id"),
    ([{"id": "deep:0", "amounts": [0.0] * 8}], "directions[0]: unknown direction id 'deep:0'"),
    ([{"id": "coarse:0", "layers": [0, 2], "amounts": [0.0] * 8}], "edits its own layers; leave layers out"),
    ([{"vector": [0.1] * 63, "amounts": [0.0] * 8}], "directions[0]: the vector must be 64 finite numbers"),
    ([{"vector": [0.1] * 64, "layers": [2, 99], "amounts": [0.0] * 8}], "directions[0]: layers [2, 99) must lie within [0, 8)"),
    ([{"vector": [0.1] * 64, "layers": [2], "amounts": [0.0] * 8}], "directions[0].layers needs at least 2 item(s)"),
    ([{"id": "coarse:0", "amounts": [0.0] * 8, "speed": 2}], "unknown field(s) in directions[0]: speed"),
    ([{"id": "coarse:0", "amounts": [0.0] * 8}] * (rules.MAX_WALK_DIRECTIONS + 1), "directions takes at most 16 item(s)"),
    ("coarse:0", "directions must be a list"),
])
def test_bad_walk_directions_are_refused_and_nothing_is_queued(server, directions, words):
    before = server.get("walks/1").status_code, len(list(server.state.config.walks_dir.glob("*")))
    assert_json_error(server.post("walks", json=_walk_body(directions)), 422, "invalid_input", words)
    assert (server.get("walks/1").status_code, len(list(server.state.config.walks_dir.glob("*")))) == before


def test_a_direction_walk_on_a_model_that_is_gone_is_404(server):
    assert_json_error(server.post("walks", json={**_walk_body([{"id": "all:0", "amounts": [0.0] * 8}]),
                                                 "model": {"model_id": "nope"}}), 404, "model_not_found")


# ----------------------------------------------------------------------------- the add-on's client over HTTP


@pytest.fixture(scope="module")
def over_http(server):
    """The same app served over real HTTP on 127.0.0.1 (a thread), for the add-on's client."""
    import threading

    from werkzeug.serving import make_server

    httpd = make_server("127.0.0.1", 0, server.app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}/api/v1"
    httpd.shutdown()


@pytest.fixture(scope="module")
def snapshot_job(server, ready_dataset):
    """A finished job with real snapshot networks at steps 0 and 2."""
    from server.jobs import store as job_store
    from tests.support.run_folders import run_folder

    config, db = server.state.config, server.state.db
    job = job_store.insert_job(db, title="dirs", dataset_id=ready_dataset(server), base_model="scratch",
                               params={"resolution": 32}, steps=2,
                               run_dir_for=lambda i: job_store.run_dir_for(config.data_dir, i))
    run_folder(config.jobs_dir, job["id"], steps=2, snapshot_steps=[0, 2])
    job_store.claim_queued(db, job["id"], 1)
    job_store.transition(db, job["id"], "completed", "test", step=2)
    return job["id"]


def _run_task(fn, *args):
    from addon.core.tasks import TaskRunner

    runner = TaskRunner()
    runner.submit("t", fn, *args)
    assert runner.wait_idle(120)
    (msg,) = [m for m in runner.drain() if m.kind != "progress"]
    return msg


def test_the_addon_fetches_a_jobs_newest_snapshot_directions_and_previews(server, over_http, snapshot_job, tmp_path):
    from addon.core.client import LatentClient
    from addon.core.directions import fetch_directions

    client = LatentClient(over_http, server.state.token)
    msg = _run_task(fetch_directions, client, {"job_id": snapshot_job}, "fine", 3, str(tmp_path), 4.0)
    assert msg.kind == "result", msg.payload
    result = msg.payload
    assert result["model"] == {"job_id": snapshot_job, "step": 2} and result["layers"] == "fine"
    assert [d["id"] for d in result["directions"]] == ["fine:0", "fine:1", "fine:2"]
    listed = server.get(f"models/job:{snapshot_job}:2/directions?layers=fine&k=3").get_json()
    for got, want in zip(result["directions"], listed["directions"]):
        assert got["layers"] == want["layers"] and got["index"] == want["index"]
        strip = _png(open(got["preview"], "rb").read())
        expected = _png(server.get(f"models/job:{snapshot_job}:2/directions/{got['id']}/preview.png"
                                   f"?amount=4.0&seed=0&psi=0.7").data)
        np.testing.assert_array_equal(strip, expected)
    # a job without a step means its newest snapshot; the listing names it, and its preview URLs too
    newest = server.get(f"models/job:{snapshot_job}/directions?k=1").get_json()
    assert newest["model"] == {"job_id": snapshot_job, "step": 2}
    assert newest["directions"][0]["preview_url"] == f"/api/v1/models/job:{snapshot_job}:2/directions/all:0/preview.png"
    assert server.get(newest["directions"][0]["preview_url"]).status_code == 200


def test_the_addon_reports_a_refusal_in_words(server, over_http, tmp_path):
    from addon.core.client import LatentClient
    from addon.core.directions import fetch_directions

    client = LatentClient(over_http, server.state.token)
    msg = _run_task(fetch_directions, client, {"model_id": "gone"}, "all", 2, str(tmp_path), 4.0)
    assert msg.kind == "error" and "no model with id 'gone'" in msg.payload["message"]
    assert list(tmp_path.iterdir()) == []
