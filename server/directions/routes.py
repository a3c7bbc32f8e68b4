"""GET /models/{model_id}/directions and .../directions/{direction_id}/preview.png.

`model_id` is what GET /models lists (a base model's id, or `job:<id>:<step>`; `job:<id>`
alone means the job's newest snapshot), the same models /generate and /walks take.
Computing directions loads the model on the generation thread (cached after); preview
strips are rendered there too, holding the device lock per batch like /generate.
"""

from __future__ import annotations

import math
import re
from urllib.parse import quote

from flask import Blueprint, Flask, Response, jsonify, request

from gan_core import rules
from server.config import API_PREFIX
from server.directions.cache import DirectionCache, RangeDirections
from server.directions.schemas import K_QUERY, LAYERS_QUERY, PREVIEW_QUERIES, DirectionListing
from server.errors import ApiError, invalid_input, server_busy
from server.generation.gpu import BATCH, device_lock
from server.generation.render_queue import QueueFull
from server.models.resolve import resolve_model
from server.models.schemas import ModelRef
from server.openapi import doc
from server.state import ServerState, current_state
from server.validation import parse, rule_check

bp = Blueprint("directions", __name__, url_prefix=API_PREFIX)
_INT = re.compile(r"[+-]?\d{1,20}")


# ----------------------------------------------------------------------------- shared with walks


def model_from_id(state: ServerState, model_id: str):
    """(checkpoint path, canonical model reference) of a model id from a URL."""
    return resolve_model(state, parse(ModelRef, {"model_id": model_id}))


def canonical_id(model: dict) -> str:
    """The id that names exactly this network: a job's snapshot with its step."""
    if model.get("job_id") is not None:
        return f"job:{model['job_id']}:{model['step']}"
    return str(model["model_id"])


def range_directions(state: ServerState, path, range_name: str) -> RangeDirections:
    """A range's directions of the model file at `path`: cached, else computed on the
    generation thread (it may have to load the model). 503 when that queue is full."""
    def compute() -> RangeDirections:
        try:
            return state.renders.run(lambda: _compute(state, path, range_name))
        except QueueFull:
            raise server_busy("generate requests") from None

    return state.directions.get(path, range_name, compute)


def _compute(state: ServerState, path, range_name: str) -> RangeDirections:
    from gan_core.directions import DirectionError, compute_directions  # torch-side: with the model

    runner = state.model_cache.get(path)
    try:
        found = compute_directions(runner, range_name, rules.MAX_DIRECTIONS)
    except DirectionError as exc:  # e.g. a model too small for the range
        raise invalid_input(str(exc)) from None
    return RangeDirections(num_ws=int(runner.num_ws), w_dim=int(runner.w_dim), directions=tuple(found))


# ----------------------------------------------------------------------------- query strings


def _query(name: str, default, kind):
    """A query value as `kind` when it reads as one; otherwise the text, for the rule's check
    to refuse with its own message."""
    raw = request.args.get(name)
    if raw is None:
        return default
    if kind is int and _INT.fullmatch(raw.strip()):
        return int(raw)
    if kind is float:
        try:
            value = float(raw)
        except ValueError:
            return raw
        return value if math.isfinite(value) else raw
    return raw


# ----------------------------------------------------------------------------- routes


@bp.get("/models/<path:model_id>/directions")
@doc("Semantic directions of a model, strongest first (SeFa: closed form from the model's own weights, "
     "no data needed)", query=(LAYERS_QUERY, K_QUERY), ok={200: ("The directions", DirectionListing)},
     errors=(401, 404, 422, 503))
def list_directions(model_id: str):
    state = current_state()
    range_name = rule_check(rules.check_direction_range, _query("layers", "all", str), "layers")
    k = rule_check(rules.check_direction_count, _query("k", rules.DEFAULT_DIRECTIONS, int), "k")
    path, model = model_from_id(state, model_id)
    entry = range_directions(state, path, range_name)
    base = f"{API_PREFIX}/models/{quote(canonical_id(model), safe=':')}/directions"
    return jsonify({
        "model": model, "layers": range_name, "num_ws": entry.num_ws, "w_dim": entry.w_dim,
        "directions": [{**d.to_json(), "preview_url": f"{base}/{d.id}/preview.png"} for d in entry.directions[:k]],
    })


@bp.get("/models/<path:model_id>/directions/<direction_id>/preview.png")
@doc("A direction's preview strip: the centre image (seed, psi) moved by -amount..+amount along it, "
     "left to right", query=PREVIEW_QUERIES, ok={200: ("PNG, `steps` images side by side", "image/png")},
     errors=(401, 404, 422, 503))
def direction_preview(model_id: str, direction_id: str):
    from gan_core.directions import DirectionError, parse_direction_id

    state = current_state()
    seed = rule_check(rules.check_int, _query("seed", 0, int), "seed", 0, rules.MAX_SEED)
    amount = rule_check(rules.check_number, _query("amount", rules.DEFAULT_PREVIEW_AMOUNT, float), "amount", 0.0,
                        rules.MAX_DIRECTION_AMOUNT)
    steps = rule_check(rules.check_int, _query("steps", rules.PREVIEW_STEPS, int), "steps", 2, rules.MAX_PREVIEW_STEPS)
    psi = rule_check(rules.check_psi, _query("psi", rules.PREVIEW_PSI, float), "psi")
    try:
        range_name, rank = parse_direction_id(direction_id)
    except DirectionError as exc:
        raise ApiError(404, "direction_not_found", str(exc)) from None
    path, _ = model_from_id(state, model_id)
    entry = range_directions(state, path, range_name)
    if rank >= len(entry.directions):
        raise ApiError(404, "direction_not_found", f"this model has {len(entry.directions)} {range_name} directions; "
                                                   f"no {direction_id!r}")
    direction = entry.directions[rank]
    try:
        png = state.renders.run(lambda: _strip(state, path, direction, seed, amount, steps, psi))
    except QueueFull:
        raise server_busy("generate requests") from None
    return Response(png, mimetype="image/png")


def _strip(state: ServerState, path, direction, seed: int, amount: float, steps: int, psi: float) -> bytes:
    """On the render thread: the strip's latents, rendered under the device lock per batch."""
    import numpy as np

    from gan_core.directions import preview_ws
    from gan_core.generate import encode_png, image_grid
    from gan_core.latent import seeds_to_z

    runner = state.model_cache.get(path)
    lock = device_lock(state.device)
    with lock:
        centre = runner.map_z(seeds_to_z([seed], runner.z_dim), psi=psi)[0]
    ws = preview_ws(centre, direction, amount, steps)
    images = []
    for i in range(0, steps, BATCH):
        with lock:
            images.append(runner.synthesize_ws(ws[i:i + BATCH], batch_size=BATCH))
    return encode_png(image_grid(np.concatenate(images), cols=steps))


def init_app(app: Flask, state: ServerState) -> None:
    # Renders on the generation package's queue with its model cache (registered before it).
    if state.renders is None:
        raise RuntimeError("server.directions needs server.generation's render queue: register generation first")
    state.directions = DirectionCache()
    app.register_blueprint(bp)
