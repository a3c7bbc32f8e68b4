"""Contract: what the add-on calls and reads is what the server documents.

The server's OpenAPI document is fetched in-process (Flask test client, no port). Every
(method, path) in the add-on client's route table must be in it, matched by structure
(`/jobs/{job_id}` matches `/jobs/{id}`), and the states and fields in addon/core/api.py
must be in the documented response schemas.
"""

from __future__ import annotations

import re

import pytest

from addon.core import api
from addon.core.client import ROUTES
from server.config import ServerConfig

TOKEN = "contract-test-token-0123456789"


@pytest.fixture(scope="module")
def doc(tmp_path_factory):
    from server.app import create_app
    from server.state import EXTENSION_KEY

    app = create_app(ServerConfig(data_dir=tmp_path_factory.mktemp("contract") / "data", device="cpu", token=TOKEN))
    try:
        resp = app.test_client().get(f"{api.API_PREFIX}/openapi.json", headers={"Authorization": f"Bearer {TOKEN}"})
        assert resp.status_code == 200, resp.data[:300]
        yield resp.get_json()
    finally:
        app.extensions[EXTENSION_KEY].shutdown()


def _shape(path):
    """A path template with its parameter names blanked: '/jobs/{job_id}' -> '/jobs/{}'."""
    return re.sub(r"\{[^}]*\}", "{}", path)


def _operation(doc, route):
    """The documented operation of a ROUTES entry, or None."""
    method, template = ROUTES[route]
    wanted = _shape(api.API_PREFIX + template)
    for path, operations in doc["paths"].items():
        if _shape(path) == wanted:
            return operations.get(method.lower())
    return None


def _resolve(doc, schema):
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _properties(doc, schema):
    return {name: _resolve(doc, prop) for name, prop in _resolve(doc, schema).get("properties", {}).items()}


def _answer(doc, route):
    """Properties of the JSON answer of a ROUTES entry (its first 2xx response)."""
    op = _operation(doc, route)
    assert op is not None, route
    status = min(s for s in op["responses"] if s.startswith("2"))
    return _properties(doc, op["responses"][status]["content"]["application/json"]["schema"])


def _item_properties(doc, listing, key):
    return _properties(doc, listing[key]["items"])


def test_every_client_call_is_documented(doc):
    missing = [f"{method} {api.API_PREFIX}{template}" for name, (method, template) in sorted(ROUTES.items())
               if _operation(doc, name) is None]
    assert missing == [], "the add-on calls routes the server does not document"


def test_only_health_is_called_without_a_token(doc):
    public = [name for name in ROUTES if _operation(doc, name).get("security") == []]
    assert public == ["health"]
    assert set(api.HEALTH_FIELDS) <= set(_answer(doc, "health"))


def test_errors_are_code_and_message(doc):
    error = _properties(doc, doc["components"]["schemas"]["Error"])["error"]
    assert {"code", "message"} <= set(_properties(doc, error))


def test_dataset_fields_and_states(doc):
    for route in ("upload_dataset", "get_dataset", "prepare_dataset"):
        dataset = _answer(doc, route)
        assert set(api.DATASET_FIELDS) <= set(dataset), route
        assert tuple(dataset["state"]["enum"]) == api.DATASET_STATES, route


def test_job_fields_and_states(doc):
    from server.jobs.states import ACTIVE_STATES

    listing = _answer(doc, "list_jobs")
    for route, job in (("list_jobs", _item_properties(doc, listing, api.JOBS)), ("create_job", _answer(doc, "create_job")),
                       ("cancel_job", _answer(doc, "cancel_job")), ("resume_job", _answer(doc, "resume_job"))):
        assert set(api.JOB_FIELDS) <= set(job), route
        assert tuple(job["state"]["enum"]) == api.JOB_STATES, route
        # the estimate is an object or null; the add-on reads these of its fields
        variants = [_resolve(doc, v) for v in job["estimate"]["anyOf"]]
        assert {"type": "null"} in variants, route
        estimate = next(v for v in variants if v.get("type") != "null")
        assert set(api.ESTIMATE_FIELDS) <= set(estimate["properties"]), route
    assert set(api.JOB_WATCHED_STATES) < set(api.JOB_STATES)
    # Delete Job is greyed out exactly while the server would refuse it (409 job_active)
    assert set(api.JOB_ACTIVE_STATES) == set(ACTIVE_STATES)


def test_job_body_takes_keep_snapshots(doc):
    body = _properties(doc, _operation(doc, "create_job")["requestBody"]["content"]["application/json"]["schema"])
    variants = body["keep_snapshots"]["anyOf"]
    assert {"type": "integer", "minimum": 1} in variants and {"type": "null"} in variants  # 0 in the UI: not sent


def test_deletes_answer_without_a_body(doc):
    for route in ("delete_job", "delete_model", "delete_walk", "delete_dataset"):
        assert "204" in _operation(doc, route)["responses"], route
        assert "409" in _operation(doc, route)["responses"], route


def test_snapshot_fields(doc):
    listing = _answer(doc, "list_snapshots")
    assert set(api.SNAPSHOT_FIELDS) <= set(_item_properties(doc, listing, api.SNAPSHOTS))


def test_model_listing_fields(doc):
    for route in ("list_models", "rescan_models"):
        listing = _answer(doc, route)
        models = _item_properties(doc, listing, api.MODELS)
        assert set(api.MODEL_FIELDS) <= set(models), route
        assert set(api.LIBRARY_MODEL_KINDS) < set(models["kind"]["enum"]), route
        assert {"file", "reason"} <= set(_item_properties(doc, listing, api.REFUSED)), route


def test_walk_fields_and_states(doc):
    for route in ("create_walk", "get_walk"):
        walk = _answer(doc, route)
        assert set(api.WALK_FIELDS) <= set(walk), route
        assert tuple(walk["state"]["enum"]) == api.WALK_STATES, route
