"""Base models in-process: scratch, a pickle imported in the background at start-up,
unusable files pending then refused with reasons, thumbnails."""

from __future__ import annotations

import io
import os
import shutil
import time
from pathlib import Path

from PIL import Image

from server.models.schemas import ModelListing
from tests.support.http import assert_json_error

TINY_PICKLE = Path(__file__).resolve().parents[2] / "data" / "sg2ada_tiny32" / "network-snapshot.pkl"


def prepare_data_dir(data_dir: Path) -> None:
    (data_dir / "models").mkdir(parents=True)
    shutil.copy(TINY_PICKLE, data_dir / "models" / "tiny32.pkl")  # there before the server starts


def listing(api, method="get") -> dict:
    r = api.get("models") if method == "get" else api.post("models/rescan")
    assert r.status_code == 200, r.get_data(as_text=True)
    ModelListing.model_validate(r.get_json())  # the documented answer is the real one
    return r.get_json()


def wait_for_model(api, kind="imported", timeout=120.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [m for m in listing(api)["models"] if m["kind"] == kind]
        if found:
            return found[0]
        time.sleep(0.2)
    raise AssertionError(f"no {kind} model after {timeout}s")


def test_scratch_comes_first(api):
    body = listing(api)
    assert body["models"][0] == {"id": "scratch", "name": "From scratch", "kind": "scratch", "resolution": None, "thumbnail_url": None}
    assert isinstance(body["refused"], list) and isinstance(body["pending"], list)


def test_pickle_present_at_start_is_imported_in_the_background(api):
    model = wait_for_model(api)
    assert model["id"] == "tiny32" and model["resolution"] == 32
    assert model["thumbnail_url"] == "/api/v1/models/tiny32/thumbnail"
    assert not {"path", "thumbnail", "thumbnail_path"} & set(model), "local paths must not leak"
    r = api.client.get(model["thumbnail_url"])
    assert r.status_code == 200 and r.headers["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(r.data)).size[0] >= 32
    assert (api.state.config.models_dir / "tiny32.safetensors").is_file()


def test_unusable_files_are_pending_then_refused_with_reasons(api):
    wait_for_model(api)  # the start-up import is done
    models_dir = api.state.config.models_dir
    (models_dir / "junk.pkl").write_bytes(os.urandom(4096))
    (models_dir / "weights.pt").write_bytes(b"\x00" * 100)
    body = listing(api)
    assert {"file": "junk.pkl"} in body["pending"]  # listing never imports
    refused = {r["file"]: r["reason"] for r in body["refused"]}
    assert "weights.pt" in refused and ".pkl" in refused["weights.pt"]

    body = listing(api, "post")  # rescan imports what is pending
    refused = {r["file"]: r["reason"] for r in body["refused"]}
    assert body["pending"] == [] and refused.get("junk.pkl"), body
    assert [m["id"] for m in body["models"] if m["kind"] == "imported"] == ["tiny32"]  # the good one is still there
    assert not (models_dir / "junk.safetensors").exists()


def test_thumbnail_errors(api):
    assert_json_error(api.get("models/no-such-model/thumbnail"), 404, "model_not_found", "no-such-model")
    assert_json_error(api.get("models/scratch/thumbnail"), 404, "thumbnail_not_found", "has no thumbnail")
    assert_json_error(api.app.test_client().get("/api/v1/models/scratch/thumbnail"), 401, "unauthorized")
