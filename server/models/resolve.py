"""Which checkpoint file a request's `model` means (see server.models.schemas.ModelRef).

`{"job_id": 3, "step": 40}` (step optional: newest) or `{"model_id": "..."}` where the id
comes from GET /models: `job:<id>:<step>` is a job snapshot, anything else a base model
from the model library. The model is what generate and walks act on, so a missing one is
a 404.
"""

from __future__ import annotations

from pathlib import Path

from server.errors import ApiError, invalid_input
from server.jobs import store as job_store
from server.models.library import SCRATCH_ID, all_models
from server.models.schemas import ModelRef
from server.state import ServerState


def _job_snapshot(state: ServerState, job_id: int, step: int | None) -> tuple[Path, dict]:
    job = job_store.get_job(state.db, job_id)
    if job is None:
        raise ApiError(404, "job_not_found", f"no job with id {job_id}")
    snap = job_store.snapshot_for(job, step)
    if snap is None or not snap["network"] or not Path(snap["network"]).exists():
        which = f"step {step}" if step is not None else "any step"
        raise ApiError(404, "snapshot_not_found", f"job {job_id} has no snapshot at {which} yet")
    return Path(snap["network"]), {"job_id": int(job_id), "step": snap["step"]}


def _library_model(state: ServerState, model_id: str) -> Path | None:
    models, _ = all_models(state)
    for item in models:
        if str(item.get("id")) == model_id and item.get("path"):
            return Path(item["path"])
    return None


def resolve_model(state: ServerState, ref: ModelRef) -> tuple[Path, dict]:
    """(checkpoint path, canonical model reference) or ApiError 404/422."""
    if ref.job_id is not None:
        return _job_snapshot(state, ref.job_id, ref.step)
    model_id = ref.model_id
    if model_id == SCRATCH_ID:
        raise invalid_input(f"'{SCRATCH_ID}' is an untrained network; generate from a trained model")
    if model_id.startswith("job:"):
        try:
            job_id, step = job_store.parse_job_model_id(model_id)
        except ValueError as exc:
            raise invalid_input(f"model.model_id: {exc}") from None
        return _job_snapshot(state, job_id, step)
    path = _library_model(state, model_id)
    if path is None or not path.exists():
        raise ApiError(404, "model_not_found", f"no model with id {model_id!r} (see GET /api/v1/models)")
    return path, {"model_id": model_id}
