"""POST /generate: seeds -> one PNG, or a zip of PNGs."""

from __future__ import annotations

import io
import zipfile

from flask import Blueprint, Flask, Response

from server.config import API_PREFIX
from server.generation.gpu import BATCH, device_lock
from server.generation.schemas import GenerateRequest
from server.models.resolve import resolve_model
from server.openapi import doc
from server.state import ServerState, current_state
from server.validation import json_body, parse

bp = Blueprint("generation", __name__, url_prefix=API_PREFIX)


@bp.post("/generate")
@doc("Generate images: one seed -> image/png, several -> application/zip", body=GenerateRequest,
     ok={200: ("PNG or zip of PNGs", ("image/png", "application/zip"))}, errors=(400, 401, 404, 422))
def generate():
    from gan_core.generate import encode_png  # torch: loaded with the first model anyway

    state = current_state()
    body = parse(GenerateRequest, json_body())
    path, _ = resolve_model(state, body.model)
    runner = state.model_cache.get(path)
    seeds, images = body.seeds, []
    lock = device_lock(state.device)
    # One lock hold per batch: a walk or another request never waits more than a batch.
    for i in range(0, len(seeds), BATCH):
        with lock:
            images.extend(runner.generate(seeds=seeds[i:i + BATCH], psi=body.psi, noise_mode=body.noise_mode,
                                          batch_size=BATCH))
    if len(seeds) == 1:
        return Response(encode_png(images[0]), mimetype="image/png")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for seed, img in zip(seeds, images):
            zf.writestr(f"seed{seed:04d}.png", encode_png(img))
    return Response(buf.getvalue(), mimetype="application/zip",
                    headers={"Content-Disposition": 'attachment; filename="images.zip"'})


def init_app(app: Flask, state: ServerState) -> None:
    app.register_blueprint(bp)
