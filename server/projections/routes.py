"""HTTP routes for projections (create, progress and result, images, delete) and their wiring.

The image comes as base64 text inside the JSON body (one request, the API's strict JSON
rules, and the add-on's client posts JSON everywhere else too). It is decoded and cut to
the model's side when the projection is created, so a bad image is a 422 at once and the
queue holds only small targets.
"""

from __future__ import annotations

import base64
import binascii
import logging
import shutil

from flask import Blueprint, Flask, jsonify, send_file

from gan_core import rules
from server.config import API_PREFIX
from server.errors import ApiError, invalid_input, public_text, server_busy
from server.models.resolve import resolve_model
from server.openapi import doc
from server.projections import store
from server.projections.runner import ProjectionRunner
from server.projections.schemas import ProjectionOut, ProjectionRequest
from server.responses import no_content
from server.state import ServerState, current_state
from server.timestamps import iso_utc
from server.validation import json_body, parse

bp = Blueprint("projections", __name__, url_prefix=API_PREFIX)
log = logging.getLogger(__name__)
QUEUE_CAPACITY = 8  # projections queued or running at once; more are 503 (they run one at a time)


def projection_json(row: dict) -> dict:
    base = f"{API_PREFIX}/projections/{row['id']}"
    p, result = row["params"], row["result"]
    return {
        "id": row["id"], "state": row["state"], "model": row["model"], "steps": row["steps_total"],
        "steps_done": row["steps_done"], "progress": row["steps_done"] / max(1, row["steps_total"]),
        "loss": row["loss"], "loss_kind": p["loss_used"], "w_plus": p["w_plus"], "noise": p["noise"],
        "note": row["note"], "error": public_text(row["error"]),
        "result": result if row["state"] == store.DONE else None,
        "target_url": f"{base}/{store.TARGET_NAME}", "reconstruction_url": f"{base}/{store.RECONSTRUCTION_NAME}",
        "created_at": iso_utc(row["created_at"]), "updated_at": iso_utc(row["updated_at"]),
    }


def _decoded_image(text: str):
    """uint8 [H, W, 3] from the body's base64 image, or a 422 that says what is wrong."""
    from gan_core.data.decode import decode_rgb, open_image
    from gan_core.data.errors import RejectedImage

    import numpy as np

    try:
        data = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise invalid_input("image must be base64 text (the bytes of a PNG or JPEG file)") from None
    try:
        im = decode_rgb(open_image(data, max_pixels=rules.MAX_PROJECTION_PIXELS), (0, 0, 0))
    except RejectedImage as exc:
        raise invalid_input(f"image: {exc.reason}") from None
    return np.asarray(im)


def _has_discriminator(path) -> bool:
    from gan_core.models.checkpoint import read_network_config

    return "D" in (read_network_config(path).get("parts") or ())


@bp.post("/projections")
@doc("Find the latent of an image (projection), in the background", body=ProjectionRequest,
     ok={202: ("The projection, queued", ProjectionOut)}, errors=(400, 401, 404, 422, 503, 507))
def create_projection():
    from gan_core.fileio import atomic_write_bytes
    from gan_core.generate import encode_png
    from gan_core.models.checkpoint import read_network_config
    from gan_core.project import NO_DISCRIMINATOR_NOTE, prepare_target

    state = current_state()
    body = parse(ProjectionRequest, json_body())
    path, model_ref = resolve_model(state, body.model)
    target = prepare_target(_decoded_image(body.image), int(read_network_config(path)["resolution"]))
    fallback = body.loss == "dfeat" and not _has_discriminator(path)  # said at once, not when it runs
    params = {"steps": body.steps, "w_plus": body.w_plus, "noise": body.noise, "loss": body.loss, "seed": body.seed,
              "loss_used": "pixel" if fallback else body.loss}
    note = NO_DISCRIMINATOR_NOTE if fallback else None
    runner = state.projections
    if not runner.reserve():  # bounded: a flood of projections waits outside, not in memory
        raise server_busy("projections")
    try:
        row = store.insert_projection(state.db, model_ref, str(path), params, note)
        folder = store.projection_dir(state.config.data_dir, row["id"])
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            atomic_write_bytes(folder / store.TARGET_NAME, encode_png(target))
        except BaseException:  # nothing to run: the row says why, the disk error answers
            store.fail_if_active(state.db, row["id"], "the target image could not be saved")
            raise
    except BaseException:
        runner.release()
        raise
    runner.submit(row["id"])
    return jsonify(projection_json(store.get_projection(state.db, row["id"]))), 202


def _projection_or_404(projection_id: int) -> dict:
    row = store.get_projection(current_state().db, projection_id)
    if row is None:
        raise ApiError(404, "projection_not_found", f"no projection with id {projection_id}")
    return row


@bp.get("/projections/<int:projection_id>")
@doc("Projection progress, and its latent once done", ok={200: ("The projection", ProjectionOut)},
     errors=(401, 404))
def get_projection(projection_id: int):
    return jsonify(projection_json(_projection_or_404(projection_id)))


@bp.get("/projections/<int:projection_id>/target.png")
@doc("The image as compared (cropped and resized to the model)", ok={200: ("PNG", "image/png")}, errors=(401, 404))
def projection_target(projection_id: int):
    _projection_or_404(projection_id)
    path = store.projection_dir(current_state().config.data_dir, projection_id) / store.TARGET_NAME
    if not path.exists():
        raise ApiError(404, "file_not_found", f"projection {projection_id} has no target image")
    return send_file(path, mimetype="image/png", max_age=0)


@bp.get("/projections/<int:projection_id>/reconstruction.png")
@doc("The projection's result, rendered", ok={200: ("PNG", "image/png")}, errors=(401, 404, 409))
def projection_reconstruction(projection_id: int):
    row = _projection_or_404(projection_id)
    if row["state"] != store.DONE:
        raise ApiError(409, "projection_not_ready", f"projection {projection_id} is {row['state']} "
                                                    f"({row['steps_done']}/{row['steps_total']} steps); "
                                                    "the reconstruction exists once it is done")
    path = store.projection_dir(current_state().config.data_dir, projection_id) / store.RECONSTRUCTION_NAME
    return send_file(path, mimetype="image/png", max_age=0)


@bp.delete("/projections/<int:projection_id>")
@doc("Delete a finished projection and its images", ok={204: ("Deleted", None)}, errors=(401, 404, 409))
def delete_projection(projection_id: int):
    state = current_state()
    row = _projection_or_404(projection_id)
    if row["state"] in store.ACTIVE or not store.delete_projection(state.db, projection_id):
        raise ApiError(409, "projection_active", f"projection {projection_id} is {row['state']}: "
                                                 "wait until it has finished")
    shutil.rmtree(store.projection_dir(state.config.data_dir, projection_id), ignore_errors=True)
    return no_content()


def init_app(app: Flask, state: ServerState) -> None:
    """The projections table and runner; the data directory's owner fails the projections
    the last stop cut short (an optimisation does not resume)."""
    store.create_tables(state.db)
    folder = store.projections_dir(state.config.data_dir)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    state.projections = ProjectionRunner(state.db, state.config.data_dir, state.model_cache, state.device,
                                         capacity=QUEUE_CAPACITY)
    state.add_shutdown_hook(state.projections.close)
    if state.owns_data_dir:
        stopped = store.recover(state.db)
        if stopped:
            log.info("projections stopped by the last shutdown, marked failed: %s", stopped)
    app.register_blueprint(bp)
