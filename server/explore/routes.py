"""POST /explore: the latent-space explorer's grid, rendered on the generation thread."""

from __future__ import annotations

import base64

from flask import Blueprint, Flask, jsonify

from server.config import API_PREFIX
from server.errors import server_busy
from server.explore.schemas import ExploreOut, ExploreRequest
from server.generation.gpu import BATCH, device_lock
from server.generation.render_queue import QueueFull
from server.models.resolve import resolve_model
from server.openapi import doc
from server.state import ServerState, current_state
from server.validation import json_body, parse

bp = Blueprint("explore", __name__, url_prefix=API_PREFIX)


@bp.post("/explore")
@doc("Explore the latent space: an N x N grid of neighbours of a centre latent, with every cell's z and w "
     "(pick a cell by sending its z as the next centre)", body=ExploreRequest,
     ok={200: ("The grid", ExploreOut)}, errors=(400, 401, 404, 422, 503))
def explore():
    state = current_state()
    body = parse(ExploreRequest, json_body())
    path, model = resolve_model(state, body.model)
    try:
        answer = state.renders.run(lambda: _render(state, path, body))
    except QueueFull:
        raise server_busy("generate requests") from None
    return jsonify({"model": model, **answer})


def _b64_png(image) -> str:
    from gan_core.generate import encode_png

    return base64.b64encode(encode_png(image)).decode("ascii")


def _render(state: ServerState, path, body: ExploreRequest) -> dict:
    """On the render thread (no request context): load (cached), render the grid, encode.
    The device lock is held per batch, like /generate, so walks interleave with it."""
    from gan_core.explore import explore as explore_grid

    runner = state.model_cache.get(path)
    seamless, _ = runner.texture_mode(body.seamless, 1)
    grid = explore_grid(runner, seed=body.center.seed, z=body.center.z, grid=body.grid, distance=body.distance,
                        neighbourhood_seed=body.seed, psi=body.psi, noise_mode=body.noise_mode, batch_size=BATCH,
                        seamless=body.seamless, hold=lambda: device_lock(state.device))
    cells = grid.cells()
    with_cells = body.images in ("cells", "both")
    for cell, image in zip(cells, grid.images):
        cell["png"] = _b64_png(image) if with_cells else None
    return {
        "grid": body.grid, "distance": body.distance, "psi": body.psi, "seed": body.seed,
        "noise_mode": body.noise_mode, "seamless": seamless, "resolution": int(grid.images.shape[1]),
        "center_index": grid.center_index,
        "grid_png": _b64_png(grid.grid_image()) if body.images in ("grid", "both") else None,
        "cells": cells,
    }


def init_app(app: Flask, state: ServerState) -> None:
    # Uses the generation package's render queue and model cache (registered before it).
    if state.renders is None:
        raise RuntimeError("server.explore needs server.generation's render queue: register generation first")
    app.register_blueprint(bp)
