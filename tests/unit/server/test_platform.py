"""The server platform in-process: health, auth, JSON errors, the OpenAPI document, settings,
the token file, timestamps. (Serving, signals and restarts: tests/e2e/test_platform.py.)"""

from __future__ import annotations

import argparse
import os
import re
import stat

import pytest
from flask import Blueprint, Flask

from server.auth import TokenError, load_or_create_token
from server.cli.serve import is_loopback
from server.config import ServerConfig
from server.errors import ApiError, register_error_handlers
from server.openapi import build_openapi, doc, rule_to_openapi_path
from server.timestamps import iso_utc, now_iso
from tests.support.http import assert_json_error

HTTP_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def test_health_needs_no_token_and_reports_the_device(api):
    r = api.app.test_client().get("/api/v1/health")
    assert r.status_code == 200
    body = r.get_json()
    assert body["status"] == "ok" and body["version"] and body["device"] == "cpu" and body["device_name"] == "CPU"


@pytest.mark.parametrize("header", [None, "Bearer ", "Bearer wrong-token-0123456789", "Basic dXNlcjpwYXNz", "token-without-scheme"])
@pytest.mark.parametrize("path", ["datasets", "models", "openapi.json", "jobs", "no-such-route"])
def test_missing_or_wrong_token_is_401_json(api, header, path):
    headers = {"Authorization": header} if header is not None else {}
    r = api.app.test_client().get(f"/api/v1/{path}", headers=headers)
    assert_json_error(r, 401, "unauthorized", "token")
    assert r.headers["WWW-Authenticate"].startswith("Bearer")


def test_right_token_is_accepted(make_api):
    r = make_api().get("datasets")
    assert r.status_code == 200 and r.get_json() == []


@pytest.mark.parametrize("method, path, status, code", [
    ("get", "/api/v1/no-such-thing", 404, "not_found"),
    ("get", "/", 404, "not_found"),
    ("delete", "/api/v1/openapi.json", 405, "method_not_allowed"),
])
def test_unknown_route_and_wrong_method_are_json(api, method, path, status, code):
    r = getattr(api.client, method)(path)
    assert_json_error(r, status, code)
    if status == 405:
        assert "GET" in r.headers["Allow"]


def test_openapi_document(api):
    r = api.get("openapi.json")
    assert r.status_code == 200
    doc_ = r.get_json()
    assert doc_["openapi"].startswith("3.") and doc_["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    for path in ("/api/v1/health", "/api/v1/datasets", "/api/v1/datasets/{dataset_id}/prepare", "/api/v1/models",
                 "/api/v1/jobs", "/api/v1/generate", "/api/v1/walks"):
        assert path in doc_["paths"], path
    assert doc_["paths"]["/api/v1/health"]["get"]["security"] == []


def test_openapi_request_schemas_carry_the_rulebook(api):
    from gan_core import rules

    schemas = api.get("openapi.json").get_json()["components"]["schemas"]
    jobs = schemas["JobCreate"]["properties"]
    assert jobs["augmentation"]["enum"] == list(rules.AUG_MODES) and jobs["preset"]["enum"] == list(rules.PRESET_CHOICES)
    assert jobs["batch"]["maximum"] == rules.MAX_TRAIN_BATCH and schemas["JobCreate"]["additionalProperties"] is False
    prepare = schemas["PrepareRequest"]["properties"]
    assert prepare["crop"]["enum"] == list(rules.CROP_MODES)
    assert (prepare["resolution"]["minimum"], prepare["resolution"]["maximum"]) == (rules.DATASET_MIN_RESOLUTION, rules.DATASET_MAX_RESOLUTION)
    generate = schemas["GenerateRequest"]["properties"]
    assert generate["noise_mode"]["enum"] == list(rules.NOISE_MODES)
    assert (generate["psi"]["minimum"], generate["psi"]["maximum"]) == (rules.PSI_MIN, rules.PSI_MAX)
    walk = schemas["WalkRequest"]["properties"]
    assert walk["easing"]["enum"] == list(rules.EASINGS) and walk["interpolation"]["enum"] == list(rules.INTERPOLATIONS)
    assert "JobOut" in schemas and "WalkOut" in schemas and "DatasetOut" in schemas


def test_openapi_document_and_url_map_agree_both_ways(api):
    app = api.app
    routed = {
        (rule_to_openapi_path(rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        for method in rule.methods & HTTP_METHODS
    }
    document = build_openapi(app)
    documented = {(path, method) for path, ops in document["paths"].items() for method in ops}
    assert routed == documented
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            assert op.get("responses"), f"{method.upper()} {path} documents no responses"
            for name in (p["name"] for p in op.get("parameters", []) if p["in"] == "path"):
                assert "{" + name + "}" in path


def test_every_documented_route_but_health_needs_the_token(api):
    anonymous = api.app.test_client()
    checked = 0
    for path, ops in build_openapi(api.app)["paths"].items():
        url = re.sub(r"\{[^}]+\}", "1", path)
        for method in ops:
            r = anonymous.open(url, method=method.upper())
            if path == "/api/v1/health":
                assert r.status_code == 200
            else:
                assert_json_error(r, 401, "unauthorized")
                checked += 1
    assert checked >= 20  # the whole API, not an empty document


def test_a_route_without_a_description_stops_the_document():
    app = Flask(__name__, static_folder=None)
    bp = Blueprint("nodoc", __name__)
    bp.add_url_rule("/x", "x", lambda: "")
    app.register_blueprint(bp)
    with pytest.raises(RuntimeError, match="no OpenAPI description"):
        build_openapi(app)
    described = Flask(__name__, static_folder=None)
    described.add_url_rule("/y", "y", doc("y", ok={200: ("fine", None)})(lambda: ""))
    assert set(build_openapi(described)["paths"]) == {"/y"}


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


def test_body_over_the_app_limit_is_413_json(make_api):
    api = make_api(max_upload_bytes=1000)
    r = api.post("jobs", data=b"{" + b" " * (2 << 20) + b"}", content_type="application/json")
    assert_json_error(r, 413, "payload_too_large")


def test_loopback_detection():
    assert is_loopback("127.0.0.1") and is_loopback("127.0.0.5") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.1") and not is_loopback("my-host.local")


@pytest.mark.parametrize("bad", [{"max_upload_bytes": 0}, {"max_images": -1}, {"workers": 0}, {"max_compression_ratio": 1}, {"port": 70000},
                                 {"max_preparations": 0}, {"generate_queue": 0}, {"walk_queue": -1}])
def test_config_refuses_nonsense(tmp_path, bad):
    with pytest.raises(ValueError):
        ServerConfig(data_dir=tmp_path, **bad)


def test_config_data_dir_default_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("LATENT_STUDIO_DATA", str(tmp_path / "from-env"))
    config = ServerConfig.from_args(argparse.Namespace(data_dir=None, host="127.0.0.1", port=None, token=None, workers=None))
    assert config.data_dir == (tmp_path / "from-env").resolve() and config.port == 7860 and config.workers == 1


def test_token_file_rules(tmp_path):
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


@pytest.mark.parametrize("stored, shown", [
    (0, "1970-01-01T00:00:00Z"),
    (1796188161.75, "2026-12-02T05:09:21Z"),
    ("2026-12-02T05:09:21+00:00", "2026-12-02T05:09:21Z"),
    ("2026-12-02T06:09:21+01:00", "2026-12-02T05:09:21Z"),
    ("2026-12-02T05:09:21Z", "2026-12-02T05:09:21Z"),
    (None, None),
])
def test_one_timestamp_format(stored, shown):
    assert iso_utc(stored) == shown
    assert ISO_UTC.match(now_iso())


def test_file_lock_is_exclusive_and_released(tmp_path):
    from server.filelock import FileLock

    first, second = FileLock(tmp_path / "x.lock"), FileLock(tmp_path / "x.lock")
    assert first.try_acquire() and not second.try_acquire()
    assert not second.acquire(timeout=0.3)
    first.release()
    assert second.acquire(timeout=1)
    second.release()


def test_the_second_app_on_a_data_dir_does_not_run_the_queue(api):
    # The test process holds the data directory's lock (see conftest): this app serves only.
    assert api.state.owns_data_dir is False and api.state.scheduler is not None
    assert api.state.model_cache is not None and api.state.walk_runner is not None and api.state.preparations is not None
