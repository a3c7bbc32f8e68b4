"""Datasets in-process: uploads refused for their content or form (nothing left behind),
prepare requests checked up front by the dataset builder's own rules, lookups, in-use
guards. (Streaming, size limits while reading, real preparations: tests/e2e.)"""

from __future__ import annotations

import io
import sqlite3
import stat
import zipfile

import pytest

from gan_core import rules
from tests.support import images
from tests.support.images import noise_png, zip_bytes
from tests.support.http import assert_json_error

MAX_UPLOAD = 400_000
SERVER_SETTINGS = {"max_upload_bytes": MAX_UPLOAD, "max_images": 20, "max_zip_entries": 50}


def image_zip(n: int = 2, prefix: str = "renders/") -> bytes:
    return images.image_zip(n, prefix)


def upload(api, body: bytes, name="renders", content_type="application/zip"):
    return api.post("datasets", query_string={"name": name} if name else None, data=body, content_type=content_type)


def uploaded(api, name="params") -> str:
    r = upload(api, image_zip(1), name=name)
    assert r.status_code == 201, r.get_data(as_text=True)
    return r.get_json()["id"]


# --- uploads refused for what they hold or how they are sent ------------------------------------

def _symlink_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a.png", noise_png(1, 8))
        link = zipfile.ZipInfo("link.png")
        link.create_system = 3
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
    return buf.getvalue()


PNG = noise_png(99, 8)


@pytest.mark.usefixtures("nothing_added")
@pytest.mark.parametrize("body, status, code, words", [
    (zip_bytes([("ok.png", PNG), ("../evil.png", PNG)]), 422, "unsafe_path", "outside the archive"),
    (zip_bytes([("ok.png", PNG), ("/abs/evil.png", PNG)]), 422, "unsafe_path", "absolute path"),
    (zip_bytes([("ok.png", PNG), ("bomb.png", bytes(30 * 10**6))]), 422, "compression_ratio", "zip bomb"),
    (zip_bytes([(f"f{i}.txt", b"x") for i in range(60)]), 422, "too_many_entries", "the limit is 50"),
    (zip_bytes([(f"i{i}.png", PNG) for i in range(21)]), 422, "too_many_images", "the limit is 20"),
    (zip_bytes([("readme.txt", b"no images here")]), 422, "no_images", ".png"),
    (_symlink_zip(), 422, "symlink_entry", "symbolic link"),
    (b"GIF89a definitely not a zip" * 100, 400, "not_a_zip", "not a readable zip"),
    (b"", 400, "bad_request", "the upload is empty"),
], ids=["dotdot", "absolute", "bomb", "entries", "images", "no-images", "symlink", "not-zip", "empty"])
def test_zips_refused_for_their_content(api, body, status, code, words):
    assert len(body) < MAX_UPLOAD
    assert_json_error(upload(api, body), status, code, words)


@pytest.mark.usefixtures("nothing_added")
@pytest.mark.parametrize("name, content_type, status, code, words", [
    ("renders", "text/plain", 415, "unsupported_media_type", "application/zip"),
    ("x" * 101, "application/zip", 422, "invalid_input", "longer than 100"),
    ("bad\x07name", "application/zip", 422, "invalid_input", "control characters"),
])
def test_raw_uploads_refused_for_their_form(api, name, content_type, status, code, words):
    assert_json_error(upload(api, image_zip(1), name=name, content_type=content_type), status, code, words)


@pytest.mark.usefixtures("nothing_added")
@pytest.mark.parametrize("data, content_type, words", [
    ({"other": (io.BytesIO(image_zip(1)), "a.zip")}, "multipart/form-data", "send the zip in form field 'file'"),
    ({"name": "only a name"}, "multipart/form-data", "no 'file' field"),
    (b"--xyz\r\nnonsense", "multipart/form-data; boundary=xyz", "multipart"),
    (b"--xyz\r\n", "multipart/form-data", "without a boundary"),
], ids=["file-in-other-field", "no-file-field", "broken", "no-boundary"])
def test_multipart_uploads_refused_for_their_form(api, data, content_type, words):
    assert_json_error(api.post("datasets", data=data, content_type=content_type), 400, "bad_request", words)


def test_upload_answer_and_its_times(api):
    r = upload(api, image_zip(2), name="My renders")
    assert r.status_code == 201
    ds = r.get_json()
    assert ds["name"] == "My renders" and ds["state"] == "uploaded" and ds["source_images"] == 2
    assert r.headers["Location"] == f"/api/v1/datasets/{ds['id']}"
    assert ds["created_at"].endswith("Z") and ds["updated_at"].endswith("Z")
    from server.datasets.schemas import DatasetOut

    DatasetOut.model_validate(ds)  # the documented answer is the real one


# --- lookups ------------------------------------------------------------------------------------

@pytest.mark.parametrize("dataset_id", ["000000000000", "..", "not-an-id", "%2e%2e"])
@pytest.mark.parametrize("suffix", ["", "/report", "/preview"])
def test_unknown_dataset_is_404(api, dataset_id, suffix):
    assert_json_error(api.get(f"datasets/{dataset_id}{suffix}"), 404)


@pytest.mark.parametrize("dataset_id", ["000000000000", "not-an-id"])
def test_deleting_an_unknown_dataset_is_404(api, dataset_id):
    assert_json_error(api.delete(f"datasets/{dataset_id}"), 404, "dataset_not_found")


def test_files_of_an_unprepared_dataset_are_409(api):
    dataset_id = uploaded(api, "unprepared")
    for what in ("report", "preview"):
        assert_json_error(api.get(f"datasets/{dataset_id}/{what}"), 409, "dataset_not_ready", what)


# --- prepare: checked before anything starts ----------------------------------------------------

@pytest.mark.parametrize("params, words", [
    ({"resolution": 8}, f"resolution must be a power of two from {rules.DATASET_MIN_RESOLUTION} to {rules.DATASET_MAX_RESOLUTION}"),
    ({"resolution": 2048}, "resolution must be a power of two"),
    ({"resolution": 100}, "resolution must be a power of two"),
    ({"resolution": "64"}, "resolution must be a whole number"),
    ({"resolution": True}, "resolution must be a whole number"),
    ({"crop": "diagonal"}, "crop must be one of center, none, random, stretch"),
    ({"background": "red"}, "background colour must look like #RRGGBB"),
    ({"background": 7}, "background must be text"),
    ({"inflate": ["explode"]}, "unknown inflation 'explode'"),
    ({"inflate": [1]}, "inflate must be a list of names or comma-separated text"),
    ({"inflate": "flip,explode"}, "unknown inflation 'explode'"),
    ({"allow_upscale": "yes"}, "allow_upscale must be true or false"),
    ({"labels_from_folders": 1}, "labels_from_folders must be true or false"),
    ({"resolutoin": 64}, "unknown field(s): resolutoin (allowed: resolution, crop"),
])
def test_bad_prepare_parameters_are_422_and_change_nothing(api, params, words):
    dataset_id = uploaded(api)
    r = api.post(f"datasets/{dataset_id}/prepare", json=params)
    assert_json_error(r, 422, "invalid_input", words)
    assert api.get(f"datasets/{dataset_id}").get_json()["state"] == "uploaded"


def test_resolution_the_builder_refuses_is_refused_up_front(api):
    """Regression: 8 used to get 202 and then fail in the background (the builder takes 32-1024)."""
    dataset_id = uploaded(api)
    assert_json_error(api.post(f"datasets/{dataset_id}/prepare", json={"resolution": 8}), 422, "invalid_input", "from 32 to 1024")
    assert api.get(f"datasets/{dataset_id}").get_json()["state"] == "uploaded"


@pytest.mark.parametrize("data, words", [(b"{nope", "must be JSON"), (b"[1, 2]", "must be an object")])
def test_prepare_body_that_is_not_a_json_object_is_400(api, data, words):
    dataset_id = uploaded(api)
    r = api.post(f"datasets/{dataset_id}/prepare", data=data, content_type="application/json")
    assert_json_error(r, 400, "bad_request", words)


def test_prepare_of_an_unknown_dataset_is_404(api):
    assert_json_error(api.post("datasets/000000000000/prepare", json={}), 404, "dataset_not_found")


def test_dataset_used_by_an_unfinished_job_cannot_be_deleted_or_reprepared(api):
    dataset_id = uploaded(api, "in use")
    # A job row as the jobs store writes it, in 'interrupted' (unfinished; no queue runs in these tests).
    conn = sqlite3.connect(api.state.config.db_path, timeout=30)
    with conn:
        job_id = conn.execute(
            "INSERT INTO jobs (title, dataset_id, base_model, params, state, steps, run_dir, created_at, updated_at)"
            " VALUES ('t', ?, 'scratch', '{}', 'interrupted', 10, '', 0, 0)", (dataset_id,),
        ).lastrowid
    try:
        assert_json_error(api.delete(f"datasets/{dataset_id}"), 409, "dataset_in_use")
        assert_json_error(api.post(f"datasets/{dataset_id}/prepare", json={"resolution": 32}), 409, "dataset_in_use")
        assert (api.state.config.datasets_dir / dataset_id / "source.zip").exists()
        with conn:
            conn.execute("UPDATE jobs SET state='failed' WHERE id=?", (job_id,))
        assert api.delete(f"datasets/{dataset_id}").status_code == 204
        assert not (api.state.config.datasets_dir / dataset_id).exists()
    finally:
        with conn:
            conn.execute("DELETE FROM jobs WHERE id=?", (job_id,))
        conn.close()
