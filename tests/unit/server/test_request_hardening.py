"""Requests that used to answer 500 or slip through (issue 12): ids past SQLite's 64 bits,
JSON nested 100,000 deep, non-finite and oversized numbers, wrong walk field types; and the
smaller refusals that must stay (unknown fields, two model references, the seeds limit)."""

from __future__ import annotations

import pytest

from gan_core import rules
from server.jobs import store
from server.validation import MAX_JSON_BODY_BYTES, MAX_JSON_DEPTH
from tests.support.http import assert_json_error
from tests.support.inprocess import add_tiny_model

MODEL = {"model_id": "tinybase"}
KEYS = [{"frame": 0, "seed": 1}, {"frame": 3, "seed": 2}]
HUGE = 2**63  # one past SQLite's largest integer
# Every route that reads a JSON body; {job} and {dataset} are real ones (made by `server`), so
# the body is read rather than refused for a missing resource.
JSON_ROUTES = [("post", "jobs"), ("post", "generate"), ("post", "walks"), ("post", "jobs/{job}/resume"),
               ("post", "datasets/{dataset}/prepare")]


@pytest.fixture(scope="module")
def server(api, ready_dataset):
    add_tiny_model(api)
    dataset_id = ready_dataset(api)
    job = store.insert_job(api.state.db, title="t", dataset_id=dataset_id, base_model="scratch", params={},
                           steps=5, run_dir_for=lambda i: store.run_dir_for(api.state.config.data_dir, i))
    store.claim_queued(api.state.db, job["id"], 1)
    store.transition(api.state.db, job["id"], "failed", "test")
    api.ids = {"job": job["id"], "dataset": dataset_id}
    return api


def json_route(server, path: str) -> str:
    return path.format(**server.ids)


@pytest.mark.parametrize("path, code", [
    (f"jobs/{HUGE}", "job_not_found"), (f"jobs/{10**30}", "job_not_found"),
    (f"jobs/{HUGE}/snapshots", "job_not_found"), (f"jobs/{HUGE}/grid.png", "job_not_found"),
    (f"jobs/{HUGE}/snapshots/{HUGE}/grid.png", "job_not_found"),
    (f"jobs/{HUGE}/snapshots/1/network.safetensors", "job_not_found"),
    (f"walks/{HUGE}", "walk_not_found"), (f"walks/{HUGE}/frames.zip", "walk_not_found"),
    (f"walks/{HUGE}/frames/{HUGE}.png", "walk_not_found"),
])
def test_ids_past_64_bits_in_urls_are_404(server, path, code):
    assert_json_error(server.get(path), 404, code)


@pytest.mark.parametrize("path", [f"jobs/{HUGE}/cancel", f"jobs/{HUGE}/resume"])
def test_ids_past_64_bits_in_job_actions_are_404(server, path):
    assert_json_error(server.post(path), 404, "job_not_found")


@pytest.mark.parametrize("model, code", [
    ({"job_id": HUGE}, "job_not_found"), ({"job_id": HUGE, "step": HUGE}, "job_not_found"),
    ({"model_id": f"job:{HUGE}:1"}, "job_not_found"), ({"model_id": f"job:{HUGE}"}, "job_not_found"),
    ({"job_id": 10**40}, "job_not_found"), ({"model_id": f"job:{{job}}:{HUGE}"}, "snapshot_not_found"),
    ({"model_id": "job:{job}:" + "9" * 5000}, "invalid_input"),  # more digits than Python will parse
])
@pytest.mark.parametrize("route", ["generate", "walks"])
def test_ids_past_64_bits_in_model_references_are_404(server, model, code, route):
    model = {k: v.format(**server.ids) if isinstance(v, str) else v for k, v in model.items()}
    body = {"model": model, "seeds": [1]} if route == "generate" else {"model": model, "waypoints": KEYS}
    assert_json_error(server.post(route, json=body), 422 if code == "invalid_input" else 404, code)


@pytest.mark.parametrize("method, path", JSON_ROUTES)
@pytest.mark.parametrize("raw", [b"[" * 100_000, b'{"a":' * 100_000, b"[" * 5000 + b"]" * 5000,
                                 b'{"x": ' + b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1) + b"}"],
                         ids=["100k-lists", "100k-objects", "5k-closed", "just-too-deep"])
def test_deeply_nested_json_is_a_400_on_every_json_route(server, method, path, raw):
    r = getattr(server, method)(json_route(server, path), data=raw, content_type="application/json")
    assert_json_error(r, 400, "bad_request", "nested too deeply" if raw.startswith(b"[[") or b"x" in raw[:5] else None)


@pytest.mark.parametrize("method, path", JSON_ROUTES)
@pytest.mark.parametrize("raw, words", [
    (b'{"psi": NaN}', "NaN is not a JSON number"), (b'{"psi": -Infinity}', "-Infinity is not a JSON number"),
    (b'{"psi": 1e400}', "too large"), (b'{"psi": ' + b"9" * 5000 + b"}", "must be JSON"),
    (b'{"a": "\xff\xfe"}', "must be JSON"),
])
def test_json_that_is_not_strict_json_is_a_400(server, method, path, raw, words):
    r = getattr(server, method)(json_route(server, path), data=raw, content_type="application/json")
    assert_json_error(r, 400, "bad_request", words)


def test_a_json_body_over_the_limit_is_413(server):
    r = server.post("generate", data=b'{"x": "' + b"a" * MAX_JSON_BODY_BYTES + b'"}', content_type="application/json")
    assert_json_error(r, 413, "payload_too_large")


@pytest.mark.parametrize("fields, words", [
    ({"easing": ["linear"]}, "easing must be one of"),
    ({"easing": {"name": "linear"}}, "easing must be one of"),
    ({"interpolation": ["slerp"]}, "interpolation must be one of"),
    ({"noise_mode": {"a": 1}}, "noise_mode must be one of"),
    ({"psi": [1]}, "psi must be a number"),
    ({"loop": "yes"}, "loop must be true or false"),
    ({"frame_end": 10**400}, f"at most {rules.MAX_WALK_FRAMES} frames per walk"),
    ({"waypoints": [{"frame": 0, "z": [int("1" * 400)] + [0.0] * 63}, {"frame": 3, "seed": 2}]}, "must be a number"),
    ({"waypoints": [{"frame": 0, "z": [1e308] + [0.0] * 63}, {"frame": 3, "seed": 2}]}, "finite"),
    ({"waypoints": [{"frame": 0, "z": [-1e308] + [0.0] * 63}, {"frame": 3, "seed": 2}]}, "finite"),
    ({"waypoints": [{"frame": 0, "z": [[0.0]] * 64}, {"frame": 3, "seed": 2}]}, "must be a number"),
    ({"waypoints": [{"frame": 0, "seed": 1}], "extra": 1}, "unknown field(s): extra"),
], ids=["easing-list", "easing-object", "interp-list", "noise-object", "psi-list", "loop-text", "huge-frame-end",
        "z-400-digits", "z-1e308", "z-minus-1e308", "z-nested", "unknown-field"])
def test_walk_fields_of_the_wrong_kind_are_422(server, fields, words):
    r = server.post("walks", json={"model": MODEL, "waypoints": KEYS, **fields})
    assert_json_error(r, 422, "invalid_input", words)


def _walk_rows(server) -> int:
    with server.state.db.connect() as conn:
        return conn.execute("SELECT count(*) FROM walks").fetchone()[0]


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_walk_z_that_is_not_a_finite_number_is_refused_before_any_walk_exists(server, value):
    z = ", ".join([value] + ["0"] * 63)
    raw = '{"model": {"model_id": "tinybase"}, "waypoints": [{"frame": 0, "z": [%s]}, {"frame": 3, "seed": 2}]}' % z
    before = _walk_rows(server)
    assert_json_error(server.post("walks", data=raw, content_type="application/json"), 400, "bad_request")
    assert _walk_rows(server) == before


@pytest.mark.parametrize("route, body, words", [
    ("generate", {"model": MODEL, "seeds": [1], "colour": "red"}, "unknown field(s): colour"),
    ("generate", {"model": {**MODEL, "jobid": 1}, "seeds": [1]}, "unknown field(s) in model: jobid"),
    ("walks", {"model": MODEL, "waypoints": KEYS, "fps": 24}, "unknown field(s): fps"),
    ("walks", {"model": MODEL, "waypoints": [{"frame": 0, "seed": 1, "weight": 2}]}, "unknown field(s) in waypoints[0]"),
    ("generate", {"model": {"job_id": 1, "model_id": "tinybase"}, "seeds": [1]}, "either job_id"),
    ("walks", {"model": {"job_id": 1, "model_id": "tinybase"}, "waypoints": KEYS}, "either job_id"),
    ("generate", {"model": MODEL, "seeds": list(range(rules.SEEDS_PER_REQUEST + 1))},
     f"at most {rules.SEEDS_PER_REQUEST} per request"),
])
def test_unknown_fields_and_two_model_references_are_refused(server, route, body, words):
    assert_json_error(server.post(route, json=body), 422, "invalid_input", words)


def test_the_seeds_message_names_the_request_limit_not_the_list_limit(server):
    r = server.post("generate", json={"model": MODEL, "seeds": f"0-{rules.SEEDS_PER_REQUEST}"})
    message = assert_json_error(r, 422, "invalid_input")["message"]
    assert str(rules.SEEDS_PER_REQUEST) in message and str(rules.MAX_SEEDS_PER_LIST) not in message
