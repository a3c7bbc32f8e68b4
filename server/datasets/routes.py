"""HTTP routes for datasets: upload, list, show, delete, prepare, report, preview."""

from __future__ import annotations

import shutil
import sqlite3

from flask import Blueprint, jsonify, request, send_file

from ..errors import ApiError
from ..openapi import error_responses, json_response
from ..state import current_state
from . import store
from .params import PrepareParams
from .uploads import receive_dataset_upload

bp = Blueprint("datasets", __name__)


def dataset_json(row: dict) -> dict:
    base = f"/api/v1/datasets/{row['id']}"
    ready = row["state"] == "ready"
    info = row.get("info") or {}
    return {
        **{k: row[k] for k in ("id", "name", "state", "progress", "phase", "error", "source_bytes", "source_images", "params", "info", "created_at", "updated_at")},
        "image_count": info.get("count", info.get("accepted")) if ready else None,
        "resolution": info.get("resolution", (row.get("params") or {}).get("resolution")) if ready else None,
        "report_url": f"{base}/report" if ready else None,
        "preview_url": f"{base}/preview" if ready else None,
    }


def _load(dataset_id: str) -> dict:
    state = current_state()
    row = store.get_dataset(state.db, dataset_id) if store.is_valid_id(dataset_id) else None
    if row is None:
        raise ApiError(404, "dataset_not_found", f"no dataset with id {dataset_id!r}")
    return row


@bp.post("/api/v1/datasets")
def upload_dataset():
    row = receive_dataset_upload(current_state())
    return jsonify(dataset_json(row)), 201, {"Location": f"/api/v1/datasets/{row['id']}"}


@bp.get("/api/v1/datasets")
def list_datasets():
    return jsonify([dataset_json(r) for r in store.list_datasets(current_state().db)])


@bp.get("/api/v1/datasets/<dataset_id>")
def show_dataset(dataset_id: str):
    return jsonify(dataset_json(_load(dataset_id)))


def _refuse_if_used(state, dataset_id: str, action: str) -> None:
    from ..jobs.store import dataset_in_use  # the jobs package registers after datasets

    if dataset_in_use(state.db, dataset_id):
        raise ApiError(409, "dataset_in_use", f"a training job uses this dataset; cannot {action} it now")


@bp.delete("/api/v1/datasets/<dataset_id>")
def delete_dataset(dataset_id: str):
    state = current_state()
    row = _load(dataset_id)
    if row["state"] == "preparing":
        raise ApiError(409, "dataset_busy", "the dataset is being prepared; wait for it to finish")
    _refuse_if_used(state, dataset_id, "delete")
    try:
        deleted = store.delete_dataset_row(state.db, dataset_id, unless_preparing=True)
    except sqlite3.IntegrityError as exc:  # a foreign key from a job row refuses the delete
        raise ApiError(409, "dataset_in_use", "a training job refers to this dataset") from exc
    if not deleted:  # a prepare started between the check above and the delete
        raise ApiError(409, "dataset_busy", "the dataset is being prepared; wait for it to finish")
    shutil.rmtree(store.dataset_dir(state, dataset_id), ignore_errors=True)
    return "", 204


@bp.post("/api/v1/datasets/<dataset_id>/prepare")
def prepare_dataset(dataset_id: str):
    state = current_state()
    _load(dataset_id)
    body = request.get_json(silent=True) if request.content_length else {}
    if body is None:
        raise ApiError(400, "invalid_json", "the body must be a JSON object")
    params = PrepareParams.from_json(body)
    _refuse_if_used(state, dataset_id, "re-prepare")
    if not store.begin_preparation(state.db, dataset_id, params.to_json()):
        raise ApiError(409, "dataset_busy", "the dataset is already being prepared")
    state.preparations.start(dataset_id, params)
    return jsonify(dataset_json(store.get_dataset(state.db, dataset_id))), 202


def _dataset_file(dataset_id: str, filename: str, mimetype: str, what: str):
    row = _load(dataset_id)
    path = store.dataset_dir(current_state(), dataset_id) / filename
    if not path.is_file():
        if row["state"] != "ready":
            raise ApiError(409, "dataset_not_ready", f"the dataset is {row['state']}; the {what} exists once it is prepared")
        raise ApiError(404, "file_missing", f"the {what} of this dataset is missing on the server")
    return send_file(path, mimetype=mimetype, max_age=0)


@bp.get("/api/v1/datasets/<dataset_id>/report")
def dataset_report(dataset_id: str):
    return _dataset_file(dataset_id, store.REPORT_JSON, "application/json", "report")


@bp.get("/api/v1/datasets/<dataset_id>/preview")
def dataset_preview(dataset_id: str):
    return _dataset_file(dataset_id, store.PREVIEW_PNG, "image/png", "preview")


# --- OpenAPI ---------------------------------------------------------------------------

_DATASET = {
    "type": "object",
    "required": ["id", "name", "state", "progress"],
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "state": {"type": "string", "enum": list(store.STATES)},
        "progress": {"type": "number", "minimum": 0, "maximum": 1},
        "phase": {"type": ["string", "null"]},
        "error": {"type": ["string", "null"]},
        "source_bytes": {"type": "integer"},
        "source_images": {"type": "integer"},
        "image_count": {"type": ["integer", "null"]},
        "resolution": {"type": ["integer", "null"]},
        "params": {"type": ["object", "null"]},
        "report_url": {"type": ["string", "null"]},
        "preview_url": {"type": ["string", "null"]},
    },
}
_ID = [{"name": "dataset_id", "in": "path", "required": True, "schema": {"type": "string"}}]

OPENAPI_PATHS = {
    "/api/v1/datasets": {
        "post": {
            "summary": "Upload a zip of images (raw body with ?name=, or multipart field 'file')",
            "parameters": [{"name": "name", "in": "query", "required": False, "schema": {"type": "string"}}],
            "requestBody": {"required": True, "content": {
                "application/zip": {"schema": {"type": "string", "format": "binary"}},
                "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
                    "file": {"type": "string", "format": "binary"}, "name": {"type": "string"}}}},
            }},
            "responses": {"201": json_response("The registered dataset", _DATASET), **error_responses(400, 401, 413, 415, 422)},
        },
        "get": {"summary": "List datasets", "responses": {"200": json_response("Datasets, newest first", {"type": "array", "items": _DATASET}), **error_responses(401)}},
    },
    "/api/v1/datasets/{dataset_id}": {
        "get": {"summary": "One dataset", "parameters": _ID, "responses": {"200": json_response("The dataset", _DATASET), **error_responses(401, 404)}},
        "delete": {"summary": "Delete a dataset and its files", "parameters": _ID, "responses": {"204": {"description": "Deleted"}, **error_responses(401, 404, 409)}},
    },
    "/api/v1/datasets/{dataset_id}/prepare": {
        "post": {
            "summary": "Build the training zip in the background",
            "parameters": _ID,
            "requestBody": {"required": False, "content": {"application/json": {"schema": {"type": "object", "properties": {
                "resolution": {"type": "integer", "default": 256},
                "crop": {"type": "string", "enum": ["center", "none", "random", "stretch"], "default": "center"},
                "background": {"type": "string", "default": "#000000"},
                "inflate": {"type": "array", "items": {"type": "string"}},
                "allow_upscale": {"type": "boolean", "default": False},
                "labels_from_folders": {"type": "boolean", "default": False},
            }, "additionalProperties": False}}}},
            "responses": {"202": json_response("Preparation started", _DATASET), **error_responses(400, 401, 404, 409, 422)},
        }
    },
    "/api/v1/datasets/{dataset_id}/report": {
        "get": {"summary": "report.json of the prepared dataset", "parameters": _ID,
                "responses": {"200": json_response("Accepted count, rejected files with reasons"), **error_responses(401, 404, 409)}},
    },
    "/api/v1/datasets/{dataset_id}/preview": {
        "get": {"summary": "Contact sheet of the prepared dataset", "parameters": _ID,
                "responses": {"200": {"description": "PNG", "content": {"image/png": {}}}, **error_responses(401, 404, 409)}},
    },
}
