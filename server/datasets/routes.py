"""HTTP routes for datasets: upload, list, show, delete, prepare, report, preview."""

from __future__ import annotations

import logging
import shutil
import sqlite3

from flask import Blueprint, Flask, jsonify, send_file

from gan_core.data import check_build_options
from gan_core.data.build import parse_inflate
from server.config import API_PREFIX
from server.datasets import store
from server.datasets.prepare import PreparationRunner, recover_after_restart
from server.datasets.schemas import DatasetOut, PrepareRequest
from server.datasets.uploads import receive_dataset_upload
from server.errors import ApiError, public_text
from server.jobs.store import dataset_in_use
from server.openapi import doc
from server.responses import no_content
from server.state import ServerState, current_state
from server.timestamps import iso_utc
from server.validation import json_body, parse, rule_check

bp = Blueprint("datasets", __name__, url_prefix=API_PREFIX)
log = logging.getLogger(__name__)

UPLOAD_BODY = {
    "application/zip": {"schema": {"type": "string", "format": "binary"}},
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary"}, "name": {"type": "string"}}}},
}
NAME_QUERY = {"name": "name", "schema": {"type": "string"}, "description": "the dataset's name (raw zip uploads)"}


def dataset_json(row: dict) -> dict:
    base = f"{API_PREFIX}/datasets/{row['id']}"
    ready = row["state"] == "ready"
    info = row.get("info") or {}
    return {
        **{k: row[k] for k in ("id", "name", "state", "progress", "phase", "source_bytes", "source_images", "params", "info")},
        "error": public_text(row["error"]),
        "created_at": iso_utc(row["created_at"]),
        "updated_at": iso_utc(row["updated_at"]),
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


@bp.post("/datasets")
@doc("Upload a zip of images (raw body with ?name=, or multipart field 'file')", body=UPLOAD_BODY, query=(NAME_QUERY,),
     ok={201: ("The registered dataset", DatasetOut)}, errors=(400, 401, 413, 415, 422, 507))
def upload_dataset():
    row = receive_dataset_upload(current_state())
    return jsonify(dataset_json(row)), 201, {"Location": f"{API_PREFIX}/datasets/{row['id']}"}


@bp.get("/datasets")
@doc("List datasets", ok={200: ("Datasets, newest first", [DatasetOut])}, errors=(401,))
def list_datasets():
    return jsonify([dataset_json(r) for r in store.list_datasets(current_state().db)])


@bp.get("/datasets/<dataset_id>")
@doc("One dataset", ok={200: ("The dataset", DatasetOut)}, errors=(401, 404))
def show_dataset(dataset_id: str):
    return jsonify(dataset_json(_load(dataset_id)))


def _refuse_if_used(state: ServerState, dataset_id: str, action: str) -> None:
    if dataset_in_use(state.db, dataset_id):
        raise ApiError(409, "dataset_in_use", f"a training job uses this dataset; cannot {action} it now")


@bp.delete("/datasets/<dataset_id>")
@doc("Delete a dataset and its files", ok={204: ("Deleted", None)}, errors=(401, 404, 409))
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
    return no_content()


@bp.post("/datasets/<dataset_id>/prepare")
@doc("Build the training zip in the background (state 'preparing'; phase 'queued' until one of the "
     "server's --max-preparations slots is free)", body=PrepareRequest, body_required=False,
     ok={202: ("Preparation queued", DatasetOut)}, errors=(400, 401, 404, 409, 422))
def prepare_dataset(dataset_id: str):
    state = current_state()
    _load(dataset_id)
    body = parse(PrepareRequest, json_body(optional=True))
    # The builder's own checks, now rather than seconds later in the background process.
    rule_check(check_build_options, **body.build_options())
    params = {**body.model_dump(), "inflate": list(parse_inflate(body.inflate))}  # aliases -> the builder's names
    _refuse_if_used(state, dataset_id, "re-prepare")
    try:
        queued = store.begin_preparation(state.db, dataset_id, params)
    except sqlite3.IntegrityError as exc:  # the database refuses: a job started using it meanwhile
        raise ApiError(409, "dataset_in_use", "a training job uses this dataset; cannot re-prepare it now") from exc
    if not queued:
        raise ApiError(409, "dataset_busy", "the dataset is already being prepared")
    state.preparations.wake()
    return jsonify(dataset_json(store.get_dataset(state.db, dataset_id))), 202


def _dataset_file(dataset_id: str, filename: str, mimetype: str, what: str):
    row = _load(dataset_id)
    path = store.dataset_dir(current_state(), dataset_id) / filename
    if not path.is_file():
        if row["state"] != "ready":
            raise ApiError(409, "dataset_not_ready", f"the dataset is {row['state']}; the {what} exists once it is prepared")
        raise ApiError(404, "file_not_found", f"the {what} of this dataset is missing on the server")
    return send_file(path, mimetype=mimetype, max_age=0)


@bp.get("/datasets/<dataset_id>/report")
@doc("report.json of the prepared dataset", ok={200: ("Accepted count, rejected files with reasons", {"type": "object"})},
     errors=(401, 404, 409))
def dataset_report(dataset_id: str):
    return _dataset_file(dataset_id, store.REPORT_JSON, "application/json", "report")


@bp.get("/datasets/<dataset_id>/preview")
@doc("Contact sheet of the prepared dataset", ok={200: ("PNG", "image/png")}, errors=(401, 404, 409))
def dataset_preview(dataset_id: str):
    return _dataset_file(dataset_id, store.PREVIEW_PNG, "image/png", "preview")


def init_app(app: Flask, state: ServerState) -> None:
    store.init_schema(state.db)
    if state.owns_data_dir:  # another server on this folder may be preparing right now
        interrupted = recover_after_restart(state)
        if interrupted:
            log.warning("%d dataset preparation(s) were interrupted by the last stop and are marked failed", interrupted)
    state.preparations = PreparationRunner(state)
    if state.owns_data_dir:  # like the job queue: one dispatcher per data directory
        state.preparations.start_dispatching()
    app.register_blueprint(bp)
