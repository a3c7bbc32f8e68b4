"""HTTP routes for base models: GET /models, GET /models/{id}/thumbnail, POST /models/rescan, DELETE /models/{id}."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Flask, jsonify, send_file

from server.config import API_PREFIX
from server.errors import ApiError, invalid_input, public_text
from server.models.library import all_models, import_in_background
from server.models.schemas import ModelListing
from server.jobs.store import active_jobs_starting_from
from server.openapi import doc
from server.responses import no_content
from server.state import ServerState, current_state
from server.projections.store import active_projections_using
from server.walks.store import active_walks_using

bp = Blueprint("models", __name__, url_prefix=API_PREFIX)

# Internal fields: local paths stay on the server, clients get URLs.
PRIVATE_FIELDS = ("thumbnail_path", "thumbnail", "path")


def model_json(entry: dict) -> dict:
    public = {k: v for k, v in entry.items() if k not in PRIVATE_FIELDS and not isinstance(v, Path)}
    public.setdefault("resolution", None)
    thumb = entry.get("thumbnail_path")
    public["thumbnail_url"] = f"{API_PREFIX}/models/{entry['id']}/thumbnail" if thumb and Path(thumb).is_file() else None
    return public


def _listing(import_pickles: bool):
    models, scanned = all_models(current_state(), import_pickles)
    return jsonify({
        "models": [model_json(m) for m in models],
        # The library's reasons name files by their paths here: shown relative to the data directory.
        "refused": [{"file": public_text(str(r.get("file"))), "reason": public_text(str(r.get("reason")))}
                    for r in scanned["refused"]],
        "pending": [{"file": public_text(str(p.get("file")))} for p in scanned["pending"]],
    })


@bp.get("/models")
@doc("Base models a job can start from, plus files in the models folder that were refused",
     ok={200: ("Models and refused files", ModelListing)}, errors=(401,))
def list_models():
    return _listing(import_pickles=False)  # fast: new pickles show under "pending"


@bp.post("/models/rescan")
@doc("Scan the models folder again (imports new .pkl files)", ok={200: ("Models and refused files", ModelListing)},
     errors=(401,))
def rescan_models():
    return _listing(import_pickles=True)  # imports pending pickles (may take a while)


@bp.get("/models/<path:model_id>/thumbnail")
@doc("Thumbnail grid of a model", ok={200: ("PNG", "image/png")}, errors=(401, 404))
def model_thumbnail(model_id: str):
    models, _ = all_models(current_state())
    entry = next((m for m in models if m["id"] == model_id), None)
    if entry is None:
        raise ApiError(404, "model_not_found", f"no model with id {model_id!r}")
    thumb = entry.get("thumbnail_path")
    if not thumb or not Path(thumb).is_file():
        raise ApiError(404, "thumbnail_not_found", f"model {model_id!r} has no thumbnail")
    return send_file(Path(thumb), mimetype="image/png", max_age=0)


@bp.delete("/models/<path:model_id>")
@doc("Delete a model from the models folder (with its thumbnail and the .pkl it came from); a job's "
     "snapshot is deleted with its job", ok={204: ("Deleted", None)}, errors=(401, 404, 409, 422))
def delete_model(model_id: str):
    from gan_core.models.library import delete_model as delete_from_folder

    state = current_state()
    models, _ = all_models(state)
    entry = next((m for m in models if m["id"] == model_id), None)
    if entry is None:
        raise ApiError(404, "model_not_found", f"no model with id {model_id!r}")
    if entry["kind"] not in ("checkpoint", "imported"):
        what = "a job's snapshot: delete the job" if entry["kind"] == "job" else "not a file"
        raise invalid_input(f"model {model_id!r} is {what}")
    path = Path(entry["path"])
    if (active_jobs_starting_from(state.db, path) or active_walks_using(state.db, path)
            or active_projections_using(state.db, path)):
        raise ApiError(409, "model_in_use", f"an unfinished job, walk or projection uses model {model_id!r}; "
                                            "wait for it or cancel it first")
    try:
        delete_from_folder(state.config.models_dir, model_id)
    except FileNotFoundError:
        raise ApiError(404, "model_not_found", f"no model with id {model_id!r}") from None
    return no_content()


def init_app(app: Flask, state: ServerState) -> None:
    app.register_blueprint(bp)
    import_in_background(state)
