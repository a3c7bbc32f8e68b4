"""HTTP routes for generation (seeds -> PNG/zip) and latent walks (frame sequences)."""

from __future__ import annotations

import io
import threading
import zipfile

from flask import Blueprint, Response, jsonify, request, send_file

from server.errors import ApiError
from server.openapi import error_responses, json_response
from server.state import current_state

from . import walks
from .gpu import device_lock
from .model_cache import ModelCache
from .resolve import resolve_model

bp = Blueprint("generation", __name__, url_prefix="/api/v1")

NOISE_MODES = ("const", "random", "none")
INTERPOLATIONS = ("slerp", "lerp")
MAX_SEEDS = 64
MAX_WALK_FRAMES = 10000
CACHE_CAPACITY = 3
GEN_BATCH = 8
_init_lock = threading.Lock()


def services(state):
    """The per-app model cache and walk renderer, created on first use."""
    with _init_lock:
        if getattr(state, "model_cache", None) is None:
            state.model_cache = ModelCache(CACHE_CAPACITY, device=state.device)
        if getattr(state, "walk_renderer", None) is None:
            state.walk_renderer = walks.WalkRenderer(state.db, state.config.walks_dir, state.model_cache, state.device)
            state.add_shutdown_hook(state.walk_renderer.close)
    return state.model_cache, state.walk_renderer




def _body() -> dict:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ApiError(400, "bad_request", "the body must be a JSON object (Content-Type: application/json)")
    return data


def _psi(data: dict) -> float:
    psi = data.get("psi", 1.0)
    if isinstance(psi, bool) or not isinstance(psi, (int, float)) or not -2.0 <= psi <= 2.0:
        raise ApiError(422, "invalid_input", f"psi must be a number between -2 and 2, got {psi!r}")
    return float(psi)


def _noise_mode(data: dict) -> str:
    mode = data.get("noise_mode", "const")
    if mode not in NOISE_MODES:
        raise ApiError(422, "invalid_input", f"noise_mode must be one of {', '.join(NOISE_MODES)}, got {mode!r}")
    return mode


def _seeds(data: dict) -> list[int]:
    raw = data.get("seeds")
    if raw is None:
        raise ApiError(422, "invalid_input", "seeds is required: a list of integers or a string like '0-3,7'")
    if isinstance(raw, str):
        from gan_core.latent import parse_seeds

        try:
            seeds = parse_seeds(raw)
        except ValueError as exc:
            raise ApiError(422, "invalid_input", f"seeds: {exc}") from None
    elif isinstance(raw, int) and not isinstance(raw, bool):
        seeds = [raw]
    elif isinstance(raw, list):
        seeds = raw
    else:
        raise ApiError(422, "invalid_input", "seeds must be a list of integers or a string like '0-3,7'")
    if not seeds:
        raise ApiError(422, "invalid_input", "seeds must not be empty")
    if len(seeds) > MAX_SEEDS:
        raise ApiError(422, "invalid_input", f"at most {MAX_SEEDS} seeds per request, got {len(seeds)}")
    for s in seeds:
        if not isinstance(s, int) or isinstance(s, bool) or not 0 <= s < 2**32:
            raise ApiError(422, "invalid_input", f"each seed must be an integer in [0, 2^32), got {s!r}")
    return seeds


@bp.post("/generate")
def generate():
    from gan_core.generate import encode_png

    state = current_state()
    data = _body()
    seeds, psi, noise_mode = _seeds(data), _psi(data), _noise_mode(data)
    path, _ = resolve_model(state, data.get("model"))
    cache, _ = services(state)
    runner = cache.get(path)
    images = []
    lock = device_lock(state.device)
    # One lock hold per batch: a walk or another request never waits more than a batch.
    for i in range(0, len(seeds), GEN_BATCH):
        with lock:
            images.extend(runner.generate(seeds=seeds[i:i + GEN_BATCH], psi=psi, noise_mode=noise_mode,
                                          batch_size=GEN_BATCH))
    if len(seeds) == 1:
        return Response(encode_png(images[0]), mimetype="image/png")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for seed, img in zip(seeds, images):
            zf.writestr(f"seed{seed:04d}.png", encode_png(img))
    return Response(buf.getvalue(), mimetype="application/zip",
                    headers={"Content-Disposition": 'attachment; filename="images.zip"'})


def _frame(value, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ApiError(422, "invalid_input", f"{what} must be a non-negative integer, got {value!r}")
    return value


def _waypoints(raw, z_dim: int) -> list[dict]:
    if not isinstance(raw, list) or not raw:
        raise ApiError(422, "invalid_input", "waypoints must be a non-empty list of {frame, seed} or {frame, z}")
    out, seen = [], set()
    for i, w in enumerate(raw):
        if not isinstance(w, dict):
            raise ApiError(422, "invalid_input", f"waypoints[{i}] must be an object")
        frame = _frame(w.get("frame"), f"waypoints[{i}].frame")
        if frame in seen:
            raise ApiError(422, "invalid_input", f"two waypoints on frame {frame}")
        seen.add(frame)
        seed, z = w.get("seed"), w.get("z")
        if (seed is None) == (z is None):
            raise ApiError(422, "invalid_input", f"waypoints[{i}] needs exactly one of seed or z")
        if seed is not None:
            if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**32:
                raise ApiError(422, "invalid_input", f"waypoints[{i}].seed must be an integer in [0, 2^32)")
            out.append({"frame": frame, "seed": seed})
        else:
            if (not isinstance(z, list) or len(z) != z_dim
                    or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in z)):
                raise ApiError(422, "invalid_input", f"waypoints[{i}].z must be a list of {z_dim} numbers for this model")
            out.append({"frame": frame, "z": [float(v) for v in z]})
    return sorted(out, key=lambda w: w["frame"])


@bp.post("/walks")
def create_walk():
    from gan_core.models.checkpoint import read_network_config
    from gan_core.latent import EASINGS

    state = current_state()
    data = _body()
    path, model_ref = resolve_model(state, data.get("model"))
    z_dim = int(read_network_config(path)["z_dim"])
    waypoints = _waypoints(data.get("waypoints"), z_dim)
    frame_start = _frame(data.get("frame_start", waypoints[0]["frame"]), "frame_start")
    frame_end = _frame(data.get("frame_end", waypoints[-1]["frame"]), "frame_end")
    if frame_end < frame_start:
        raise ApiError(422, "invalid_input", "frame_end must not be before frame_start")
    total = frame_end - frame_start + 1
    if total > MAX_WALK_FRAMES:
        raise ApiError(422, "invalid_input", f"at most {MAX_WALK_FRAMES} frames per walk, asked for {total}")
    interpolation = data.get("interpolation", "slerp")
    if interpolation not in INTERPOLATIONS:
        raise ApiError(422, "invalid_input", f"interpolation must be slerp or lerp, got {interpolation!r}")
    easing = data.get("easing", "linear")
    if easing not in EASINGS:
        raise ApiError(422, "invalid_input", f"easing must be one of {', '.join(sorted(EASINGS))}, got {easing!r}")
    loop = data.get("loop", False)
    if not isinstance(loop, bool):
        raise ApiError(422, "invalid_input", "loop must be true or false")
    params = {"waypoints": waypoints, "frame_start": frame_start, "frame_end": frame_end,
              "interpolation": interpolation, "easing": easing, "loop": loop, "psi": _psi(data),
              "noise_mode": _noise_mode(data), "batch_size": 8}
    _, renderer = services(state)
    walk = walks.insert_walk(state.db, model_ref, str(path), params, total)
    renderer.submit(walk["id"])
    return jsonify(walk_json(walk)), 202


def walk_json(walk: dict) -> dict:
    base = f"/api/v1/walks/{walk['id']}"
    return {
        "id": walk["id"], "state": walk["state"], "model": walk["model"],
        "frames_done": walk["frames_done"], "frames_total": walk["frames_total"],
        "frame_start": walk["params"]["frame_start"], "frame_end": walk["params"]["frame_end"],
        "error": walk["error"], "zip_url": f"{base}/frames.zip",
        "frame_url_template": f"{base}/frames/{{frame}}.png",
        "created_at": walk["created_at"], "updated_at": walk["updated_at"],
    }


def _walk_or_404(walk_id: int) -> dict:
    walk = walks.get_walk(current_state().db, walk_id)
    if walk is None:
        raise ApiError(404, "walk_not_found", f"no walk with id {walk_id}")
    return walk


@bp.get("/walks/<int:walk_id>")
def get_walk(walk_id: int):
    return jsonify(walk_json(_walk_or_404(walk_id)))


@bp.get("/walks/<int:walk_id>/frames.zip")
def walk_zip(walk_id: int):
    walk = _walk_or_404(walk_id)
    if walk["state"] != walks.COMPLETED:
        raise ApiError(409, "walk_not_ready",
                       f"walk {walk_id} is {walk['state']} ({walk['frames_done']}/{walk['frames_total']} frames); "
                       "the zip exists once it completes")
    path = walks.walk_dir(current_state().config.walks_dir, walk_id) / "frames.zip"
    return send_file(path, mimetype="application/zip", as_attachment=True,
                     download_name=f"walk{walk_id}-frames.zip", max_age=0)


@bp.get("/walks/<int:walk_id>/frames/<int:frame>.png")
def walk_frame(walk_id: int, frame: int):
    walk = _walk_or_404(walk_id)
    p = walk["params"]
    if not p["frame_start"] <= frame <= p["frame_end"]:
        raise ApiError(404, "frame_not_found", f"frame {frame} is outside {p['frame_start']}..{p['frame_end']}")
    path = walks.walk_dir(current_state().config.walks_dir, walk_id) / walks.frame_name(frame)
    if not path.exists():
        raise ApiError(404, "frame_not_found", f"frame {frame} is not rendered yet (walk is {walk['state']})")
    return send_file(path, mimetype="image/png", max_age=0)


# -- OpenAPI ------------------------------------------------------------------------------
_MODEL = {"oneOf": [
    {"type": "object", "required": ["job_id"], "properties": {"job_id": {"type": "integer"}, "step": {"type": "integer"}}},
    {"type": "object", "required": ["model_id"], "properties": {"model_id": {"type": "string"}}},
]}
_WID = {"name": "walk_id", "in": "path", "required": True, "schema": {"type": "integer"}}

OPENAPI_PATHS = {
    "/api/v1/generate": {
        "post": {
            "summary": "Generate images: one seed -> image/png, several -> application/zip",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["model", "seeds"], "properties": {
                    "model": _MODEL, "seeds": {"oneOf": [{"type": "array", "items": {"type": "integer"}}, {"type": "string"}]},
                    "psi": {"type": "number"}, "noise_mode": {"enum": list(NOISE_MODES)}}}}}},
            "responses": {"200": {"description": "PNG or zip of PNGs",
                                  "content": {"image/png": {}, "application/zip": {}}},
                          **error_responses(400, 401, 404, 422)},
        }
    },
    "/api/v1/walks": {
        "post": {
            "summary": "Render a latent walk in the background",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["model", "waypoints"], "properties": {
                    "model": _MODEL, "waypoints": {"type": "array", "items": {"type": "object"}},
                    "frame_start": {"type": "integer"}, "frame_end": {"type": "integer"},
                    "interpolation": {"enum": list(INTERPOLATIONS)}, "easing": {"type": "string"},
                    "loop": {"type": "boolean"}, "psi": {"type": "number"},
                    "noise_mode": {"enum": list(NOISE_MODES)}}}}}},
            "responses": {"202": json_response("The walk {id, state, frames_done, frames_total}"),
                          **error_responses(400, 401, 404, 422)},
        }
    },
    "/api/v1/walks/{walk_id}": {
        "get": {"summary": "Walk progress", "parameters": [_WID],
                "responses": {"200": json_response("The walk"), **error_responses(401, 404)}},
    },
    "/api/v1/walks/{walk_id}/frames.zip": {
        "get": {"summary": "All frames of a completed walk", "parameters": [_WID],
                "responses": {"200": {"description": "zip of frame_NNNNN.png", "content": {"application/zip": {}}},
                              **error_responses(401, 404, 409)}},
    },
    "/api/v1/walks/{walk_id}/frames/{frame}.png": {
        "get": {"summary": "One rendered frame", "parameters": [
            _WID, {"name": "frame", "in": "path", "required": True, "schema": {"type": "integer"}}],
                "responses": {"200": {"description": "PNG", "content": {"image/png": {}}}, **error_responses(401, 404)}},
    },
}
