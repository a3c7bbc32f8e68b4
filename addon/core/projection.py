"""Projection from the add-on, without bpy: an image file -> POST /projections -> poll -> the
latent that reproduces it, ready to be stored on a walk waypoint.

The operator (addon/operators/projection.py) saves the image on the main thread and hands
its path here; `project_image` runs on a worker thread.
"""

from __future__ import annotations

import base64
import json
import os
import time

from . import api
from .estimate import Estimate
from .messages import CHECK_SERVER_LOG, server_text
from .work import WorkError, resolve_model

# The server reads JSON bodies up to 16 MB and base64 adds a third: files above this would
# be refused there, so they are refused here, before the upload, with a way out.
MAX_IMAGE_BYTES = 11 * 1024 * 1024


def projection_body(model, image_path, steps, w_plus, loss="dfeat", seed=0):
    """The POST /projections body for an image file (its bytes as base64)."""
    try:
        size = os.path.getsize(image_path)
    except OSError:
        raise WorkError(f"The image {image_path} cannot be read") from None
    if size == 0:
        raise WorkError(f"The image {image_path} is empty")
    if size > MAX_IMAGE_BYTES:
        raise WorkError(f"The image is {size / 2 ** 20:.0f} MB; the server takes up to "
                        f"{MAX_IMAGE_BYTES // 2 ** 20} MB: render at a lower resolution or pick a smaller file")
    with open(image_path, "rb") as fh:
        data = base64.b64encode(fh.read()).decode("ascii")
    return {"model": model, "image": data, "steps": int(steps), "w_plus": bool(w_plus), "loss": loss,
            "seed": int(seed)}


def latent_text(result):
    """A finished projection's latent as the JSON a waypoint stores: w [w_dim], or ws
    [num_ws][w_dim] in W+ mode (sent back as the walk key's `w`)."""
    latent = result["ws"] if result["w_plus"] or result.get("w") is None else result["w"]
    return json.dumps(latent, separators=(",", ":"))


def project_image(task, client, body, poll_interval=0.5, timeout=3600):
    """POST /projections, follow it to the end; returns the latent and what to tell the user."""
    body = {**body, "model": resolve_model(client, body["model"])}
    task.progress(0.02, "uploading the image")
    proj = client.create_projection(body)
    deadline = time.monotonic() + timeout
    pace = Estimate()
    while proj["state"] != api.PROJECTION_DONE:
        if proj["state"] == api.PROJECTION_FAILED:
            raise WorkError("The server could not project the image: "
                            + server_text(proj["error"] or CHECK_SERVER_LOG))
        done, total = proj["steps_done"], proj["steps"]
        loss = f", loss {proj['loss']:.3f}" if proj.get("loss") is not None else ""
        task.progress(0.05 + 0.9 * done / max(1, total), "projecting " + pace.text(done, total, "step") + loss)
        if time.monotonic() > deadline:
            raise WorkError("The projection took too long: see whether the server is still working on it")
        task.sleep(poll_interval)
        proj = client.get_projection(proj["id"])
    result = proj["result"]
    return {"projection_id": proj["id"], "vector": latent_text(result), "w_plus": result["w_plus"],
            "final_loss": result["final_loss"], "loss_kind": proj["loss_kind"], "note": proj["note"],
            "model": body["model"]}


def project_file(task, client, model, image_path, steps, w_plus, loss="dfeat", remove_after_upload=False):
    """`project_image` for an image file (read on this thread). `remove_after_upload`: the file
    is the add-on's own temporary copy of the render, removed once its bytes are read."""
    try:
        body = projection_body(model, image_path, steps, w_plus, loss)
    finally:
        if remove_after_upload and os.path.exists(image_path):
            os.remove(image_path)
    return project_image(task, client, body)
