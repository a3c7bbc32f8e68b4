"""HTTP routes for base models: GET /models, GET /models/{id}/thumbnail, POST /models/rescan.

Three sources: "scratch" (train from nothing), checkpoints and imported pickles in
data_dir/models (gan_core.models.library), and snapshots of finished jobs (jobs store).
GET lists without importing (fast; new pickles appear under "pending"); POST /models/rescan
imports them, and so does a background scan when the server starts.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from flask import Blueprint, jsonify, send_file

from ..errors import ApiError
from ..openapi import error_responses, json_response
from ..state import ServerState, current_state

bp = Blueprint("models", __name__)
log = logging.getLogger(__name__)

SCRATCH = {"id": "scratch", "name": "From scratch", "kind": "scratch", "resolution": None, "thumbnail_path": None}
# Internal fields: local paths stay on the server, clients get URLs.
PRIVATE_FIELDS = ("thumbnail_path", "thumbnail", "path")


def scan_library(state: ServerState, import_pickles: bool) -> dict:
    """data_dir/models as {"models", "refused", "pending"}; entries carry `thumbnail_path`."""
    from gan_core.models.library import scan_model_library

    result = scan_model_library(state.config.models_dir, import_pickles=import_pickles)
    models = [{**m, "thumbnail_path": m.get("thumbnail")} for m in result.get("models", [])]
    return {"models": models, "refused": list(result.get("refused", [])), "pending": list(result.get("pending", []))}


def import_in_background(state: ServerState) -> threading.Thread:
    """At start-up: import pickles dropped into the models folder while the server was off."""
    def run():
        try:
            scan_library(state, import_pickles=True)
        except Exception:  # never take the server down over the library
            log.exception("background scan of %s failed", state.config.models_dir)

    thread = threading.Thread(target=run, name="model-library-import", daemon=True)
    thread.start()
    return thread


def all_models(state: ServerState, import_pickles: bool = False) -> tuple[list[dict], dict]:
    from ..jobs.store import list_job_models

    scanned = scan_library(state, import_pickles)
    return [dict(SCRATCH), *scanned["models"], *list_job_models(state)], scanned


def model_json(entry: dict) -> dict:
    public = {k: v for k, v in entry.items() if k not in PRIVATE_FIELDS and not isinstance(v, Path)}
    public.setdefault("resolution", None)
    thumb = entry.get("thumbnail_path")
    public["thumbnail_url"] = f"/api/v1/models/{entry['id']}/thumbnail" if thumb and Path(thumb).is_file() else None
    return public


def _listing(import_pickles: bool):
    models, scanned = all_models(current_state(), import_pickles)
    return jsonify({
        "models": [model_json(m) for m in models],
        "refused": [{"file": str(r.get("file")), "reason": str(r.get("reason"))} for r in scanned["refused"]],
        "pending": [{"file": str(p.get("file"))} for p in scanned["pending"]],
    })


@bp.get("/api/v1/models")
def list_models():
    return _listing(import_pickles=False)  # fast: new pickles show under "pending"


@bp.post("/api/v1/models/rescan")
def rescan_models():
    return _listing(import_pickles=True)  # imports pending pickles (may take a while)


@bp.get("/api/v1/models/<path:model_id>/thumbnail")
def model_thumbnail(model_id: str):
    models, _ = all_models(current_state())
    entry = next((m for m in models if m["id"] == model_id), None)
    if entry is None:
        raise ApiError(404, "model_not_found", f"no model with id {model_id!r}")
    thumb = entry.get("thumbnail_path")
    if not thumb or not Path(thumb).is_file():
        raise ApiError(404, "no_thumbnail", f"model {model_id!r} has no thumbnail")
    return send_file(Path(thumb), mimetype="image/png", max_age=0)


_MODEL = {
    "type": "object",
    "required": ["id", "name", "kind", "resolution", "thumbnail_url"],
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "kind": {"type": "string", "enum": ["scratch", "checkpoint", "imported", "job"]},
        "resolution": {"type": ["integer", "null"]},
        "thumbnail_url": {"type": ["string", "null"]},
    },
}
_LISTING = {
    "type": "object",
    "properties": {
        "models": {"type": "array", "items": _MODEL},
        "refused": {"type": "array", "items": {"type": "object", "properties": {"file": {"type": "string"}, "reason": {"type": "string"}}}},
        "pending": {"type": "array", "items": {"type": "object", "properties": {"file": {"type": "string"}}}},
    },
}

OPENAPI_PATHS = {
    "/api/v1/models": {
        "get": {"summary": "Base models a job can start from, plus files in the models folder that were refused",
                "responses": {"200": json_response("Models and refused files", _LISTING), **error_responses(401)}},
    },
    "/api/v1/models/rescan": {
        "post": {"summary": "Scan the models folder again (imports new .pkl files)",
                 "responses": {"200": json_response("Models and refused files", _LISTING), **error_responses(401)}},
    },
    "/api/v1/models/{model_id}/thumbnail": {
        "get": {"summary": "Thumbnail grid of a model",
                "parameters": [{"name": "model_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "PNG", "content": {"image/png": {}}}, **error_responses(401, 404)}},
    },
}
