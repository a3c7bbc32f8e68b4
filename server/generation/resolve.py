"""Which checkpoint file a request's `model` means.

`{"job_id": 3, "step": 40}` (step optional: newest) or `{"model_id": "..."}` where the id
comes from GET /models: `job:<id>:<step>` is a job snapshot, anything else a base model
from the platform's model listing.
"""

from __future__ import annotations

from pathlib import Path

from server.errors import ApiError
from server.jobs import store as job_store


def _job_snapshot(state, job_id, step) -> tuple[Path, dict]:
    job = job_store.get_job(state.db, job_id)
    if job is None:
        raise ApiError(404, "job_not_found", f"no job with id {job_id}")
    snap = job_store.snapshot_for(job, step)
    if snap is None or not snap["network"] or not Path(snap["network"]).exists():
        which = f"step {step}" if step is not None else "any step"
        raise ApiError(404, "snapshot_not_found", f"job {job_id} has no snapshot at {which} yet")
    return Path(snap["network"]), {"job_id": int(job_id), "step": snap["step"]}


def _platform_model(state, model_id: str) -> Path | None:
    """A base model's checkpoint path from the platform's model listing (GET /models)."""
    from server.models.routes import all_models

    models, _ = all_models(state)
    for item in models:
        if str(item.get("id")) == model_id and item.get("path"):
            return Path(item["path"])
    return None


def resolve_model(state, spec) -> tuple[Path, dict]:
    """(checkpoint path, canonical model reference) or ApiError 4xx."""
    if not isinstance(spec, dict):
        raise ApiError(422, "invalid_model", "model must be an object: {job_id, step?} or {model_id}")
    if "job_id" in spec:
        job_id, step = spec.get("job_id"), spec.get("step")
        if not isinstance(job_id, int) or isinstance(job_id, bool):
            raise ApiError(422, "invalid_model", "model.job_id must be an integer")
        if step is not None and (not isinstance(step, int) or isinstance(step, bool) or step < 0):
            raise ApiError(422, "invalid_model", "model.step must be a non-negative integer")
        return _job_snapshot(state, job_id, step)
    model_id = spec.get("model_id")
    if not isinstance(model_id, str) or not model_id:
        raise ApiError(422, "invalid_model", "model needs job_id (and optional step) or model_id")
    if model_id == "scratch":
        raise ApiError(422, "invalid_model", "'scratch' is an untrained network; generate from a trained model")
    if model_id.startswith("job:"):
        try:
            job_id, step = job_store.parse_job_model_id(model_id)
        except ValueError as exc:
            raise ApiError(422, "invalid_model", str(exc)) from None
        return _job_snapshot(state, job_id, step)
    path = _platform_model(state, model_id)
    if path is None or not path.exists():
        raise ApiError(404, "model_not_found", f"no model with id {model_id!r} (see GET /api/v1/models)")
    return path, {"model_id": model_id}
