"""POST /generate: seeds -> one PNG, or a zip of PNGs."""

from __future__ import annotations

import io
import zipfile

from flask import Blueprint, Flask, Response

from server.config import API_PREFIX
from server.errors import server_busy
from server.generation.gpu import batch_for, device_lock
from server.generation.render_queue import QueueFull, RenderQueue
from server.generation.schemas import GenerateRequest
from server.models.resolve import resolve_model
from server.openapi import doc
from server.state import ServerState, current_state
from server.validation import json_body, parse

bp = Blueprint("generation", __name__, url_prefix=API_PREFIX)


@bp.post("/generate")
@doc("Generate images: one seed -> image/png, several -> application/zip", body=GenerateRequest,
     ok={200: ("PNG or zip of PNGs", ("image/png", "application/zip"))}, errors=(400, 401, 404, 422, 503))
def generate():
    state = current_state()
    body = parse(GenerateRequest, json_body())
    path, _ = resolve_model(state, body.model)
    try:
        data, mimetype, headers = state.renders.run(lambda: _render(state, path, body))
    except QueueFull:
        raise server_busy("generate requests") from None
    return Response(data, mimetype=mimetype, headers=headers)


def _render(state: ServerState, path, body: GenerateRequest) -> tuple[bytes, str, dict]:
    """On the render thread (no request context): load (cached), generate, encode."""
    from gan_core.generate import encode_png  # torch: loaded with the first model anyway

    runner = state.model_cache.get(path)
    seeds, pngs = body.seeds, []
    lock = device_lock(state.device)
    # One lock hold per batch: a walk or another request never waits more than a batch. Enlarged
    # textures (size_multiplier) come fewer per batch, and each batch is encoded before the next
    # is rendered, so only one batch of raw images is in memory at a time.
    batch = batch_for(body.size_multiplier)
    for i in range(0, len(seeds), batch):
        with lock:
            images = runner.generate(seeds=seeds[i:i + batch], psi=body.psi, noise_mode=body.noise_mode,
                                     batch_size=batch, seamless=body.seamless, size_multiplier=body.size_multiplier)
        pngs.extend(encode_png(img) for img in images)
    if len(seeds) == 1:
        return pngs[0], "image/png", {}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for seed, png in zip(seeds, pngs):
            zf.writestr(f"seed{seed:04d}.png", png)
    return buf.getvalue(), "application/zip", {"Content-Disposition": 'attachment; filename="images.zip"'}


def init_app(app: Flask, state: ServerState) -> None:
    state.renders = RenderQueue(state.config.generate_queue)
    state.add_shutdown_hook(state.renders.close)
    app.register_blueprint(bp)
