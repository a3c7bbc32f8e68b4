"""Property-based fuzzing of every route in the OpenAPI document (issue 12): generated path
parameters, query strings, headers and bodies, through Flask's test client. Whatever comes
in, the answer is JSON with a 2xx/4xx status (503/507 only as documented), never a 500 or
an HTML page. Derandomized and bounded so it runs in seconds, the same examples every run."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.jobs import store
from server.openapi import build_openapi
from tests.support.fuzz import check_answer, operations, requests_for
from tests.support.inprocess import add_tiny_model
from tests.support.run_folders import run_folder

EXAMPLES_PER_ROUTE = 40


@pytest.fixture(scope="module")
def world(api, ready_dataset):
    """Real things for the fuzzer to find: a model, a ready dataset, a job with snapshots, a
    finished walk. The walk queue's one place is then taken, so walks the fuzzer gets right
    are checked in full and answered 503 instead of rendering for minutes."""
    config = api.state.config
    add_tiny_model(api)
    dataset_id = ready_dataset(api)
    job = store.insert_job(api.state.db, title="fuzz", dataset_id=dataset_id, base_model="scratch",
                           params={"resolution": 32}, steps=2,
                           run_dir_for=lambda i: store.run_dir_for(config.data_dir, i))
    run_folder(config.jobs_dir, job["id"], steps=2, snapshot_steps=[0, 2])
    store.claim_queued(api.state.db, job["id"], 1)
    store.transition(api.state.db, job["id"], "completed", "fuzz", step=2)
    r = api.post("walks", json={"model": {"model_id": "tinybase"}, "waypoints": [{"frame": 0, "seed": 1}, {"frame": 1, "seed": 2}]})
    assert r.status_code == 202
    deadline = time.monotonic() + 60
    while api.get(f"walks/{r.get_json()['id']}").get_json()["state"] != "completed" and time.monotonic() < deadline:
        time.sleep(0.05)
    while api.state.walk_runner.reserve():  # take every place
        pass
    real = {"dataset_id": [dataset_id], "job_id": [job["id"]], "walk_id": [r.get_json()["id"]], "step": [0, 2],
            "frame": [0, 1], "model_id": ["tinybase", f"job:{job['id']}:2", "scratch"]}
    document = build_openapi(api.app)
    return api, document, real


def test_every_route_answers_every_request_with_json_and_no_500(world):
    api, document, real = world
    components = document["components"]["schemas"]
    client = api.app.test_client()
    data_dir = str(api.state.config.data_dir)
    ops = operations(document)
    assert len(ops) >= 25  # the whole API

    for op in ops:
        @settings(max_examples=EXAMPLES_PER_ROUTE, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(data=st.data())
        def one_route(data):
            request = data.draw(requests_for(op, components, real, api.state.token))
            check_answer(client.open(**request), request, data_dir)

        one_route()
