"""HTTP routes for training jobs (create, list, status, cancel, resume, snapshots) and the
wiring of the job queue into the app."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from flask import Blueprint, Flask, jsonify, send_file

from gan_core import rules
from server.config import API_PREFIX
from server.datasets.store import dataset_zip_path, get_dataset
from server.errors import ApiError, error_response, invalid_input, public_text
from server.jobs import media, scheduler, states, store
from server.jobs.schemas import TRAINING_DEFAULTS, JobCreate, JobList, JobOut, JobResume, SnapshotList
from server.jobs.status import JobStatusCache
from server.models.library import SCRATCH_ID
from server.models.resolve import resolve_model
from server.models.schemas import ModelRef
from server.openapi import doc
from server.responses import no_content
from server.state import ServerState, current_state
from server.timestamps import iso_utc
from server.validation import json_body, parse, rule_check
from server.projections.store import active_projections_using
from server.walks.store import active_walks_using

bp = Blueprint("jobs", __name__, url_prefix=API_PREFIX)
log = logging.getLogger(__name__)
PNG = "image/png"


def _unavailable(dataset_id: str, dataset_state: str | None, resuming: bool) -> ApiError:
    if dataset_state is None and resuming:  # the job is fine; its data is gone
        return ApiError(409, "dataset_gone", f"this job's dataset {dataset_id} was deleted; it cannot train further")
    if dataset_state is None:
        return ApiError(422, "unknown_dataset", f"no dataset with id {dataset_id!r}")
    return ApiError(409, "dataset_not_ready", f"dataset {dataset_id} is '{dataset_state}': prepare it before training on it")


def _ready_dataset(state: ServerState, dataset_id: str, resuming: bool = False) -> dict:
    dataset = get_dataset(state.db, dataset_id)
    if dataset is None or dataset["state"] != "ready":
        raise _unavailable(dataset_id, dataset["state"] if dataset else None, resuming)
    return dataset


def _trained_resolution(job: dict) -> int | None:
    """The resolution the job's networks have: asked for at creation, else its newest snapshot's."""
    asked = job["params"].get("resolution")
    if asked:
        return int(asked)
    snap = store.snapshot_for(job, None)
    return store.snapshot_resolution(snap["network"], job) if snap else None


def _dataset_zip(state: ServerState, dataset_id: str) -> Path:
    path = Path(dataset_zip_path(state, dataset_id))
    if not path.exists():
        raise ApiError(409, "dataset_not_ready", f"dataset {dataset_id} has no prepared zip; prepare it again")
    return path


def _base_model_path(state: ServerState, base_model: str) -> str | None:
    if base_model == SCRATCH_ID:
        return None
    try:
        path, _ = resolve_model(state, ModelRef(model_id=base_model))
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
    base = f"{API_PREFIX}/jobs/{job['id']}"
    return {
        "id": job["id"], "title": job["title"], "state": job["state"],
        "dataset_id": job["dataset_id"], "base_model": job["base_model"],
        "resolution": p.get("resolution"), "steps": job["steps"], "step": job["step"],
        "batch": p.get("batch"), "mirror": p.get("mirror"), "augmentation": p.get("augmentation"),
        "snapshot_every": p.get("snapshot_every"), "preset": p.get("preset"),
        "precision": p.get("precision"), "keep_snapshots": p.get("keep_snapshots"), "gpus": p.get("gpus", 1),
        "tileable": bool(p.get("tileable", False)),
        "estimate": job.get("estimate"),
        "kimg": job["kimg"], "losses": job["losses"] or {}, "ada_p": job["ada_p"],
        "sec_per_kimg": job["sec_per_kimg"], "eta_s": job["eta_s"],
        "latest_grid_url": f"{base}/grid.png" if job["latest_grid"] else None,
        "snapshots_url": f"{base}/snapshots",
        **media.media_urls(job),
        "error": public_text(job["error"]), "attempt": job["attempt"], "pid": job["pid"],
        "heartbeat": iso_utc(job["heartbeat"]),
        "created_at": iso_utc(job["created_at"]), "updated_at": iso_utc(job["updated_at"]),
        "started_at": iso_utc(job["started_at"]), "finished_at": iso_utc(job["finished_at"]),
    }


def _wake_scheduler(state: ServerState) -> None:
    if state.scheduler is not None:
        state.scheduler.wake()


@bp.errorhandler(states.IllegalTransition)
def _illegal(exc: states.IllegalTransition):
    # Any transition refused by the state machine (e.g. lost a race with the scheduler).
    err = states.to_api_error(exc)
    return error_response(err.status, err.code, err.message)


@bp.post("/jobs")
@doc("Create a training job (queued; starts when a worker slot is free)", body=JobCreate,
     ok={201: ("The job", JobOut)}, errors=(400, 401, 409, 422))
def create_job():
    state = current_state()
    body = parse(JobCreate, json_body(optional=True))
    max_steps = int(state.config.max_steps)
    steps = rule_check(rules.check_int, body.steps if body.steps is not None else min(TRAINING_DEFAULTS["steps"], max_steps),
                       "steps", 1, max_steps)
    snapshot_every = body.snapshot_every if body.snapshot_every is not None else min(TRAINING_DEFAULTS["snapshot_every"], steps)
    params = {
        "resolution": body.resolution, "batch": body.batch, "mirror": body.mirror, "augmentation": body.augmentation,
        "snapshot_every": rule_check(rules.check_int, snapshot_every, "snapshot_every", 1, steps),
        "preset": body.preset, "seed": body.seed,
        "precision": body.precision, "keep_snapshots": body.keep_snapshots, "gpus": body.gpus,
        "tileable": body.tileable,
    }
    # A precision this server's device cannot run is refused now, not later in the worker.
    rule_check(rules.check_precision, body.precision, state.device.split(":")[0])
    # More processes than this server has GPUs (or cores), or a batch they cannot share: refused now.
    rule_check(scheduler.check_job_processes, body.gpus, body.batch, state.scheduler.gpus if state.scheduler else [])
    dataset = _ready_dataset(state, body.dataset_id)
    data_res = (dataset.get("info") or {}).get("resolution")
    if body.resolution is not None and data_res and int(data_res) != body.resolution:
        raise invalid_input(f"resolution {body.resolution} does not match the dataset's {data_res}; prepare it at {body.resolution}")
    params["data"] = str(_dataset_zip(state, dataset["id"]))
    params["base"] = _base_model_path(state, body.base_model)
    try:  # the dataset's state is checked again in the inserting transaction: a delete may have won
        job = store.insert_job(
            state.db, title=body.title.strip(), dataset_id=dataset["id"], base_model=body.base_model, params=params,
            steps=steps, run_dir_for=lambda job_id: store.run_dir_for(state.config.data_dir, job_id),
            require_ready_dataset=True,
        )
    except store.DatasetUnavailable as exc:
        raise _unavailable(exc.dataset_id, exc.state, resuming=False) from None
    _wake_scheduler(state)
    return jsonify(job_json(job)), 201


@bp.get("/jobs")
@doc("List jobs", ok={200: ("All jobs, oldest first", JobList)}, errors=(401,))
def list_jobs():
    return jsonify({"jobs": [job_json(j) for j in store.list_jobs(current_state().db)]})


@bp.get("/jobs/<int:job_id>")
@doc("Job status, with its history of state changes", ok={200: ("The job", JobOut)}, errors=(401, 404))
def get_job(job_id: int):
    # The route clients poll: served from memory until the database changes (server.jobs.status).
    job, history = current_state().job_status.job_with_history(job_id)
    if job is None:
        raise ApiError(404, "job_not_found", f"no job with id {job_id}")
    body = job_json(job)
    # The audit trail shows what happened across restarts (e.g. interrupted -> queued).
    body["history"] = [{**t, "at": iso_utc(t["at"])} for t in history]
    return jsonify(body)


@bp.post("/jobs/<int:job_id>/cancel")
@doc("Cancel: a queued job at once, a running one after a final snapshot",
     ok={200: ("Cancelled (was queued)", JobOut), 202: ("Cancelling (worker stops after a snapshot)", JobOut)},
     errors=(401, 404, 409))
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
@doc("Continue a completed/cancelled/failed/interrupted job to a new total of steps", body=JobResume,
     body_required=False, ok={202: ("Queued again", JobOut)}, errors=(400, 401, 404, 409, 422))
def resume_job(job_id: int):
    state = current_state()
    job = _get_job_or_404(job_id)
    body = parse(JobResume, json_body(optional=True))
    if job["state"] not in states.RESUMABLE_STATES:
        raise states.to_api_error(states.IllegalTransition(job["state"], states.QUEUED))
    steps = rule_check(rules.check_int, body.steps if body.steps is not None else job["steps"],
                       "steps", 1, int(state.config.max_steps))
    if steps <= job["step"]:
        raise invalid_input(f"steps is the new total and must exceed the {job['step']} steps already trained")
    dataset = _ready_dataset(state, job["dataset_id"], resuming=True)  # it may have been deleted meanwhile
    _dataset_zip(state, job["dataset_id"])
    data_res = (dataset.get("info") or {}).get("resolution")
    trained = _trained_resolution(job)
    if data_res and trained and int(data_res) != trained:  # re-prepared at another size since
        raise ApiError(409, "dataset_not_ready", f"dataset {job['dataset_id']} is now prepared at {data_res} px but this "
                                                 f"job trains at {trained} px: prepare it at {trained} again to resume")
    try:
        job = store.transition(state.db, job_id, states.QUEUED, f"resume requested to {steps} steps",
                               expect=states.RESUMABLE_STATES, steps=steps, error=None, require_ready_dataset=True)
    except states.IllegalTransition as exc:
        raise states.to_api_error(exc) from None
    except store.DatasetUnavailable as exc:
        raise _unavailable(exc.dataset_id, exc.state, resuming=True) from None
    _wake_scheduler(state)
    return jsonify(job_json(job)), 202


@bp.delete("/jobs/<int:job_id>")
@doc("Delete a finished job and its run folder (snapshots, grids, progress): frees their disk",
     ok={204: ("Deleted", None)}, errors=(401, 404, 409))
def delete_job(job_id: int):
    state = current_state()
    job = _get_job_or_404(job_id)
    if job["state"] in states.ACTIVE_STATES:
        raise ApiError(409, "job_active", f"job {job_id} is {job['state']}: cancel it and wait until it has "
                                          "stopped, then delete it")
    folder = Path(job["run_dir"]).parent  # jobs/<id>: the run and the worker's lock and flags
    users = (store.active_jobs_starting_from(state.db, folder) + active_walks_using(state.db, folder)
             + active_projections_using(state.db, folder))
    if users:
        raise ApiError(409, "model_in_use", f"an unfinished job, walk or projection uses a snapshot of job "
                                            f"{job_id}; wait for it or cancel it first")
    if not store.delete_job(state.db, job_id):  # resumed (or deleted) since the check above
        raise ApiError(409, "job_active", f"job {job_id} was queued again meanwhile; cancel it first")
    if folder.parent == state.config.jobs_dir:  # never remove anything outside the jobs folder
        shutil.rmtree(folder, ignore_errors=True)
    return no_content()


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
@doc("Snapshots of a job", ok={200: ("Snapshots, oldest first", SnapshotList)}, errors=(401, 404))
def list_snapshots(job_id: int):
    job = _get_job_or_404(job_id)
    base = f"{API_PREFIX}/jobs/{job_id}/snapshots"
    return jsonify({"snapshots": [
        {"step": s["step"], "kimg": s["kimg"], "grid_url": f"{base}/{s['step']}/grid.png",
         "download_url": f"{base}/{s['step']}/network.safetensors",
         "model_id": f"job:{job_id}:{s['step']}"}
        for s in store.job_snapshots(job["run_dir"])
    ]})


@bp.get("/jobs/<int:job_id>/snapshots/<int:step>/grid.png")
@doc("Sample grid of one snapshot", ok={200: ("PNG image", PNG)}, errors=(401, 404))
def snapshot_grid(job_id: int, step: int):
    snap = _snapshot_or_404(_get_job_or_404(job_id), step)
    return _send(snap["grid"], PNG)


@bp.get("/jobs/<int:job_id>/snapshots/<int:step>/network.safetensors")
@doc("Download a snapshot's network (safetensors)", ok={200: ("safetensors file", "application/octet-stream")},
     errors=(401, 404))
def snapshot_network(job_id: int, step: int):
    snap = _snapshot_or_404(_get_job_or_404(job_id), step)
    return _send(snap["network"], "application/octet-stream", f"job{job_id}-network-{step:06d}.safetensors")


@bp.get("/jobs/<int:job_id>/grid.png")
@doc("Newest sample grid", ok={200: ("PNG image", PNG)}, errors=(401, 404))
def latest_grid(job_id: int):
    job = _get_job_or_404(job_id)
    snap = store.snapshot_for(job, None)
    path = snap["grid"] if snap else job["latest_grid"]
    if not path:
        raise ApiError(404, "snapshot_not_found", f"job {job_id} has no sample grid yet")
    return _send(path, PNG)


def _cuda_count(device: str) -> int:
    if not device.startswith("cuda"):
        return 0
    import torch  # only on a CUDA server, where torch is loaded anyway

    return torch.cuda.device_count()


def init_app(app: Flask, state: ServerState) -> None:
    """The jobs table, and the queue: started (after restart recovery) only by the server
    that owns the data directory."""
    store.create_tables(state.db)
    state.job_status = JobStatusCache(state.db)
    state.add_shutdown_hook(state.job_status.close)
    devices = scheduler.slot_devices(str(state.device), state.config.device, state.config.workers, _cuda_count(str(state.device)))
    gpus = scheduler.gpu_pool(str(state.device), state.config.device, _cuda_count(str(state.device)))
    state.scheduler = scheduler.Scheduler(state.db, state.config.jobs_dir, devices=devices, gpus=gpus)
    if state.owns_data_dir:
        requeued = scheduler.recover(state.db)
        if requeued:
            log.info("re-queued jobs interrupted by the last shutdown: %s", requeued)
        state.scheduler.start()
        state.add_shutdown_hook(state.scheduler.shutdown)
    else:
        log.warning("another server runs the job queue of %s; this one will not start workers", state.config.data_dir)
    app.register_blueprint(bp)
    app.register_blueprint(media.bp)
