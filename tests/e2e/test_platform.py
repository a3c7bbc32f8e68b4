"""The server platform over real HTTP: auth, JSON errors, OpenAPI, token handling, serve's rules."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys

import pytest
import requests
from flask import Flask

from server.cli.serve import is_loopback
from server.config import ServerConfig
from server.errors import ApiError, register_error_handlers
from server.openapi import build_openapi, rule_to_openapi_path

pytestmark = pytest.mark.e2e
HTTP_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}


def assert_json_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content
    assert response.headers["Content-Type"].startswith("application/json"), response.headers["Content-Type"]
    body = response.json() if callable(response.json) else response.json  # requests vs Flask test client
    error = body["error"]
    assert set(error) == {"code", "message"} and error["message"]
    if code:
        assert error["code"] == code, error
    return error


def test_health_needs_no_token_and_reports_the_device(live_server):
    r = requests.get(live_server.api("health"), timeout=10)
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["version"] and body["device"] == "cpu" and body["device_name"] == "CPU"


@pytest.mark.parametrize("header", [None, "Bearer ", "Bearer wrong-token-0123456789", "Basic dXNlcjpwYXNz", "token-without-scheme"])
def test_missing_or_wrong_token_is_401_json(live_server, header):
    headers = {"Authorization": header} if header is not None else {}
    for path in ("datasets", "models", "openapi.json", "jobs", "no-such-route"):
        r = requests.get(live_server.api(path), headers=headers, timeout=10)
        assert_json_error(r, 401, "unauthorized")
        assert r.headers["WWW-Authenticate"].startswith("Bearer")


def test_right_token_is_accepted(live_server):
    r = requests.get(live_server.api("datasets"), headers=live_server.headers, timeout=10)
    assert r.status_code == 200 and r.json() == []


def test_unknown_route_and_wrong_method_are_json(live_server):
    assert_json_error(requests.get(live_server.api("no-such-thing"), headers=live_server.headers, timeout=10), 404, "not_found")
    r = requests.delete(live_server.api("openapi.json"), headers=live_server.headers, timeout=10)
    assert_json_error(r, 405, "method_not_allowed")
    assert "GET" in r.headers["Allow"]
    assert_json_error(requests.get(live_server.base_url + "/", headers=live_server.headers, timeout=10), 404, "not_found")


def test_openapi_document_over_http(live_server):
    r = requests.get(live_server.api("openapi.json"), headers=live_server.headers, timeout=10)
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.") and doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    for path in ("/api/v1/health", "/api/v1/datasets", "/api/v1/datasets/{dataset_id}/prepare", "/api/v1/models", "/api/v1/jobs"):
        assert path in doc["paths"], path
    assert doc["paths"]["/api/v1/health"]["get"]["security"] == []


def test_openapi_document_and_url_map_agree_both_ways(tmp_path):
    from server.app import create_app

    app = create_app(ServerConfig(data_dir=tmp_path / "data", device="cpu"))
    routed = {
        (rule_to_openapi_path(rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        for method in rule.methods & HTTP_METHODS
    }
    doc = build_openapi(app)
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops if method in {m.lower() for m in HTTP_METHODS}}
    assert routed - documented == set(), "routes missing from the OpenAPI document"
    assert documented - routed == set(), "documented operations with no route"
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert op.get("responses"), f"{method.upper()} {path} documents no responses"
            for name in (p["name"] for p in op.get("parameters", []) if p["in"] == "path"):
                assert "{" + name + "}" in path


def test_every_documented_route_but_health_needs_the_token(live_server):
    doc = requests.get(live_server.api("openapi.json"), headers=live_server.headers, timeout=10).json()
    checked = 0
    for path, ops in doc["paths"].items():
        url = live_server.base_url + re.sub(r"\{[^}]+\}", "1", path)
        for method in ops:
            r = requests.request(method.upper(), url, timeout=10)
            if path == "/api/v1/health":
                assert r.status_code == 200
            else:
                assert_json_error(r, 401, "unauthorized")
                checked += 1
    assert checked >= 20  # the whole API, not an empty document


def test_openapi_merge_refuses_undocumented_or_doubly_documented_blueprints():
    from flask import Blueprint

    app = Flask(__name__)
    app.register_blueprint(Blueprint("nodoc", "tests.e2e.no_such_module"))
    with pytest.raises(RuntimeError, match="OPENAPI_PATHS"):
        build_openapi(app)
    app = Flask(__name__)
    app.register_blueprint(Blueprint("health", "server.blueprints.health"))
    app.register_blueprint(Blueprint("again", "server.blueprints.health"))
    with pytest.raises(RuntimeError, match="documented twice"):
        build_openapi(app)


def test_rule_to_openapi_path():
    assert rule_to_openapi_path("/a/<int:step>/b/<path:model_id>/<x>") == "/a/{step}/b/{model_id}/{x}"


def test_every_error_kind_becomes_json():
    app = Flask(__name__)
    register_error_handlers(app)

    @app.get("/api-error")
    def api_error():
        raise ApiError(409, "busy", "it is busy")

    @app.get("/value-error")
    def value_error():
        raise ValueError("resolution must be a power of two")

    @app.get("/crash")
    def crash():
        raise KeyError("secret internal detail")

    client = app.test_client()
    assert_json_error(client.get("/api-error"), 409, "busy")
    assert client.get("/value-error").get_json()["error"] == {"code": "invalid_input", "message": "resolution must be a power of two"}
    r = client.get("/crash")
    assert_json_error(r, 500, "internal_error")
    assert "secret internal detail" not in r.get_data(as_text=True) and "Traceback" not in r.get_data(as_text=True)


def test_restart_keeps_the_token_and_recovers_interrupted_dataset_work(server_factory, tmp_path):
    data = tmp_path / "persist"
    first = server_factory(tmp_path, data_dir=data)
    token_file = data / "token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert len(first.token) >= 32
    from tests.e2e.conftest import stop_server

    assert stop_server(first.process) == 0  # SIGTERM is a clean stop
    log = first.log()
    assert first.token in log and str(data) in log and f"{first.base_url}/api/v1" in log and "Blender extension" in log
    # While stopped: a preparation the stop cut short, its half-extracted sources, a day-old upload temp file.
    import sqlite3

    with sqlite3.connect(data / "latent-studio.sqlite3") as conn:
        conn.execute("INSERT INTO datasets (id, name, state, progress, source_bytes, source_images, created_at, updated_at)"
                     " VALUES ('0123456789ab', 'cut', 'preparing', 0.4, 1, 1, 'x', 'x')")
    work = data / "datasets" / "0123456789ab" / "work" / "source"
    work.mkdir(parents=True)
    (work / "a.png").write_bytes(b"x")
    stale = data / "datasets" / ".uploads" / "upload-old.part"
    stale.parent.mkdir(exist_ok=True)
    stale.write_bytes(b"x")
    os.utime(stale, (0, 0))

    second = server_factory(tmp_path, data_dir=data, addon_build=True)
    assert second.token == first.token
    ds = requests.get(second.api("datasets/0123456789ab"), headers=second.headers, timeout=10).json()
    assert ds["state"] == "failed" and "interrupted" in ds["error"]
    assert not work.parent.exists() and not stale.exists()
    assert requests.get(second.api("datasets"), headers=first.headers, timeout=10).status_code == 200
    # With bpy installed, serve builds the Blender extension into the data dir and says where.
    built = sorted((data / "addon").glob("latent_studio-*.zip"))
    assert len(built) == 1 and f"Blender extension: {built[0]}" in second.log()


def serve_cli(*args, env=None, timeout=60):
    full_env = {k: v for k, v in os.environ.items() if k != "LATENT_STUDIO_TOKEN"}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "server.cli", "serve", *args], capture_output=True, text=True, timeout=timeout, env=full_env)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "example.com"])
def test_non_loopback_without_explicit_token_is_refused(tmp_path, host):
    data = tmp_path / "data"
    data.mkdir()
    (data / "token").write_text("a-saved-token-that-is-long-enough\n")  # a saved token is not enough
    proc = serve_cli("--host", host, "--port", "0", "--data-dir", str(data), "--no-addon-build")
    assert proc.returncode == 1
    assert "refusing to listen" in proc.stderr and "--token" in proc.stderr


def test_short_explicit_token_is_refused(tmp_path):
    proc = serve_cli("--host", "0.0.0.0", "--port", "0", "--data-dir", str(tmp_path / "d"), "--token", "short", "--no-addon-build")
    assert proc.returncode == 1 and "at least 16 characters" in proc.stderr


def test_non_loopback_with_env_token_serves_with_that_token(server_factory, tmp_path):
    chosen = "chosen-token-for-the-lan-0123456789"
    srv = server_factory(tmp_path, host="0.0.0.0", env={"LATENT_STUDIO_TOKEN": chosen})
    assert srv.token == chosen  # the token file holds the active token
    assert stat.S_IMODE((srv.data_dir / "token").stat().st_mode) == 0o600
    assert requests.get(srv.api("datasets"), headers={"Authorization": f"Bearer {chosen}"}, timeout=10).status_code == 200
    assert requests.get(srv.api("datasets"), headers={"Authorization": "Bearer " + chosen[:-1]}, timeout=10).status_code == 401


def test_port_in_use_is_a_clear_error(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        proc = serve_cli("--port", str(port), "--data-dir", str(tmp_path / "d"), "--device", "cpu", "--no-addon-build")
    assert proc.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr and "Traceback" not in proc.stderr


def test_unavailable_device_is_a_clear_error(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    proc = serve_cli("--port", "0", "--data-dir", str(tmp_path / "d"), "--device", "cuda:0", "--no-addon-build")
    assert proc.returncode == 1 and "CUDA is not available" in proc.stderr and "Traceback" not in proc.stderr


def test_loopback_detection():
    assert is_loopback("127.0.0.1") and is_loopback("127.0.0.5") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.1") and not is_loopback("my-host.local")


@pytest.mark.parametrize("bad", [{"max_upload_bytes": 0}, {"max_images": -1}, {"workers": 0}, {"max_compression_ratio": 1}, {"port": 70000}])
def test_config_refuses_nonsense(tmp_path, bad):
    with pytest.raises(ValueError):
        ServerConfig(data_dir=tmp_path, **bad)


def test_config_data_dir_default_follows_the_environment(tmp_path, monkeypatch):
    import argparse

    monkeypatch.setenv("LATENT_STUDIO_DATA", str(tmp_path / "from-env"))
    config = ServerConfig.from_args(argparse.Namespace(data_dir=None, host="127.0.0.1", port=None, token=None, workers=None))
    assert config.data_dir == (tmp_path / "from-env").resolve() and config.port == 7860 and config.workers == 1


def test_token_file_rules(tmp_path):
    from server.auth import TokenError, load_or_create_token

    path = tmp_path / "token"
    made = load_or_create_token(path)
    assert path.read_text().strip() == made and stat.S_IMODE(path.stat().st_mode) == 0o600
    os.chmod(path, 0o644)
    assert load_or_create_token(path) == made and stat.S_IMODE(path.stat().st_mode) == 0o600  # tightened again
    assert load_or_create_token(path, "explicit-token-0123456789") == "explicit-token-0123456789"
    assert path.read_text().strip() == "explicit-token-0123456789"
    path.write_text("short\n")
    with pytest.raises(TokenError):
        load_or_create_token(path)
