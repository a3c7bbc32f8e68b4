"""addon/core/client.py (and the bpy-free work functions) against a tiny real HTTP server."""

from __future__ import annotations

import io
import json
import os
import socket
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from addon.core import client as client_mod
from addon.core import tasks as tasks_mod
from addon.core import work as work_mod
from addon.core.client import ROUTES, ClientError, LatentClient
from addon.core.formatting import describe_health, summarize_report


class FakeServer:
    """A real HTTP server on 127.0.0.1; routes map (method, path) -> fn(handler, body) -> (status, headers, bytes)."""

    def __init__(self):
        self.routes = {}
        self.fallback = None  # fn for requests no route matches (None: a 404)
        self.requests = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _handle(self, method):
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                outer.requests.append({"method": method, "path": parts.path, "query": parse_qs(parts.query),
                                       "headers": dict(self.headers), "body": body})
                fn = outer.routes.get((method, parts.path)) or outer.fallback
                if fn is None:
                    status, headers, data = 404, {"Content-Type": "application/json"}, json.dumps(
                        {"error": {"code": "not_found", "message": f"no route {parts.path}"}}).encode()
                else:
                    status, headers, data = fn(self, body)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._handle("GET")

            def do_POST(self):
                self._handle("POST")

            def do_DELETE(self):
                self._handle("DELETE")

        class Quiet(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # clients that hang up on purpose (cancelled uploads) are expected here

        self.httpd = Quiet(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def json_route(self, method, path, obj, status=200):
        data = json.dumps(obj).encode()
        self.routes[(method, path)] = lambda h, b: (status, {"Content-Type": "application/json"}, data)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = FakeServer()
    yield s
    s.close()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connection_refused_is_a_clear_error():
    c = LatentClient(f"http://127.0.0.1:{free_port()}", timeout=2)
    with pytest.raises(ClientError, match="Cannot connect to the server at http://127.0.0.1"):
        c.health()


def test_slow_server_times_out(server):
    def slow(handler, body):
        time.sleep(1.5)
        return 200, {"Content-Type": "application/json"}, b"{}"

    server.routes[("GET", "/api/v1/health")] = slow
    c = LatentClient(server.url, timeout=0.3)
    t0 = time.monotonic()
    with pytest.raises(ClientError, match="did not answer within 0.3 s"):
        c.health()
    assert time.monotonic() - t0 < 1.2


def test_wrong_token_401(server):
    server.json_route("GET", "/api/v1/jobs", {"error": {"code": "unauthorized", "message": "bad token"}}, 401)
    c = LatentClient(server.url, token="nope")
    with pytest.raises(ClientError) as info:
        c.list_jobs()
    assert info.value.status == 401
    assert "access token" in info.value.message and "bad token" in info.value.message
    assert server.requests[-1]["headers"]["Authorization"] == "Bearer nope"


def test_json_error_body_is_reported(server):
    server.json_route("POST", "/api/v1/jobs",
                      {"error": {"code": "invalid_config", "message": "batch must be positive"}}, 422)
    c = LatentClient(server.url, token="t")
    with pytest.raises(ClientError) as info:
        c.create_job({"batch": 0})
    assert info.value.status == 422 and info.value.code == "invalid_config"
    assert info.value.message == "The server refused: batch must be positive"
    assert json.loads(server.requests[-1]["body"]) == {"batch": 0}


def test_non_json_error_and_non_json_success(server):
    server.routes[("GET", "/api/v1/jobs")] = lambda h, b: (500, {"Content-Type": "text/plain"},
                                                           b"Internal explosion\nstack")
    server.routes[("GET", "/api/v1/models")] = lambda h, b: (200, {"Content-Type": "text/html"}, b"<html>")
    c = LatentClient(server.url)
    with pytest.raises(ClientError) as info:
        c.list_jobs()
    # a crash page is no message for a user: what happened and what to do instead
    assert info.value.status == 500 and "explosion" not in info.value.message
    assert info.value.message.startswith("The server hit an internal problem (the server's log has the details)")
    with pytest.raises(ClientError, match="not JSON"):
        c.list_models()


@pytest.mark.parametrize("suffix", ["", "/", "/api/v1", "/api/v1/", " /api/v1// "])
def test_the_address_works_with_or_without_the_api_prefix(server, suffix):
    # the server prints http://127.0.0.1:7860/api/v1; users paste it with or without the prefix
    server.json_route("GET", "/api/v1/health", {"status": "ok", "version": "1", "device": "cpu", "device_name": None})
    c = LatentClient(" " + server.url + suffix.strip() + " ")
    assert c.base_url == server.url
    assert c.health()["status"] == "ok"
    assert [r["path"] for r in server.requests] == ["/api/v1/health"]


def test_the_address_keeps_a_path_in_front_of_the_api():
    # a server behind a proxy at /latent: only the API prefix and trailing slashes go
    assert client_mod.check_url("https://example.com/latent/api/v1/") == "https://example.com/latent"
    assert client_mod.check_url("http://127.0.0.1:7860/?x=1#top") == "http://127.0.0.1:7860"
    assert client_mod.check_url("http://[::1]:7860/api/v1") == "http://[::1]:7860"


def test_bad_url_rejected():
    with pytest.raises(ClientError, match="not an http"):
        LatentClient("ftp://example.com")
    with pytest.raises(ClientError, match="not an http"):
        LatentClient("")
    assert client_mod.is_local_url("http://127.0.0.1:7860")
    assert client_mod.is_local_url("http://localhost:1")
    assert client_mod.is_local_url("http://[::1]:7860")
    assert not client_mod.is_local_url("http://example.com:7860")
    assert not client_mod.is_local_url("http://192.168.1.5:7860")


def test_upload_streams_with_progress(server, tmp_path):
    payload = bytes(range(256)) * 1200  # 300 kB, several chunks
    src = tmp_path / "d.zip"
    src.write_bytes(payload)
    server.routes[("POST", "/api/v1/datasets")] = lambda h, body: (
        201, {"Content-Type": "application/json"}, json.dumps({"id": "ds1", "size": len(body)}).encode())
    calls = []
    c = LatentClient(server.url, token="tok")
    out = c.upload_dataset(str(src), name="renders", on_progress=lambda done, total: calls.append((done, total)))
    assert out == {"id": "ds1", "size": len(payload)}
    req = server.requests[-1]
    assert req["body"] == payload
    assert req["headers"]["Content-Type"] == "application/zip"
    assert req["query"] == {"name": ["renders"]}
    assert len(calls) >= 3
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert calls[-1] == (len(payload), len(payload))


def test_upload_cancel(server, tmp_path):
    src = tmp_path / "d.zip"
    src.write_bytes(b"x" * 500_000)
    server.json_route("POST", "/api/v1/datasets", {"id": "x"}, 201)
    c = LatentClient(server.url)
    seen = []
    with pytest.raises(ClientError, match="cancelled"):
        c.upload_dataset(str(src), on_progress=lambda d, t: seen.append(d), should_stop=lambda: len(seen) >= 2)


def test_slow_answer_to_an_upload_names_the_wait(server, tmp_path):
    # uploads wait (connect, read) seconds: the message names the read wait
    def slow(handler, body):
        time.sleep(1.5)
        return 201, {"Content-Type": "application/json"}, b"{}"

    server.routes[("POST", "/api/v1/datasets")] = slow
    src = tmp_path / "d.zip"
    src.write_bytes(b"PK")
    with pytest.raises(ClientError, match="did not answer within 0.3 s"):
        LatentClient(server.url, timeout=5, long_timeout=0.3).upload_dataset(str(src))


def test_download_to_file(server, tmp_path):
    blob = b"\x89PNG" + bytes(200_000)
    server.routes[("GET", "/api/v1/jobs/7/grid.png")] = lambda h, b: (200, {"Content-Type": "image/png"}, blob)
    c = LatentClient(server.url)
    dest = tmp_path / "sub" / "grid.png"
    assert c.download_grid("7", str(dest)) == str(dest)
    assert dest.read_bytes() == blob
    assert not (tmp_path / "sub" / "grid.png.part").exists()


def test_download_error_leaves_no_file(server, tmp_path):
    c = LatentClient(server.url)
    dest = tmp_path / "g.png"
    with pytest.raises(ClientError, match="no route"):
        c.download_grid("nope", str(dest))
    assert not dest.exists() and not (tmp_path / "g.png.part").exists()


# One sample call per client method: the request it sends must be its ROUTES entry.
SAMPLE_PARAMS = {"dataset_id": "d 1/x", "job_id": 7, "walk_id": 3, "step": 40, "model_id": "ffhq v2",
                 "direction_id": "coarse:0", "projection_id": 5}


def _zip_file(tmp):
    path = tmp / "d.zip"
    path.write_bytes(b"PK")
    return str(path)


SAMPLE_CALLS = {
    "health": lambda c, tmp: c.health(),
    "upload_dataset": lambda c, tmp: c.upload_dataset(_zip_file(tmp)),
    "get_dataset": lambda c, tmp: c.get_dataset("d 1/x"),
    "prepare_dataset": lambda c, tmp: c.prepare_dataset("d 1/x", {}),
    "dataset_report": lambda c, tmp: c.dataset_report("d 1/x"),
    "download_preview": lambda c, tmp: c.download_preview("d 1/x", str(tmp / "p.png")),
    "delete_dataset": lambda c, tmp: c.delete_dataset("d 1/x"),
    "list_models": lambda c, tmp: c.list_models(),
    "rescan_models": lambda c, tmp: c.rescan_models(),
    "delete_model": lambda c, tmp: c.delete_model("ffhq v2"),
    "delete_job": lambda c, tmp: c.delete_job(7),
    "delete_walk": lambda c, tmp: c.delete_walk(3),
    "create_job": lambda c, tmp: c.create_job({}),
    "list_jobs": lambda c, tmp: c.list_jobs(),
    "cancel_job": lambda c, tmp: c.cancel_job(7),
    "resume_job": lambda c, tmp: c.resume_job(7, 10),
    "list_snapshots": lambda c, tmp: c.list_snapshots(7),
    "download_grid": lambda c, tmp: c.download_grid(7, str(tmp / "g.png")),
    "download_snapshot_grid": lambda c, tmp: c.download_snapshot_grid(7, 40, str(tmp / "g.png")),
    "download_chart": lambda c, tmp: c.download_chart(7, str(tmp / "c.png")),
    "download_timelapse": lambda c, tmp: c.download_timelapse(7, str(tmp / "t.mp4")),
    "download_timelapse_frames": lambda c, tmp: c.download_timelapse_frames(7, str(tmp / "f.zip")),
    "generate": lambda c, tmp: c.generate({}, str(tmp / "i.png")),
    "create_walk": lambda c, tmp: c.create_walk({}),
    "get_walk": lambda c, tmp: c.get_walk(3),
    "download_walk": lambda c, tmp: c.download_walk(3, str(tmp / "w.zip")),
    "explore": lambda c, tmp: c.explore({}),
    "create_projection": lambda c, tmp: c.create_projection({}),
    "get_projection": lambda c, tmp: c.get_projection(5),
    "list_directions": lambda c, tmp: c.list_directions("ffhq v2", "layers=coarse&k=2"),
    "download_direction_preview": lambda c, tmp: c.download_direction_preview("ffhq v2", "coarse:0", "amount=4.0",
                                                                              str(tmp / "d.png")),
}


def test_every_client_call_is_in_the_route_table():
    plumbing = {"url", "request", "download", "route"}
    calls = {n for n in dir(LatentClient) if not n.startswith("_") and callable(getattr(LatentClient, n))}
    assert calls - plumbing == set(ROUTES) == set(SAMPLE_CALLS)


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_each_method_sends_its_route(server, tmp_path, name):
    server.fallback = lambda h, b: (200, {"Content-Type": "application/json"}, b"{}")
    SAMPLE_CALLS[name](LatentClient(server.url), tmp_path)
    method, template = ROUTES[name]
    path = "/api/v1" + template.format(**{k: quote(str(v), safe="") for k, v in SAMPLE_PARAMS.items()})
    assert [(r["method"], r["path"]) for r in server.requests] == [(method, path)]


JOB_ACTIVE = {"error": {"code": "job_active",
                        "message": "job 7 is running: cancel it and wait until it has stopped, then delete it"}}


@pytest.mark.parametrize("name, path", [("delete_job", "/api/v1/jobs/7"), ("delete_walk", "/api/v1/walks/3"),
                                        ("delete_model", "/api/v1/models/ffhq%20v2"),
                                        ("delete_dataset", "/api/v1/datasets/d%201%2Fx")])
def test_deletes_read_no_body_and_refusals_are_words(server, tmp_path, name, path):
    server.routes[("DELETE", path)] = lambda h, b: (204, {}, b"")  # 204: no body, no Content-Type
    c = LatentClient(server.url, token="t")
    assert SAMPLE_CALLS[name](c, tmp_path) is None
    assert [(r["method"], r["path"]) for r in server.requests] == [("DELETE", path)]
    server.json_route("DELETE", path, JOB_ACTIVE, 409)
    with pytest.raises(ClientError) as info:
        SAMPLE_CALLS[name](c, tmp_path)
    assert info.value.status == 409 and info.value.code == "job_active"
    assert info.value.message == ("The server refused: job 7 is running: cancel it and wait until it has stopped, "
                                  "then delete it. Nothing was deleted.")


def test_rescan_asks_the_server_to_import_then_lists(server):
    listing = {"models": [{"id": "ffhq", "name": "FFHQ", "kind": "imported", "resolution": 32}], "refused": [],
               "pending": []}
    server.json_route("POST", "/api/v1/models/rescan", listing)
    runner = tasks_mod.TaskRunner()
    runner.submit("models", work_mod.fetch_models, LatentClient(server.url), True)
    assert runner.wait_idle(10)
    final = runner.drain()[-1]
    assert final.kind == "result", final
    assert final.payload == {"models": listing["models"], "refused": [], "rescanned": True}
    assert [(r["method"], r["path"]) for r in server.requests] == [("POST", "/api/v1/models/rescan")]


def _run(fn, *args, label="Delete"):
    runner = tasks_mod.TaskRunner()
    runner.submit("delete", fn, *args, label=label)
    assert runner.wait_idle(10)
    return runner.drain()[-1]


def test_deleting_a_job_returns_the_new_job_and_model_lists(server):
    server.routes[("DELETE", "/api/v1/jobs/4")] = lambda h, b: (204, {}, b"")
    server.json_route("GET", "/api/v1/jobs", {"jobs": [{"id": 5}]})
    server.json_route("GET", "/api/v1/models", {"models": [{"id": "scratch"}], "refused": [], "pending": []})
    final = _run(work_mod.delete_job, LatentClient(server.url), "4")
    assert final.kind == "result", final
    assert final.payload == {"job_id": "4", "existed": True, "jobs": [{"id": 5}], "models": [{"id": "scratch"}],
                             "refused": [], "rescanned": False}
    assert [(r["method"], r["path"]) for r in server.requests] == [
        ("DELETE", "/api/v1/jobs/4"), ("GET", "/api/v1/jobs"), ("GET", "/api/v1/models")]


def test_a_thing_already_gone_counts_as_deleted_but_a_missing_route_does_not(server):
    server.json_route("DELETE", "/api/v1/walks/3", {"error": {"code": "walk_not_found", "message": "no walk 3"}}, 404)
    final = _run(work_mod.delete_walk, LatentClient(server.url), "3")
    assert final.kind == "result" and final.payload == {"walk_id": "3", "existed": False}
    server.json_route("DELETE", "/api/v1/datasets/d1", {"error": {"code": "dataset_not_found",
                                                                  "message": "no dataset with id 'd1'"}}, 404)
    final = _run(work_mod.delete_dataset, LatentClient(server.url), "d1")
    assert final.kind == "result" and final.payload == {"dataset_id": "d1", "existed": False}
    server.json_route("DELETE", "/api/v1/models/m", {"models": []}, 200)
    server.json_route("GET", "/api/v1/models", {"models": [], "refused": [], "pending": []})
    final = _run(work_mod.delete_model, LatentClient(server.url), "m")
    assert final.kind == "result" and final.payload["existed"] is True
    # a server without the route (an older one) answers a plain 404: that is no success
    final = _run(work_mod.delete_job, LatentClient(server.url), "9", label="Delete job 'cube'")
    assert final.kind == "error"
    assert final.payload["message"] == "Delete job 'cube': The server refused: no route /api/v1/jobs/9"


def test_a_refused_delete_reaches_the_user_in_words(server):
    server.json_route("DELETE", "/api/v1/models/ffhq", {"error": {
        "code": "model_in_use", "message": "an unfinished job or walk uses model 'ffhq'; wait for it or cancel it first"}},
        409)
    final = _run(work_mod.delete_model, LatentClient(server.url), "ffhq", label="Delete model 'FFHQ'")
    assert final.kind == "error"
    assert final.payload["message"] == (
        "Delete model 'FFHQ': The server refused: an unfinished job or walk uses model 'ffhq'; wait for it or cancel "
        "it first. Nothing was deleted; Refresh Jobs to see which jobs are still going.")
    assert [r["method"] for r in server.requests] == ["DELETE"]  # no list fetched after a refusal


def test_describe_health():
    assert describe_health({"version": "0.1.0", "device": "cuda", "device_name": "NVIDIA H100"}) == \
        "Server 0.1.0 on NVIDIA H100 (cuda)"
    assert describe_health({"version": "0.1.0", "device": "cpu", "device_name": None}) == "Server 0.1.0 on cpu"
    assert describe_health({"version": "0.1.0", "device": "cpu", "device_name": "CPU"}) == "Server 0.1.0 on CPU"


# -- work functions (worker side of the operators) ---------------------------------------

def _png_zip(frames):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for f in frames:
            zf.writestr(f"frames/{f:06d}.png", f"png{f}".encode())
    return buf.getvalue()


def _snapshots_route(server, job_id, steps):
    server.json_route("GET", f"/api/v1/jobs/{job_id}/snapshots",
                      {"snapshots": [{"step": st, "kimg": st / 100} for st in steps]})


def test_bake_walk_polls_downloads_and_renames(server, tmp_path):
    polls = {"n": 0}

    def walk_state(handler, body):
        polls["n"] += 1
        state = "completed" if polls["n"] >= 2 else "running"
        return 200, {"Content-Type": "application/json"}, json.dumps(
            {"id": "w1", "state": state, "error": None, "frames_done": polls["n"], "frames_total": 3}).encode()

    server.json_route("POST", "/api/v1/walks", {"id": "w1", "state": "queued", "error": None, "frames_done": 0,
                                                "frames_total": 3}, 202)
    server.routes[("GET", "/api/v1/walks/w1")] = walk_state
    server.routes[("GET", "/api/v1/walks/w1/frames.zip")] = lambda h, b: (
        200, {"Content-Type": "application/zip"}, _png_zip([5, 6, 7]))
    _snapshots_route(server, 4, [0, 20, 40])
    out = tmp_path / "walk"
    out.mkdir()
    (out / "notes.txt").write_bytes(b"the user's")
    runner = tasks_mod.TaskRunner()
    body = {"model": {"job_id": 4}, "waypoints": [{"frame": 5, "seed": 1}, {"frame": 7, "seed": 2}],
            "frame_start": 5, "frame_end": 7}
    task = runner.submit("bake", work_mod.bake_walk, LatentClient(server.url), body, str(out), "walk", 0.05)
    assert runner.wait_idle(10)
    msgs = runner.drain()
    final = msgs[-1]
    assert final.kind == "result", final
    assert final.payload["first"] == 5 and final.payload["count"] == 3
    assert final.payload["model"] == {"job_id": 4, "step": 40}
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "walk_0005.png", "walk_0006.png", "walk_0007.png"]
    assert (out / "walk_0006.png").read_bytes() == b"png6"
    assert any(m.kind == "progress" and "s per frame" in m.payload["status"] for m in msgs)
    # "latest snapshot" was looked up when the bake started: the request names step 40
    walk_request = [r for r in server.requests if r["path"] == "/api/v1/walks"][0]
    assert json.loads(walk_request["body"]) == {**body, "model": {"job_id": 4, "step": 40}}
    assert task.finished


def test_bake_walk_never_replaces_frames_already_in_its_folder(server, tmp_path):
    out = tmp_path / "walk"
    out.mkdir()
    (out / "walk_0001.png").write_bytes(b"another walk's frame")
    runner = tasks_mod.TaskRunner()
    runner.submit("bake", work_mod.bake_walk, LatentClient(server.url), {"model": {"model_id": "m"}}, str(out),
                  "walk", label="Bake walk")
    assert runner.wait_idle(10)
    final = runner.drain()[-1]
    assert final.kind == "error" and "already holds frames: nothing was overwritten" in final.payload["message"]
    assert (out / "walk_0001.png").read_bytes() == b"another walk's frame"
    assert server.requests == []  # refused before anything was asked of the server


def test_bake_walk_failure_is_an_error_message(server, tmp_path):
    server.json_route("POST", "/api/v1/walks", {"id": "w2", "state": "failed",
                                                "error": "could not read /srv/latent/models/m.safetensors",
                                                "frames_done": 0, "frames_total": 3}, 202)
    runner = tasks_mod.TaskRunner()
    runner.submit("bake", work_mod.bake_walk, LatentClient(server.url), {"model": {"model_id": "m"}, "frame_start": 1},
                  str(tmp_path), "walk", label="Bake walk")
    assert runner.wait_idle(10)
    final = runner.drain()[-1]
    assert final.kind == "error"
    assert final.payload["message"] == "Bake walk: The server could not render the walk: could not read m.safetensors"


def test_upload_and_prepare_flow(server, tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(3):
        (folder / f"v{i}.png").write_bytes(b"img%d" % i)
    (folder / "notes.txt").write_text("not an image")
    states = iter(["preparing", "ready"])
    server.routes[("POST", "/api/v1/datasets")] = lambda h, b: (
        201, {"Content-Type": "application/json"}, json.dumps({"id": "d9", "state": "uploaded"}).encode())
    server.json_route("POST", "/api/v1/datasets/d9/prepare", {"id": "d9", "state": "preparing"}, 202)
    server.routes[("GET", "/api/v1/datasets/d9")] = lambda h, b: (
        200, {"Content-Type": "application/json"},
        json.dumps({"id": "d9", "state": next(states), "progress": 0.5, "error": None}).encode())
    # the report.json layout of the dataset builder: counts + rejected items with reasons
    server.json_route("GET", "/api/v1/datasets/d9/report",
                      {"resolution": 64, "counts": {"accepted": 2, "rejected": 1},
                       "rejected": [{"file": "v2.png", "code": "too_small", "reason": "smaller than 64px"}]})
    server.routes[("GET", "/api/v1/datasets/d9/preview")] = lambda h, b: (200, {"Content-Type": "image/png"}, b"PV")
    runner = tasks_mod.TaskRunner()
    runner.submit("up", work_mod.upload_and_prepare, LatentClient(server.url), str(folder), "imgs",
                  {"resolution": 64, "crop": "center"}, str(tmp_path), 0.05)
    assert runner.wait_idle(10)
    msgs = runner.drain()
    final = msgs[-1]
    assert final.kind == "result", final
    assert final.payload["uploaded"] == 3
    assert Path(final.payload["preview"]).read_bytes() == b"PV"
    uploaded = zipfile.ZipFile(io.BytesIO(server.requests[0]["body"]))
    assert sorted(uploaded.namelist()) == ["v0.png", "v1.png", "v2.png"]
    prep = [r for r in server.requests if r["path"].endswith("/prepare")][0]
    assert json.loads(prep["body"]) == {"resolution": 64, "crop": "center"}
    assert summarize_report(final.payload["report"]) == ("2 accepted, 1 rejected, 64px", "v2.png: smaller than 64px")
    statuses = [m.payload["status"] for m in msgs if m.kind == "progress"]
    assert any(st.startswith("uploading 100%") for st in statuses), statuses
    assert "preparing 50%, about 0m00s left" in statuses, statuses


@pytest.mark.parametrize("error, expected", [
    ("no usable images in /srv/latent/datasets/ab12/work/source: 12 uniform, 3 too_small; the images are smaller "
     "than 256 px: choose a lower resolution or allow upscaling",
     "None of the uploaded images could be used: 12 are one flat colour, 3 are smaller than the resolution. "
     "Hint: the images are smaller than 256 px: choose a lower resolution or allow upscaling. Change the renders "
     "or the dataset settings, then Upload & Prepare again."),
    ("internal error while preparing: KeyError: 'counts'",
     "The server hit an internal problem while preparing the dataset (the server's log has the details). "
     "Upload & Prepare again; if it fails again, report it with the server's log."),
])
def test_a_failed_preparation_says_what_happened_without_server_paths_or_codes(server, tmp_path, error, expected):
    folder = tmp_path / "imgs"
    folder.mkdir()
    (folder / "v.png").write_bytes(b"img")
    server.json_route("POST", "/api/v1/datasets", {"id": "d9", "state": "uploaded"}, 201)
    server.json_route("POST", "/api/v1/datasets/d9/prepare", {"id": "d9", "state": "preparing"}, 202)
    server.json_route("GET", "/api/v1/datasets/d9", {"id": "d9", "state": "failed", "progress": 0.3, "error": error})
    runner = tasks_mod.TaskRunner()
    runner.submit("up", work_mod.upload_and_prepare, LatentClient(server.url), str(folder), "imgs", {},
                  str(tmp_path), 0.05, label="Upload dataset")
    assert runner.wait_idle(10)
    final = runner.drain()[-1]
    assert final.kind == "error"
    assert final.payload["message"] == f"Upload dataset: {expected}"


def test_upload_of_empty_folder_fails_before_network(server, tmp_path):
    runner = tasks_mod.TaskRunner()
    runner.submit("up", work_mod.upload_and_prepare, LatentClient(server.url), str(tmp_path), "x", {},
                  str(tmp_path), label="Upload dataset")
    assert runner.wait_idle(10)
    final = runner.drain()[-1]
    assert final.kind == "error" and "There are no images in" in final.payload["message"]
    assert server.requests == []


def _poll(server, tmp_path, job_id, grids):
    runner = tasks_mod.TaskRunner()
    runner.submit("poll", work_mod.poll_jobs, LatentClient(server.url), job_id, grids, str(tmp_path))
    assert runner.wait_idle(10)
    return runner.drain()[-1]


def test_poll_lists_jobs_the_selected_jobs_snapshots_and_a_newer_grid(server, tmp_path):
    server.json_route("GET", "/api/v1/jobs", {"jobs": [{"id": 3, "state": "running"}, {"id": 4, "state": "completed"}]})
    _snapshots_route(server, 4, [0, 20, 40])
    server.routes[("GET", "/api/v1/jobs/4/snapshots/40/grid.png")] = lambda h, b: (200, {"Content-Type": "image/png"},
                                                                                  b"GRID40")
    final = _poll(server, tmp_path, "4", {"4": 20})
    assert final.kind == "result", final
    assert [j["id"] for j in final.payload["jobs"]] == [3, 4]
    assert final.payload["job_id"] == "4" and [x["step"] for x in final.payload["snapshots"]] == [0, 20, 40]
    assert final.payload["grids"] == {"4": {"step": 40, "path": str(tmp_path / "grid_job4.png")}}
    assert (tmp_path / "grid_job4.png").read_bytes() == b"GRID40"
    # the grid held is the newest: nothing is downloaded again
    server.requests.clear()
    assert _poll(server, tmp_path, "4", {"4": 40}).payload["grids"] == {}
    assert not any(r["path"].endswith("grid.png") for r in server.requests)


def test_poll_waits_for_a_grid_that_is_not_written_yet(server, tmp_path):
    server.json_route("GET", "/api/v1/jobs", {"jobs": [{"id": 4, "state": "completed"}]})
    _snapshots_route(server, 4, [0, 2])
    server.json_route("GET", "/api/v1/jobs/4/snapshots/2/grid.png",
                      {"error": {"code": "file_not_found", "message": "missing"}}, 404)
    final = _poll(server, tmp_path, "4", {"4": None})
    assert final.kind == "result" and final.payload["grids"] == {}
    assert not (tmp_path / "grid_job4.png").exists()


def test_poll_of_a_job_the_server_no_longer_has_asks_nothing_about_it(server, tmp_path):
    server.json_route("GET", "/api/v1/jobs", {"jobs": [{"id": 3, "state": "running"}]})
    final = _poll(server, tmp_path, "9", {"9": None})
    assert final.kind == "result" and final.payload["snapshots"] is None and final.payload["grids"] == {}
    assert [r["path"] for r in server.requests] == ["/api/v1/jobs"]


def test_poll_errors_reach_the_caller(server, tmp_path):
    server.json_route("GET", "/api/v1/jobs", {"error": {"code": "unauthorized", "message": "no"}}, 401)
    runner = tasks_mod.TaskRunner()
    runner.submit("poll", work_mod.poll_jobs, LatentClient(server.url), "4", {}, str(tmp_path), label="Follow training")
    assert runner.wait_idle(10)
    final = runner.drain()[-1]
    assert final.kind == "error" and final.payload["message"].startswith("Follow training: The server refused")


def test_generate_from_the_latest_snapshot_asks_for_its_step_and_names_files_by_it(server, tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for seed in (3, 4):
            zf.writestr(f"seed{seed:04d}.png", f"img{seed}".encode())
    server.routes[("POST", "/api/v1/generate")] = lambda h, b: (200, {"Content-Type": "application/zip"},
                                                                buf.getvalue())
    _snapshots_route(server, 1, [0, 20, 60, 40])
    runner = tasks_mod.TaskRunner()
    body = {"model": {"job_id": 1}, "seeds": [3, 4], "psi": 0.7, "noise_mode": "const"}
    runner.submit("gen", work_mod.generate, LatentClient(server.url), body, str(tmp_path))
    assert runner.wait_idle(10)
    final = runner.drain()[-1]
    assert final.kind == "result", final
    assert final.payload["model"] == {"job_id": 1, "step": 60}
    assert final.payload["images"] == [(3, str(tmp_path / "latent_job_1_step_60_seed000003.png")),
                                       (4, str(tmp_path / "latent_job_1_step_60_seed000004.png"))]
    assert (tmp_path / "latent_job_1_step_60_seed000004.png").read_bytes() == b"img4"
    assert json.loads(server.requests[-1]["body"]) == {**body, "model": {"job_id": 1, "step": 60}}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latent_job_1_step_60_seed000003.png",
                                                          "latent_job_1_step_60_seed000004.png"]


def test_generate_from_a_pinned_step_or_a_base_model_sends_it_unchanged(server, tmp_path):
    server.routes[("POST", "/api/v1/generate")] = lambda h, b: (200, {"Content-Type": "image/png"}, b"PNG7")
    runner = tasks_mod.TaskRunner()
    for model, name in (({"model_id": "m"}, "latent_m_seed000007.png"),
                        ({"job_id": 2, "step": 20}, "latent_job_2_step_20_seed000007.png")):
        body = {"model": model, "seeds": [7], "psi": 0.7, "noise_mode": "const"}
        runner.submit("gen", work_mod.generate, LatentClient(server.url), body, str(tmp_path))
        assert runner.wait_idle(10)
        final = runner.drain()[-1]
        assert final.kind == "result", final
        assert final.payload["images"] == [(7, str(tmp_path / name))] and final.payload["model"] == model
    assert [r["path"] for r in server.requests] == ["/api/v1/generate"] * 2  # no lookup needed


def test_generate_from_a_job_without_snapshots_says_so(server, tmp_path):
    _snapshots_route(server, 5, [])
    runner = tasks_mod.TaskRunner()
    body = {"model": {"job_id": 5}, "seeds": [7], "psi": 0.7, "noise_mode": "const"}
    runner.submit("gen", work_mod.generate, LatentClient(server.url), body, str(tmp_path), label="Generate")
    assert runner.wait_idle(10)
    final = runner.drain()[-1]
    assert final.kind == "error"
    assert final.payload["message"] == "Generate: Job 5 has no snapshot yet: wait until training writes its first one"
    assert list(tmp_path.iterdir()) == []


class _VanishingServer:
    """A raw TCP server on 127.0.0.1 that reads the request head (and some body), optionally
    sends a partial response, then drops the connection: a server that disappears mid-transfer."""

    def __init__(self, reply: bytes = b"", body_bytes_before_close: int = 64 * 1024):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.reply, self.limit = reply, body_bytes_before_close
        self.thread = threading.Thread(target=self._serve_once, daemon=True)
        self.thread.start()

    def _serve_once(self):
        conn, _ = self.sock.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(4096)
            received = len(data.split(b"\r\n\r\n", 1)[1])
            while received < self.limit:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                received += len(chunk)
            if self.reply:
                conn.sendall(self.reply)
            conn.shutdown(socket.SHUT_RDWR)
        self.sock.close()


def test_server_disappearing_mid_upload_is_a_clear_error_and_loses_nothing(tmp_path):
    src = tmp_path / "renders.zip"
    payload = os.urandom(2_000_000)
    src.write_bytes(payload)
    gone = _VanishingServer(body_bytes_before_close=100_000)
    with pytest.raises(ClientError) as exc:
        LatentClient(gone.url, token="tok").upload_dataset(str(src), name="renders")
    message = str(exc.value)
    assert "connection to the server" in message and "was lost" in message, message
    assert "Cannot connect" not in message  # it did connect: the server went away mid-upload
    assert src.read_bytes() == payload  # the user's dataset zip is untouched


def test_server_disappearing_mid_download_leaves_no_partial_file(tmp_path):
    head = b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 1000000\r\n\r\n"
    gone = _VanishingServer(reply=head + b"\x89PNG" + bytes(50_000), body_bytes_before_close=0)
    dest = tmp_path / "grid.png"
    with pytest.raises(ClientError, match=r"broke off after \d+ of 1000000 bytes: the server closed the connection"):
        LatentClient(gone.url).download_grid("7", str(dest))
    assert not dest.exists() and not list(tmp_path.glob("grid.png*"))


def _busy_then(server, path, busy_answers, retry_after="0"):
    """POST `path` answers 503 server_busy (with Retry-After unless None) `busy_answers` times, then 200."""
    seen = []

    def answer(handler, body):
        seen.append(body)
        if len(seen) <= busy_answers:
            headers = {"Content-Type": "application/json"}
            if retry_after is not None:
                headers["Retry-After"] = retry_after
            return 503, headers, json.dumps({"error": {"code": "server_busy",
                                                        "message": "the server is busy with other renders"}}).encode()
        return 200, {"Content-Type": "application/json"}, json.dumps({"ok": True}).encode()

    server.routes[("POST", "/api/v1" + path)] = answer
    return seen


def test_a_busy_server_is_asked_again_after_its_retry_after(server):
    seen = _busy_then(server, "/generate", busy_answers=2, retry_after="0.5")
    client = LatentClient(server.url)
    waits = []
    client.sleep = waits.append
    resp = client.request("POST", "/generate", json_body={"seeds": [1]})
    assert resp.json() == {"ok": True} and waits == [0.5, 0.5]
    assert len(seen) == 3 and all(json.loads(b) == {"seeds": [1]} for b in seen), "the same request each time"


def test_a_server_that_stays_busy_is_reported_after_a_few_tries(server):
    seen = _busy_then(server, "/generate", busy_answers=99)
    client = LatentClient(server.url)
    client.sleep = lambda s: None
    with pytest.raises(ClientError) as exc:
        client.request("POST", "/generate", json_body={"seeds": [1]})
    assert exc.value.status == 503 and exc.value.code == "server_busy" and "busy" in str(exc.value)
    assert len(seen) == LatentClient.BUSY_RETRIES + 1


@pytest.mark.parametrize("retry_after", [None, "Wed, 21 Oct 2026 07:28:00 GMT", "600", "-1"])
def test_a_busy_answer_without_a_short_numeric_retry_after_is_not_retried(server, retry_after):
    seen = _busy_then(server, "/generate", busy_answers=1, retry_after=retry_after)
    client = LatentClient(server.url)
    client.sleep = lambda s: pytest.fail("no wait expected")
    with pytest.raises(ClientError) as exc:
        client.request("POST", "/generate", json_body={})
    assert exc.value.status == 503 and len(seen) == 1


def test_a_streamed_upload_is_never_sent_twice(server, tmp_path):
    seen = _busy_then(server, "/datasets", busy_answers=1)
    client = LatentClient(server.url)
    client.sleep = lambda s: pytest.fail("a file stream cannot be replayed")
    payload = tmp_path / "upload.bin"
    payload.write_bytes(b"x" * 1000)
    with open(payload, "rb") as fh, pytest.raises(ClientError) as exc:
        client.request("POST", "/datasets", data=fh)
    assert exc.value.status == 503 and len(seen) == 1
