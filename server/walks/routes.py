"""HTTP routes for latent walks (create, progress, frames, zip) and their wiring into the app."""

from __future__ import annotations

import logging
import shutil

from flask import Blueprint, Flask, jsonify, send_file

from gan_core import rules
from server.config import API_PREFIX
from server.directions.walks import resolve_walk_directions
from server.errors import ApiError, invalid_input, public_text, server_busy
from server.generation.gpu import batch_for
from server.models.resolve import resolve_model
from server.openapi import doc
from server.responses import no_content
from server.state import ServerState, current_state
from server.timestamps import iso_utc
from server.validation import field_check, json_body, parse, rule_check
from server.walks import store
from server.walks.runner import WalkRunner
from server.walks.schemas import WalkOut, WalkRequest

bp = Blueprint("walks", __name__, url_prefix=API_PREFIX)
log = logging.getLogger(__name__)


def walk_json(walk: dict) -> dict:
    base = f"{API_PREFIX}/walks/{walk['id']}"
    return {
        "id": walk["id"], "state": walk["state"], "model": walk["model"],
        "frames_done": walk["frames_done"], "frames_total": walk["frames_total"],
        "frame_start": walk["params"]["frame_start"], "frame_end": walk["params"]["frame_end"],
        "error": public_text(walk["error"]), "zip_url": f"{base}/{store.ZIP_NAME}",
        "frame_url_template": f"{base}/frames/{{frame}}.png",
        "created_at": iso_utc(walk["created_at"]), "updated_at": iso_utc(walk["updated_at"]),
        "settings": walk_settings(walk["params"]),
    }


SETTING_KEYS = ("interpolation", "easing", "loop", "psi", "noise_mode", "seamless", "size_multiplier")


def walk_settings(params: dict) -> dict:
    """What the walk renders, as stored: its waypoints and options, and each direction's id,
    layers and per-frame amounts (the stored unit vectors are left out: hundreds of numbers
    that GET /models/{id}/directions already gives)."""
    out = {"waypoints": params["waypoints"], **{k: params.get(k) for k in SETTING_KEYS}}
    out["directions"] = [{k: d[k] for k in ("id", "layers", "amounts") if k in d}
                         for d in params.get("directions", [])]
    return out


def _checked_walk(body: WalkRequest, config: dict) -> tuple[list[dict], int, int]:
    """(waypoints as stored, frame_start, frame_end), checked by the library that renders them
    against the model's `config` (its checkpoint header: z_dim, w_dim, resolution)."""
    from gan_core.latent import Waypoint, key_ws, validate_walk, ws_count

    z_dim = int(config["z_dim"])
    keys = [field_check(f"waypoints[{i}]", Waypoint.from_dict, w.model_dump(exclude_none=True))
            for i, w in enumerate(body.waypoints)]
    frames = [w.frame for w in keys]
    start = body.frame_start if body.frame_start is not None else min(frames)
    end = body.frame_end if body.frame_end is not None else max(frames)
    keys = rule_check(validate_walk, keys, start, end, body.loop)
    for key in keys:
        if key.in_w:  # stored w / style mixing: shapes and the mixing layer against the model
            field_check("waypoints", key_ws, key, ws_count(int(config["resolution"])), int(config["w_dim"]), z_dim)
        elif key.z is not None:
            field_check("waypoints", key.vector, z_dim)
    if end - start + 1 > rules.MAX_WALK_FRAMES:
        raise invalid_input(f"at most {rules.MAX_WALK_FRAMES} frames per walk, asked for {end - start + 1}")
    rule_check(rules.check_enlarged_count, end - start + 1, rules.MAX_WALK_FRAMES, body.size_multiplier,
               "frames per walk")  # enlarged frames: the same pixels (time, disk) in fewer frames
    stored = [k.to_dict() for k in keys]  # Waypoint.from_dict reads them back (a resumed walk is the same)
    return stored, start, end


@bp.post("/walks")
@doc("Render a latent walk in the background", body=WalkRequest, ok={202: ("The walk, queued", WalkOut)},
     errors=(400, 401, 404, 422, 503))
def create_walk():
    from gan_core.models.checkpoint import read_network_config  # torch-heavy module

    state = current_state()
    body = parse(WalkRequest, json_body())
    path, model_ref = resolve_model(state, body.model)
    waypoints, start, end = _checked_walk(body, read_network_config(path))
    directions = resolve_walk_directions(state, path, body.directions, start, end)  # stored: resumes render the same
    params = {"waypoints": waypoints, "frame_start": start, "frame_end": end,
              "interpolation": body.interpolation, "easing": body.easing, "loop": body.loop,
              "psi": body.psi, "noise_mode": body.noise_mode, "batch_size": batch_for(body.size_multiplier),
              "seamless": body.seamless, "size_multiplier": body.size_multiplier,
              **({"directions": directions} if directions else {})}
    if not state.walk_runner.reserve():  # bounded: a flood of walks waits outside, not in memory
        raise server_busy("walks")
    try:
        walk = store.insert_walk(state.db, model_ref, str(path), params, end - start + 1)
    except BaseException:
        state.walk_runner.release()
        raise
    state.walk_runner.submit(walk["id"])
    return jsonify(walk_json(walk)), 202


def _walk_or_404(walk_id: int) -> dict:
    walk = store.get_walk(current_state().db, walk_id)
    if walk is None:
        raise ApiError(404, "walk_not_found", f"no walk with id {walk_id}")
    return walk


@bp.get("/walks/<int:walk_id>")
@doc("Walk progress", ok={200: ("The walk", WalkOut)}, errors=(401, 404))
def get_walk(walk_id: int):
    return jsonify(walk_json(_walk_or_404(walk_id)))


@bp.delete("/walks/<int:walk_id>")
@doc("Delete a finished walk and its frames", ok={204: ("Deleted", None)}, errors=(401, 404, 409))
def delete_walk(walk_id: int):
    state = current_state()
    walk = _walk_or_404(walk_id)
    if walk["state"] in (store.QUEUED, store.RENDERING) or not store.delete_walk(state.db, walk_id):
        raise ApiError(409, "walk_active", f"walk {walk_id} is {walk['state']}: wait until it has finished")
    shutil.rmtree(store.walk_dir(state.config.walks_dir, walk_id), ignore_errors=True)
    return no_content()


@bp.get("/walks/<int:walk_id>/frames.zip")
@doc("All frames of a completed walk", ok={200: ("zip of frame_NNNNN.png", "application/zip")}, errors=(401, 404, 409))
def walk_zip(walk_id: int):
    walk = _walk_or_404(walk_id)
    if walk["state"] != store.COMPLETED:
        raise ApiError(409, "walk_not_ready",
                       f"walk {walk_id} is {walk['state']} ({walk['frames_done']}/{walk['frames_total']} frames); "
                       "the zip exists once it completes")
    path = store.walk_dir(current_state().config.walks_dir, walk_id) / store.ZIP_NAME
    return send_file(path, mimetype="application/zip", as_attachment=True,
                     download_name=f"walk{walk_id}-frames.zip", max_age=0)


@bp.get("/walks/<int:walk_id>/frames/<int:frame>.png")
@doc("One rendered frame", ok={200: ("PNG", "image/png")}, errors=(401, 404))
def walk_frame(walk_id: int, frame: int):
    walk = _walk_or_404(walk_id)
    p = walk["params"]
    if not p["frame_start"] <= frame <= p["frame_end"]:
        raise ApiError(404, "frame_not_found", f"frame {frame} is outside {p['frame_start']}..{p['frame_end']}")
    path = store.walk_dir(current_state().config.walks_dir, walk_id) / store.frame_name(frame)
    if not path.exists():
        raise ApiError(404, "frame_not_found", f"frame {frame} is not rendered yet (walk is {walk['state']})")
    return send_file(path, mimetype="image/png", max_age=0)


def init_app(app: Flask, state: ServerState) -> None:
    """The walks table and the runner; the data directory's owner resumes cut-short walks."""
    store.create_tables(state.db)
    state.walk_runner = WalkRunner(state.db, state.config.walks_dir, state.model_cache, state.device,
                                   capacity=state.config.walk_queue)
    state.add_shutdown_hook(state.walk_runner.close)
    if state.owns_data_dir:
        resumable = store.recover(state.db)
        for walk_id in resumable:
            state.walk_runner.submit(walk_id, reserved=False)
        if resumable:
            log.info("resuming walks interrupted by the last shutdown: %s", resumable)
    app.register_blueprint(bp)
