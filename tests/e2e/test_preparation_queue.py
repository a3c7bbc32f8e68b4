"""Dataset preparations are queued like jobs (issue 12): at most --max-preparations run at
once, the rest wait visibly (state 'preparing', phase 'queued'), queued ones survive a server
stop; prepared reports and failure messages name files relative to the upload, never by
their place on the server."""

from __future__ import annotations

import time

import pytest
import requests

from tests.support.http import api_get, api_post
from tests.support.images import zip_bytes
from tests.support.jobs import upload_dataset, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _datasets(server) -> dict[str, dict]:
    return {d["id"]: d for d in api_get(server, "/datasets").json()}


def _watch(server, ids: list[str], timeout: float = 240) -> tuple[int, set[str]]:
    """Poll until every dataset is ready or failed; (most preparations seen running at once,
    the ids ever seen queued)."""
    most, queued = 0, set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = _datasets(server)
        running = [i for i in ids if rows[i]["state"] == "preparing" and rows[i]["phase"] != "queued"]
        queued |= {i for i in ids if rows[i]["state"] == "preparing" and rows[i]["phase"] == "queued"}
        most = max(most, len(running))
        if all(rows[i]["state"] in ("ready", "failed") for i in ids):
            return most, queued
        time.sleep(0.1)
    raise AssertionError(f"preparations did not finish: {[_datasets(server)[i] for i in ids]}\n{server.log()[-3000:]}")


def test_preparations_wait_their_turn_and_reports_hide_server_paths(server_factory, tmp_path):
    server = server_factory(tmp_path, max_preparations=1)
    ids = [upload_dataset(server, f"set{i}")["id"] for i in range(3)]
    for dataset_id in ids:
        r = api_post(server, f"/datasets/{dataset_id}/prepare", json={"resolution": 32})
        assert r.status_code == 202 and r.json()["state"] == "preparing", r.text
    most, queued = _watch(server, ids)
    assert most == 1 and len(queued) >= 2  # one at a time; the others were seen waiting
    rows = _datasets(server)
    assert [rows[i]["state"] for i in ids] == ["ready"] * 3

    data_dir = str(server.data_dir)
    report = api_get(server, f"/datasets/{ids[0]}/report")
    assert report.status_code == 200 and data_dir not in report.text
    body = report.json()
    assert body["output"] == "dataset.zip" and body["source"]["path"] == "upload"
    assert all(not item["source"].startswith("/") for item in body["items"])


def test_a_failed_preparation_says_why_without_server_paths(live_server):
    broken = zip_bytes([(f"renders/img{i}.png", b"not really a png") for i in range(3)])
    r = requests.post(live_server.api("/datasets?name=broken"), data=broken,
                      headers={**live_server.headers, "Content-Type": "application/zip"}, timeout=30)
    assert r.status_code == 201, r.text
    dataset_id = r.json()["id"]
    assert api_post(live_server, f"/datasets/{dataset_id}/prepare", json={"resolution": 32}).status_code == 202
    done = wait_for(live_server, f"/datasets/{dataset_id}", lambda d: d["state"] in ("ready", "failed"), 180,
                    expect_state="failed")
    assert done["error"] and str(live_server.data_dir) not in done["error"] and "work/source" not in done["error"]


def test_queued_preparations_survive_a_server_stop(server_factory, tmp_path):
    data_dir = tmp_path / "data"
    server = server_factory(tmp_path, data_dir=data_dir, max_preparations=1)
    ids = [upload_dataset(server, f"set{i}")["id"] for i in range(3)]
    for dataset_id in ids:
        assert api_post(server, f"/datasets/{dataset_id}/prepare", json={"resolution": 32}).status_code == 202
    rows = _datasets(server)
    assert sum(rows[i]["phase"] == "queued" for i in ids) >= 1
    from tests.support.server_process import stop_server

    stop_server(server.process)
    again = server_factory(tmp_path, data_dir=data_dir, max_preparations=1)
    _watch(again, ids)
    rows = _datasets(again)
    for dataset_id in ids:  # each one prepared, or (the one running at the stop) failed saying so
        row = rows[dataset_id]
        assert row["state"] == "ready" or "stopped with the server" in row["error"] or "interrupted" in row["error"], row
    assert sum(rows[i]["state"] == "ready" for i in ids) >= 2
