"""Helpers for tests of the in-process app (tests/unit/server, Flask test client `api`): a
model in the models folder, and polling a background resource until it settles. The
live-server twins (real HTTP) are in tests/support/jobs.py."""

from __future__ import annotations

import time

from tests.support.jobs import write_tiny_base_model

POLL_S = 0.05


def wait_settled(api, path: str, final_states: tuple[str, ...], timeout: float) -> dict:
    """GET `path` until its body's state is one of `final_states`; fail with the last body."""
    deadline = time.monotonic() + timeout
    body = None
    while time.monotonic() < deadline:
        body = api.get(path).get_json()
        if body["state"] in final_states:
            return body
        time.sleep(POLL_S)
    raise AssertionError(f"{path} not finished after {timeout}s: {body}")


def wait_walk(api, walk_id: int, timeout: float = 120) -> dict:
    """The walk's document once it is completed or failed."""
    return wait_settled(api, f"walks/{walk_id}", ("completed", "failed"), timeout)


def add_tiny_model(api, model_id: str = "tinybase"):
    """Write the untrained tiny checkpoint as `model_id` and rescan, so routes can use it;
    returns `api` (for module fixtures)."""
    write_tiny_base_model(api.state.config.models_dir / f"{model_id}.safetensors")
    r = api.post("models/rescan")
    assert r.status_code == 200 and model_id in {m["id"] for m in r.get_json()["models"]}
    return api
