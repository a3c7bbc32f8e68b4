"""HTTP routes for training jobs (create, list, status, cancel, resume, snapshots)."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, jsonify, request, send_file

from server.errors import ApiError, error_response
from server.openapi import error_responses, json_response
from server.state import current_state

from . import states, store

bp = Blueprint("jobs", __name__, url_prefix="/api/v1")

AUGMENTATIONS = ("ada", "fixed", "off")
PRESETS = ("auto", "tiny", "small", "stylegan2")
MAX_BATCH = 256
JOB_FIELDS = {"title", "dataset_id", "base_model", "resolution", "steps", "batch", "mirror",
              "augmentation", "snapshot_every", "preset", "seed"}


# -- validation helpers ---------------------------------------------------------------
def _body() -> dict:
    data = request.get_json(silent=True)
    if data is None and request.content_length:
        raise ApiError(400, "bad_request", "the body must be JSON (Content-Type: application/json)")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ApiError(400, "bad_request", "the JSON body must be an object")
    return data


def _int(data: dict, key: str, default, lo: int, hi: int) -> int:
    value = data.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ApiError(422, "invalid_input", f"{key} must be a whole number, got {value!r}")
    if not lo <= value <= hi:
        raise ApiError(422, "invalid_input", f"{key} must be between {lo} and {hi}, got {value}")
    return value


def _choice(data: dict, key: str, default, choices) -> str:
    value = data.get(key, default)
    if value not in choices:
        raise ApiError(422, "invalid_input", f"{key} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _bool(data: dict, key: str, default: bool) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise ApiError(422, "invalid_input", f"{key} must be true or false, got {value!r}")
    return value


def _ready_dataset(state, dataset_id, resuming: bool = False) -> dict:
    from server.datasets.store import get_dataset

    if not isinstance(dataset_id, str) or not dataset_id:
        raise ApiError(422, "invalid_input", "dataset_id is required (an id from GET /api/v1/datasets)")
    dataset = get_dataset(state.db, dataset_id)
    if dataset is None and resuming:  # the job is fine; its data is gone
        raise ApiError(409, "dataset_gone", f"this job's dataset {dataset_id} was deleted; it cannot train further")
    if dataset is None:
        raise ApiError(422, "unknown_dataset", f"no dataset with id {dataset_id!r}")
    if dataset["state"] != "ready":
        raise ApiError(409, "dataset_not_ready",
                       f"dataset {dataset_id} is '{dataset['state']}': prepare it before training on it")
    return dataset


def _base_model_path(state, base_model: str) -> str | None:
    if base_model == "scratch":
        return None
    from server.generation.resolve import resolve_model

    try:
        path, _ = resolve_model(state, {"model_id": base_model})
    except ApiError as exc:  # a bad reference in a body is invalid input, not a missing URL
        raise ApiError(422, "unknown_base_model", f"base_model: {exc.message}") from None
    return str(path)


def _get_job_or_404(job_id: int) -> dict:
    job = store.get_job(current_state().db, job_id)
    if job is None:
        raise ApiError(404, "job_not_found", f"no job with id {job_id}")
    return job


def job_json(job: dict) -> dict:
    p = job["params"]
    base = f"/api/v1/jobs/{job['id']}"
    return {
        "id": job["id"], "title": job["title"], "state": job["state"],
        "dataset_id": job["dataset_id"], "base_model": job["base_model"],
        "resolution": p.get("resolution"), "steps": job["steps"], "step": job["step"],
        "batch": p.get("batch"), "mirror": p.get("mirror"), "augmentation": p.get("augmentation"),
        "snapshot_every": p.get("snapshot_every"), "preset": p.get("preset"),
        "kimg": job["kimg"], "losses": job["losses"] or {}, "ada_p": job["ada_p"],
        "sec_per_kimg": job["sec_per_kimg"], "eta_s": job["eta_s"],
        "latest_grid_url": f"{base}/grid.png" if job["latest_grid"] else None,
        "snapshots_url": f"{base}/snapshots",
        "error": job["error"], "attempt": job["attempt"], "pid": job["pid"], "heartbeat": job["heartbeat"],
        "created_at": job["created_at"], "updated_at": job["updated_at"],
        "started_at": job["started_at"], "finished_at": job["finished_at"],
    }


def _wake_scheduler(state) -> None:
    sched = getattr(state, "scheduler", None)
    if sched is not None:
        sched.wake()


@bp.errorhandler(states.IllegalTransition)
def _illegal(exc: states.IllegalTransition):
    # Any transition refused by the state machine (e.g. lost a race with the scheduler).
    err = states.to_api_error(exc)
    return error_response(err.status, err.code, err.message)


# -- routes ---------------------------------------------------------------------------
@bp.post("/jobs")
def create_job():
    state = current_state()
    data = _body()
    unknown = set(data) - JOB_FIELDS
    if unknown:
        raise ApiError(422, "invalid_input", f"unknown fields: {', '.join(sorted(unknown))}")
    title = data.get("title", "untitled")
    if not isinstance(title, str) or not title.strip() or len(title) > 200:
        raise ApiError(422, "invalid_input", "title must be a non-empty string of at most 200 characters")
    max_steps = int(state.config.max_steps)
    steps = _int(data, "steps", min(5000, max_steps), 1, max_steps)
    params = {
        "resolution": data.get("resolution"),
        "batch": _int(data, "batch", 16, 1, MAX_BATCH),
        "mirror": _bool(data, "mirror", False),
        "augmentation": _choice(data, "augmentation", "ada", AUGMENTATIONS),
        "snapshot_every": _int(data, "snapshot_every", min(500, steps), 1, max(steps, 1)),
        "preset": _choice(data, "preset", "auto", PRESETS),
        "seed": _int(data, "seed", 0, 0, 2**31 - 1),
    }
    res = params["resolution"]
    if res is not None and (not isinstance(res, int) or isinstance(res, bool) or res < 4 or res > 4096 or res & (res - 1)):
        raise ApiError(422, "invalid_input", f"resolution must be a power of two between 4 and 4096, got {res!r}")
    base_model = data.get("base_model", "scratch")
    if not isinstance(base_model, str) or not base_model:
        raise ApiError(422, "invalid_input", "base_model must be 'scratch' or a model id from GET /api/v1/models")
    dataset = _ready_dataset(state, data.get("dataset_id"))
    data_res = (dataset.get("info") or {}).get("resolution")
    if res is not None and data_res and int(data_res) != res:
        raise ApiError(422, "invalid_input", f"resolution {res} does not match the dataset's {data_res}; prepare it at {res}")
    params["data"] = str(_dataset_zip(state, dataset["id"]))
    params["base"] = _base_model_path(state, base_model)
    job = store.insert_job(
        state.db, title=title.strip(), dataset_id=dataset["id"], base_model=base_model, params=params,
        steps=steps, run_dir_for=lambda job_id: store.run_dir_for(state.config.data_dir, job_id),
    )
    _wake_scheduler(state)
    return jsonify(job_json(job)), 201


def _dataset_zip(state, dataset_id: str) -> Path:
    from server.datasets.store import dataset_zip_path

    path = dataset_zip_path(state, dataset_id)
    if not Path(path).exists():
        raise ApiError(409, "dataset_not_ready", f"dataset {dataset_id} has no prepared zip; prepare it again")
    return Path(path)


@bp.get("/jobs")
def list_jobs():
    return jsonify({"jobs": [job_json(j) for j in store.list_jobs(current_state().db)]})


@bp.get("/jobs/<int:job_id>")
def get_job(job_id: int):
    body = job_json(_get_job_or_404(job_id))
    # The audit trail shows what happened across restarts (e.g. interrupted -> queued).
    body["history"] = store.transitions(current_state().db, job_id)
    return jsonify(body)


@bp.post("/jobs/<int:job_id>/cancel")
def cancel_job(job_id: int):
    state = current_state()
    job = _get_job_or_404(job_id)
    # A queued job has no worker: it is cancelled at once. A running one is asked to
    # stop; its worker takes a final snapshot and the scheduler records 'cancelled'.
    target = states.CANCELLED if job["state"] == states.QUEUED else states.CANCELLING
    try:
        job = store.transition(state.db, job_id, target, "cancel requested",
                               expect=frozenset({states.QUEUED, states.RUNNING}))
    except states.IllegalTransition as exc:
        raise states.to_api_error(exc) from None
    return jsonify(job_json(job)), 202 if target == states.CANCELLING else 200


@bp.post("/jobs/<int:job_id>/resume")
def resume_job(job_id: int):
    state = current_state()
    job = _get_job_or_404(job_id)
    data = _body()
    unknown = set(data) - {"steps"}
    if unknown:
        raise ApiError(422, "invalid_input", f"unknown fields: {', '.join(sorted(unknown))}")
    if job["state"] not in states.RESUMABLE_STATES:
        raise states.to_api_error(states.IllegalTransition(job["state"], states.QUEUED))
    steps = _int(data, "steps", job["steps"], 1, int(state.config.max_steps))
    if steps <= job["step"]:
        raise ApiError(422, "invalid_input",
                       f"steps is the new total and must exceed the {job['step']} steps already trained")
    _ready_dataset(state, job["dataset_id"], resuming=True)  # it may have been deleted meanwhile
    _dataset_zip(state, job["dataset_id"])
    try:
        job = store.transition(state.db, job_id, states.QUEUED, f"resume requested to {steps} steps",
                               expect=states.RESUMABLE_STATES, steps=steps, error=None)
    except states.IllegalTransition as exc:
        raise states.to_api_error(exc) from None
    _wake_scheduler(state)
    return jsonify(job_json(job)), 202


def _snapshot_or_404(job: dict, step: int | None) -> dict:
    snap = store.snapshot_for(job, step)
    if snap is None:
        which = f"at step {step}" if step is not None else "yet"
        raise ApiError(404, "snapshot_not_found", f"job {job['id']} has no snapshot {which}")
    return snap


def _send(path, mimetype: str, download_name: str | None = None):
    if path is None or not Path(path).exists():
        raise ApiError(404, "file_not_found", "the file for this snapshot is missing")
    return send_file(Path(path), mimetype=mimetype, as_attachment=download_name is not None,
                     download_name=download_name, max_age=0)


@bp.get("/jobs/<int:job_id>/snapshots")
def list_snapshots(job_id: int):
    job = _get_job_or_404(job_id)
    base = f"/api/v1/jobs/{job_id}/snapshots"
    return jsonify({"snapshots": [
        {"step": s["step"], "kimg": s["kimg"], "grid_url": f"{base}/{s['step']}/grid.png",
         "download_url": f"{base}/{s['step']}/network.safetensors",
         "model_id": f"job:{job_id}:{s['step']}"}
        for s in store.job_snapshots(job["run_dir"])
    ]})


@bp.get("/jobs/<int:job_id>/snapshots/<int:step>/grid.png")
def snapshot_grid(job_id: int, step: int):
    snap = _snapshot_or_404(_get_job_or_404(job_id), step)
    return _send(snap["grid"], "image/png")


@bp.get("/jobs/<int:job_id>/snapshots/<int:step>/network.safetensors")
def snapshot_network(job_id: int, step: int):
    snap = _snapshot_or_404(_get_job_or_404(job_id), step)
    return _send(snap["network"], "application/octet-stream", f"job{job_id}-network-{step:06d}.safetensors")


@bp.get("/jobs/<int:job_id>/grid.png")
def latest_grid(job_id: int):
    job = _get_job_or_404(job_id)
    snap = store.snapshot_for(job, None)
    path = snap["grid"] if snap else job["latest_grid"]
    if not path:
        raise ApiError(404, "snapshot_not_found", f"job {job_id} has no sample grid yet")
    return _send(path, "image/png")


# -- OpenAPI ------------------------------------------------------------------------------
_JOB = {"type": "object", "properties": {k: {} for k in (
    "id", "title", "state", "step", "steps", "kimg", "losses", "ada_p", "sec_per_kimg", "eta_s",
    "latest_grid_url", "error")}}
_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "integer"}}
_STEP = {"name": "step", "in": "path", "required": True, "schema": {"type": "integer"}}
_PNG = {"description": "PNG image", "content": {"image/png": {}}}

OPENAPI_PATHS = {
    "/api/v1/jobs": {
        "post": {
            "summary": "Create a training job (queued; starts when a worker slot is free)",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["dataset_id"], "properties": {
                    "title": {"type": "string"}, "dataset_id": {"type": "string"},
                    "base_model": {"type": "string", "description": "'scratch' or an id from GET /models"},
                    "resolution": {"type": "integer"}, "steps": {"type": "integer"},
                    "batch": {"type": "integer"}, "mirror": {"type": "boolean"},
                    "augmentation": {"enum": list(AUGMENTATIONS)}, "snapshot_every": {"type": "integer"},
                    "preset": {"enum": list(PRESETS)}, "seed": {"type": "integer"}}}}}},
            "responses": {"201": json_response("The job", _JOB), **error_responses(400, 401, 409, 422)},
        },
        "get": {"summary": "List jobs", "responses": {"200": json_response("{jobs: [job]}"), **error_responses(401)}},
    },
    "/api/v1/jobs/{job_id}": {
        "get": {"summary": "Job status", "parameters": [_ID],
                "responses": {"200": json_response("The job", _JOB), **error_responses(401, 404)}},
    },
    "/api/v1/jobs/{job_id}/cancel": {
        "post": {"summary": "Cancel: a queued job at once, a running one after a final snapshot",
                 "parameters": [_ID],
                 "responses": {"200": json_response("Cancelled (was queued)", _JOB),
                               "202": json_response("Cancelling (worker stops after a snapshot)", _JOB),
                               **error_responses(401, 404, 409)}},
    },
    "/api/v1/jobs/{job_id}/resume": {
        "post": {"summary": "Continue a completed/cancelled/failed/interrupted job to a new total of steps",
                 "parameters": [_ID],
                 "requestBody": {"content": {"application/json": {"schema": {
                     "type": "object", "properties": {"steps": {"type": "integer"}}}}}},
                 "responses": {"202": json_response("Queued again", _JOB), **error_responses(400, 401, 404, 409, 422)}},
    },
    "/api/v1/jobs/{job_id}/snapshots": {
        "get": {"summary": "Snapshots of a job", "parameters": [_ID],
                "responses": {"200": json_response("{snapshots: [{step, kimg, grid_url, download_url, model_id}]}"),
                              **error_responses(401, 404)}},
    },
    "/api/v1/jobs/{job_id}/snapshots/{step}/grid.png": {
        "get": {"summary": "Sample grid of one snapshot", "parameters": [_ID, _STEP],
                "responses": {"200": _PNG, **error_responses(401, 404)}},
    },
    "/api/v1/jobs/{job_id}/snapshots/{step}/network.safetensors": {
        "get": {"summary": "Download a snapshot's network (safetensors)", "parameters": [_ID, _STEP],
                "responses": {"200": {"description": "safetensors file", "content": {"application/octet-stream": {}}},
                              **error_responses(401, 404)}},
    },
    "/api/v1/jobs/{job_id}/grid.png": {
        "get": {"summary": "Newest sample grid", "parameters": [_ID],
                "responses": {"200": _PNG, **error_responses(401, 404)}},
    },
}
