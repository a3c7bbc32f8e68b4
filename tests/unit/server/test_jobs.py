"""Jobs in-process: every refusal of POST /jobs and /jobs/{id}/resume, lookups, and the job
answer (times as ISO text). No queue runs here, so job rows stay as a test writes them;
training itself is tested over real HTTP in tests/e2e/test_jobs_api.py."""

from __future__ import annotations

import re

import pytest

from gan_core import rules
from server.jobs import store
from server.jobs.schemas import JobList, JobOut
from tests.support.http import assert_json_error

TINY_JOB = {"resolution": 32, "preset": "tiny", "batch": 4, "augmentation": "off"}
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.fixture(scope="module")
def dataset_id(api, ready_dataset):
    return ready_dataset(api)


def finished_job(api, dataset_id: str, step: int = 2, state: str = "completed") -> dict:
    """A job row that trained `step` steps and ended in `state`, as the scheduler leaves it."""
    db = api.state.db
    job = store.insert_job(db, title="done", dataset_id=dataset_id, base_model="scratch",
                           params={**TINY_JOB, "data": "x.zip"}, steps=step,
                           run_dir_for=lambda i: store.run_dir_for(api.state.config.data_dir, i))
    store.claim_queued(db, job["id"], 1)
    store.update_progress(db, job["id"], 1, {"step": step})
    return store.transition(db, job["id"], state, "test")


@pytest.mark.parametrize("fields, words", [
    ({"colour": "red"}, "unknown field(s): colour (allowed: title, dataset_id"),
    ({"steps": 0}, "steps must be a whole number"),
    ({"steps": 10**9}, "steps must be a whole number from 1 to 25000"),
    ({"batch": "4"}, "batch must be a whole number from 1 to 256"),
    ({"batch": True}, "batch must be a whole number"),
    ({"batch": rules.MAX_TRAIN_BATCH + 1}, f"from 1 to {rules.MAX_TRAIN_BATCH}"),
    ({"augmentation": "sometimes"}, "augmentation must be one of ada, fixed, off"),
    ({"resolution": 33}, "resolution must be a power of two"),
    ({"resolution": 64}, "does not match the dataset's 32"),
    ({"mirror": "yes"}, "mirror must be true or false"),
    ({"preset": "huge"}, "preset must be one of auto, tiny, small, stylegan2"),
    ({"snapshot_every": 0}, "snapshot_every must be a whole number"),
    ({"steps": 10, "snapshot_every": 11}, "snapshot_every must be a whole number from 1 to 10"),
    ({"title": ""}, "title must be non-empty text"),
    ({"title": "x" * 201}, "at most 200 characters"),
    ({"seed": -1}, "seed must be a whole number"),
])
def test_create_job_refuses_bad_fields(api, dataset_id, fields, words):
    r = api.post("jobs", json={"dataset_id": dataset_id, **TINY_JOB, **fields})
    assert_json_error(r, 422, "invalid_input", words)


@pytest.mark.parametrize("body, status, code, words", [
    ({"steps": 5}, 422, "invalid_input", "dataset_id is required"),
    ({"dataset_id": "ffffffffffff"}, 422, "unknown_dataset", "no dataset with id"),
    ({"dataset_id": 7}, 422, "invalid_input", "dataset_id must be non-empty text"),
    ("BASE", 422, "unknown_base_model", "base_model: no model with id 'no-such-model'"),
    ("UNPREPARED", 409, "dataset_not_ready", "prepare it before training"),
])
def test_create_job_refuses_bad_references(api, dataset_id, body, status, code, words):
    if body == "BASE":
        body = {"dataset_id": dataset_id, "base_model": "no-such-model"}
    elif body == "UNPREPARED":
        from server.datasets import store as dataset_store

        dataset_store.insert_dataset(api.state.db, "0000000000aa", "raw", 1, 1)
        body = {"dataset_id": "0000000000aa"}
    assert_json_error(api.post("jobs", json=body), status, code, words)


@pytest.mark.parametrize("data, words", [(b"{not json", "must be JSON"), (b"[1, 2]", "must be an object")])
def test_create_job_body_that_is_not_a_json_object_is_400(api, data, words):
    assert_json_error(api.post("jobs", data=data, content_type="application/json"), 400, "bad_request", words)


def test_refused_jobs_create_nothing(api, dataset_id):
    before = len(api.get("jobs").get_json()["jobs"])
    for body in ({"colour": "red"}, {"steps": 0}, {"resolution": 64}, {"base_model": "nope"}):
        assert api.post("jobs", json={"dataset_id": dataset_id, **body}).status_code == 422
    assert len(api.get("jobs").get_json()["jobs"]) == before


@pytest.mark.parametrize("request_, status, code", [
    (("get", "jobs/9999"), 404, "job_not_found"),
    (("post", "jobs/9999/cancel"), 404, "job_not_found"),
    (("post", "jobs/9999/resume"), 404, "job_not_found"),
    (("get", "jobs/9999/snapshots"), 404, "job_not_found"),
    (("get", "jobs/9999/grid.png"), 404, "job_not_found"),
    (("get", "jobs/9999/snapshots/1/grid.png"), 404, "job_not_found"),
    (("get", "jobs/9999/snapshots/1/network.safetensors"), 404, "job_not_found"),
])
def test_unknown_job_is_404(api, request_, status, code):
    method, path = request_
    assert_json_error(getattr(api, method)(path, **({"json": {"steps": 10}} if method == "post" else {})), status, code)


@pytest.mark.parametrize("body, status, code, words", [
    ({"steps": 2}, 422, "invalid_input", "must exceed the 2 steps already trained"),
    ({"steps": 10**9}, 422, "invalid_input", "steps must be a whole number from 1 to 25000"),
    ({"steps": "10"}, 422, "invalid_input", "steps must be a whole number"),
    ({"steps": 10, "batch": 8}, 422, "invalid_input", "unknown field(s): batch (allowed: steps)"),
])
def test_resume_refusals(api, dataset_id, body, status, code, words):
    job = finished_job(api, dataset_id)
    assert_json_error(api.post(f"jobs/{job['id']}/resume", json=body), status, code, words)
    assert api.get(f"jobs/{job['id']}").get_json()["state"] == "completed"


def test_illegal_transitions_are_409(api, dataset_id):
    job = finished_job(api, dataset_id)
    assert_json_error(api.post(f"jobs/{job['id']}/cancel"), 409, "illegal_state_transition", "'completed' cannot become")
    running = finished_job(api, dataset_id, state="cancelling")
    assert_json_error(api.post(f"jobs/{running['id']}/resume", json={"steps": 10}), 409, "illegal_state_transition")


def test_resume_after_the_dataset_is_gone_is_409(make_api, ready_dataset):
    api = make_api()
    dataset_id = ready_dataset(api)
    job = finished_job(api, dataset_id, state="cancelled")
    assert api.delete(f"datasets/{dataset_id}").status_code == 204
    assert_json_error(api.post(f"jobs/{job['id']}/resume", json={"steps": 5}), 409, "dataset_gone")


def test_resume_queues_the_job_again(make_api, ready_dataset):
    api = make_api()
    job = finished_job(api, ready_dataset(api))
    r = api.post(f"jobs/{job['id']}/resume", json={"steps": 3})
    assert r.status_code == 202 and r.get_json()["state"] == "queued" and r.get_json()["steps"] == 3


def test_job_answers_match_their_schema_and_use_iso_times(make_api, ready_dataset):
    api = make_api()
    job = finished_job(api, ready_dataset(api))
    body = api.get(f"jobs/{job['id']}").get_json()
    JobOut.model_validate(body)
    for key in ("created_at", "updated_at", "started_at", "finished_at", "heartbeat"):
        assert ISO_UTC.match(body[key]), (key, body[key])
    assert [h["to_state"] for h in body["history"]] == ["queued", "running", "completed"]
    assert all(ISO_UTC.match(h["at"]) for h in body["history"])
    listing = api.get("jobs").get_json()
    JobList.model_validate(listing)
    assert "history" not in listing["jobs"][0]
    assert api.get(f"jobs/{job['id']}/snapshots").get_json() == {"snapshots": []}
