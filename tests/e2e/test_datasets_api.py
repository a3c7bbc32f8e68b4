"""Datasets over real HTTP: streamed uploads (raw, multipart, chunked), size limits enforced
while reading, a cut connection, real preparations (report, preview, delete) and a stop
during one. Refusals a test client can send are in tests/unit/server/test_datasets.py."""

from __future__ import annotations

import io
import socket
import sqlite3
import time
import zipfile

import pytest
import requests
from PIL import Image

from tests.support import images
from tests.support.images import zip_bytes
from tests.support.http import assert_json_error
from tests.support.jobs import wait_for
from tests.support.server_process import start_server, stop_server

pytestmark = pytest.mark.e2e
MAX_UPLOAD = 400_000


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("datasets") / "data", max_upload_bytes=MAX_UPLOAD, max_images=20, max_zip_entries=50)
    yield srv
    stop_server(srv.process)


def image_zip(n: int = 6, prefix: str = "renders/") -> bytes:
    return images.image_zip(n, prefix)


def upload_raw(srv, body, name="renders", content_type="application/zip", **kwargs):
    headers = {**srv.headers, "Content-Type": content_type}
    return requests.post(srv.api("datasets"), params={"name": name} if name else None, data=body, headers=headers, timeout=60, **kwargs)


def disk_and_rows(srv):
    files = sorted(str(p.relative_to(srv.data_dir)) for p in (srv.data_dir / "datasets").rglob("*") if p.is_file())
    rows = sorted(d["id"] for d in requests.get(srv.api("datasets"), headers=srv.headers, timeout=10).json())
    return files, rows


@pytest.fixture
def nothing_added(server):
    """Asserts at the end of the test that no dataset row and no file appeared."""
    before = disk_and_rows(server)
    yield
    assert disk_and_rows(server) == before


def wait_for_state(srv, dataset_id, states=("ready", "failed"), timeout=90.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = requests.get(srv.api(f"datasets/{dataset_id}"), headers=srv.headers, timeout=10).json()
        if body["state"] in states:
            return body
        time.sleep(0.3)
    raise AssertionError(f"dataset {dataset_id} still {body['state']} after {timeout}s:\n{srv.log()[-3000:]}")


# --- uploads that succeed ------------------------------------------------------------------

def test_raw_zip_upload_registers_the_dataset(server):
    body = image_zip(6)
    r = upload_raw(server, body, name="My renders")
    assert r.status_code == 201, r.text
    ds = r.json()
    assert ds["name"] == "My renders" and ds["state"] == "uploaded" and ds["source_images"] == 6 and ds["source_bytes"] == len(body)
    assert r.headers["Location"] == f"/api/v1/datasets/{ds['id']}"
    assert (server.data_dir / "datasets" / ds["id"] / "source.zip").read_bytes() == body
    assert requests.get(server.api(f"datasets/{ds['id']}"), headers=server.headers, timeout=10).json()["id"] == ds["id"]
    assert ds["id"] in [d["id"] for d in requests.get(server.api("datasets"), headers=server.headers, timeout=10).json()]


def test_multipart_upload_uses_name_field_or_file_name(server):
    body = image_zip(3)
    r = requests.post(server.api("datasets"), files={"file": ("trees.zip", body, "application/zip")}, data={"name": "Trees"}, headers=server.headers, timeout=60)
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "Trees" and r.json()["source_images"] == 3
    r = requests.post(server.api("datasets"), files={"file": ("rocks.zip", body, "application/zip")}, headers=server.headers, timeout=60)
    assert r.status_code == 201 and r.json()["name"] == "rocks"
    r = requests.post(server.api("datasets"), params={"name": "From query"}, files={"file": ("x.zip", body)}, headers=server.headers, timeout=60)
    assert r.status_code == 201 and r.json()["name"] == "From query"
    assert (server.data_dir / "datasets" / r.json()["id"] / "source.zip").read_bytes() == body


def test_chunked_upload_without_length_is_accepted(server):
    body = image_zip(2)
    r = upload_raw(server, (body[i:i + 1000] for i in range(0, len(body), 1000)), name="chunked")
    assert r.status_code == 201, r.text
    assert r.json()["source_bytes"] == len(body)


# --- size limits, enforced while streaming: 413, nothing registered, nothing on disk -----------

@pytest.mark.usefixtures("nothing_added")
def test_oversized_body_is_413_before_and_while_streaming(server):
    big = image_zip(1) + bytes(MAX_UPLOAD)
    assert_json_error(upload_raw(server, big), 413, "payload_too_large")  # Content-Length says too much
    chunks = (big[i:i + 50_000] for i in range(0, len(big), 50_000))  # no length: caught while reading
    assert_json_error(upload_raw(server, chunks), 413, "payload_too_large")
    r = requests.post(server.api("datasets"), files={"file": ("big.zip", big, "application/zip")}, headers=server.headers, timeout=60)
    assert_json_error(r, 413, "payload_too_large")


@pytest.mark.usefixtures("nothing_added")
def test_multipart_body_exactly_over_the_limit_is_caught_while_streaming(server):
    # Content-Length is within limit + multipart allowance, so only the byte count while reading catches it.
    big = bytes(MAX_UPLOAD + 10)
    r = requests.post(server.api("datasets"), files={"file": ("big.zip", big, "application/zip")}, headers=server.headers, timeout=60)
    assert_json_error(r, 413, "payload_too_large")


@pytest.mark.usefixtures("nothing_added")
def test_interrupted_upload_leaves_no_row_and_no_file(server):
    body = image_zip(6)
    host, port = server.base_url.removeprefix("http://").split(":")
    head = (
        f"POST /api/v1/datasets?name=cut HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: Bearer {server.token}\r\nContent-Type: application/zip\r\n"
        f"Content-Length: {len(body) + 100_000}\r\n\r\n"
    ).encode()
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head + body[: len(body) // 2])
    time.sleep(1.0)  # let the server notice the disconnect


# --- prepare, report, preview, delete -----------------------------------------------------------

def test_prepare_builds_report_and_preview_then_delete_removes_everything(server):
    ds = upload_raw(server, image_zip(8), name="prep").json()
    assert_json_error(requests.get(server.api(f"datasets/{ds['id']}/preview"), headers=server.headers, timeout=10), 409, "dataset_not_ready")
    params = {"resolution": 32, "crop": "center", "background": "#102030", "inflate": ["flip_h"], "allow_upscale": False, "labels_from_folders": False}
    r = requests.post(server.api(f"datasets/{ds['id']}/prepare"), json=params, headers=server.headers, timeout=30)
    assert r.status_code == 202, r.text
    assert r.json()["state"] == "preparing" and r.json()["params"]["resolution"] == 32
    # A second prepare while the first runs is a conflict (the child needs seconds just to start).
    assert_json_error(requests.post(server.api(f"datasets/{ds['id']}/prepare"), json=params, headers=server.headers, timeout=30), 409, "dataset_busy")
    assert_json_error(requests.delete(server.api(f"datasets/{ds['id']}"), headers=server.headers, timeout=10), 409, "dataset_busy")

    done = wait_for_state(server, ds["id"])
    assert done["state"] == "ready", done
    assert done["progress"] == 1.0 and done["resolution"] == 32 and done["image_count"] == 16  # 8 images + 8 flips
    report = requests.get(server.api(f"datasets/{ds['id']}/report"), headers=server.headers, timeout=10)
    assert report.status_code == 200 and report.json()["counts"]["accepted"] == 8
    preview = requests.get(server.api(f"datasets/{ds['id']}/preview"), headers=server.headers, timeout=10)
    assert preview.status_code == 200 and preview.headers["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(preview.content)).size[0] > 0
    folder = server.data_dir / "datasets" / ds["id"]
    with zipfile.ZipFile(folder / "dataset.zip") as zf:
        assert "dataset.json" in zf.namelist() and sum(n.endswith(".png") for n in zf.namelist()) == 16
    assert not (folder / "work").exists()  # extracted sources are cleaned up

    assert requests.delete(server.api(f"datasets/{ds['id']}"), headers=server.headers, timeout=10).status_code == 204
    assert not folder.exists()
    assert_json_error(requests.get(server.api(f"datasets/{ds['id']}"), headers=server.headers, timeout=10), 404, "dataset_not_found")


def test_prepare_with_unusable_images_fails_with_the_reason(server):
    ds = upload_raw(server, zip_bytes([(f"broken{i}.png", b"not really a png" * 20) for i in range(3)]), name="broken").json()
    r = requests.post(server.api(f"datasets/{ds['id']}/prepare"), json={"resolution": 32}, headers=server.headers, timeout=30)
    assert r.status_code == 202
    done = wait_for_state(server, ds["id"])
    assert done["state"] == "failed" and done["error"], done
    assert done["preview_url"] is None
    assert_json_error(requests.get(server.api(f"datasets/{ds['id']}/report"), headers=server.headers, timeout=10), 409, "dataset_not_ready")


def test_server_stop_during_preparation_leaves_it_failed_not_stuck(server_factory, tmp_path):
    # A fast machine can finish a small preparation between the poll that sees it start and
    # the SIGTERM; then it is simply ready (not what this test is about), so try again with
    # more work until a stop lands mid-preparation. Never may a stop leave it 'preparing'.
    for attempt, count in enumerate((12, 96, 384, 1536)):
        srv = server_factory(tmp_path / f"try{attempt}")
        ds = upload_raw(srv, images.image_zip(count), name="cut short").json()
        r = requests.post(srv.api(f"datasets/{ds['id']}/prepare"), json={"resolution": 32}, headers=srv.headers, timeout=30)
        assert r.status_code == 202
        # Once it has left the queue (a queued one would simply run after the next start:
        # tests/e2e/test_preparation_queue.py).
        wait_for(srv, f"datasets/{ds['id']}", lambda d: d["phase"] != "queued", 30)
        assert stop_server(srv.process) == 0  # SIGTERM while the child is still at work
        with sqlite3.connect(srv.data_dir / "latent-studio.sqlite3") as conn:
            state, error = conn.execute("SELECT state, error FROM datasets WHERE id=?", (ds["id"],)).fetchone()
        assert state in ("failed", "ready"), (state, error)
        if state == "failed":
            assert error
            assert not (srv.data_dir / "datasets" / ds["id"] / "work").exists()
            return
    pytest.fail("every preparation finished before the server stopped; none was cut short")
