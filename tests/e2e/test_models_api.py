"""Base models over real HTTP: scratch, pickles imported from the models folder, refusals, thumbnails."""

from __future__ import annotations

import io
import os
import shutil
import time

import pytest
import requests
from PIL import Image

from tests.e2e.conftest import start_server, stop_server
from tests.e2e.test_platform import assert_json_error

pytestmark = pytest.mark.e2e
TINY_PICKLE = os.path.join(os.path.dirname(__file__), "..", "data", "sg2ada_tiny32", "network-snapshot.pkl")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("models") / "data"
    (data / "models").mkdir(parents=True)
    shutil.copy(TINY_PICKLE, data / "models" / "tiny32.pkl")  # there before the server starts
    srv = start_server(data)
    yield srv
    stop_server(srv.process)


def listing(srv, method="get") -> dict:
    r = getattr(requests, method)(srv.api("models" if method == "get" else "models/rescan"), headers=srv.headers, timeout=120)
    assert r.status_code == 200, r.text
    return r.json()


def wait_for_model(srv, kind="imported", timeout=120.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [m for m in listing(srv)["models"] if m["kind"] == kind]
        if found:
            return found[0]
        time.sleep(0.5)
    raise AssertionError(f"no {kind} model after {timeout}s:\n{srv.log()[-3000:]}")


def test_scratch_comes_first(server):
    body = listing(server)
    assert body["models"][0] == {"id": "scratch", "name": "From scratch", "kind": "scratch", "resolution": None, "thumbnail_url": None}
    assert isinstance(body["refused"], list) and isinstance(body["pending"], list)


def test_pickle_present_at_start_is_imported_in_the_background(server):
    model = wait_for_model(server)
    assert model["id"] == "tiny32" and model["resolution"] == 32
    assert model["thumbnail_url"] == "/api/v1/models/tiny32/thumbnail"
    assert not {"path", "thumbnail", "thumbnail_path"} & set(model), "local paths must not leak"
    r = requests.get(server.base_url + model["thumbnail_url"], headers=server.headers, timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(r.content)).size[0] >= 32
    assert (server.data_dir / "models" / "tiny32.safetensors").is_file()


def test_unusable_files_are_pending_then_refused_with_reasons(server):
    wait_for_model(server)  # the start-up import is done
    models_dir = server.data_dir / "models"
    (models_dir / "junk.pkl").write_bytes(os.urandom(4096))
    (models_dir / "weights.pt").write_bytes(b"\x00" * 100)
    body = listing(server)
    assert {"file": "junk.pkl"} in body["pending"]  # listing never imports
    refused = {r["file"]: r["reason"] for r in body["refused"]}
    assert "weights.pt" in refused and ".pkl" in refused["weights.pt"]

    body = listing(server, "post")  # rescan imports what is pending
    refused = {r["file"]: r["reason"] for r in body["refused"]}
    assert body["pending"] == [] and refused.get("junk.pkl"), body
    assert [m["id"] for m in body["models"] if m["kind"] == "imported"] == ["tiny32"]  # the good one is still there
    assert not (models_dir / "junk.safetensors").exists()


def test_thumbnail_errors(server):
    assert_json_error(requests.get(server.api("models/no-such-model/thumbnail"), headers=server.headers, timeout=10), 404, "model_not_found")
    assert_json_error(requests.get(server.api("models/scratch/thumbnail"), headers=server.headers, timeout=10), 404, "no_thumbnail")
    assert_json_error(requests.get(server.api("models/scratch/thumbnail"), timeout=10), 401, "unauthorized")
