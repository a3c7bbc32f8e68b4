"""Semantic directions, without bpy: fetching a model's directions and their preview strips
(on a worker thread), and the `directions` of a walk request from sampled amounts.

A direction is named by its id ("coarse:0" = the strongest coarse direction); the server
resolves ids against the walk's own model, so the add-on never sends vectors. Amounts are
sampled by the bpy side (addon/directions.py) once per frame of the walk's range.
"""

from __future__ import annotations

import math
import os
from urllib.parse import urlencode

from . import limits
from .formatting import safe_name
from .walks import WalkError
from .work import WorkError, resolve_model


class DirectionsError(WalkError):
    """Directions that cannot be fetched or sent; the message is for the user."""


def model_id(model):
    """The id GET /models/{id}/directions takes, for a resolved model reference."""
    if model.get("job_id") is not None:
        if model.get("step") is None:
            raise DirectionsError("Internal: a job model must be resolved to its step first")
        return f"job:{model['job_id']}:{model['step']}"
    return str(model["model_id"])


def listing_query(layers, k):
    if layers not in limits.values(limits.DIRECTION_RANGES):
        raise DirectionsError(f"Unknown layer range {layers!r}")
    if not 1 <= int(k) <= limits.MAX_DIRECTIONS:
        raise DirectionsError(f"Ask for 1 to {limits.MAX_DIRECTIONS} directions")
    return urlencode({"layers": layers, "k": int(k)})


def preview_query(amount, seed=0, psi=limits.PREVIEW_PSI):
    if not 0 <= float(amount) <= limits.MAX_DIRECTION_AMOUNT:
        raise DirectionsError(f"The preview amount must be from 0 to {limits.MAX_DIRECTION_AMOUNT:g}")
    return urlencode({"amount": float(amount), "seed": int(seed), "psi": float(psi)})


def parse_listing(body):
    """The listing's directions as plain dicts: {id, range, index, layers: [start, end), eigenvalue}."""
    try:
        out = []
        for d in body["directions"]:
            start, end = (int(x) for x in d["layers"])
            out.append({"id": str(d["id"]), "range": str(d["range"]), "index": int(d["index"]),
                        "layers": [start, end], "eigenvalue": float(d["eigenvalue"])})
        return out
    except (KeyError, TypeError, ValueError):
        raise DirectionsError("The server's list of directions is not in the expected form") from None


def preview_file(folder, model, direction_id):
    """Where a direction's preview strip goes: one file per model and direction, replaced by a new fetch."""
    return os.path.join(folder, f"{safe_name(model_id(model), 60)}_{safe_name(direction_id)}.png")


def fetch_directions(task, client, model, layers, k, folder, preview_amount):
    """(worker) List a model's directions of one layer range and download each one's preview strip."""
    model = resolve_model(client, model)
    ident = model_id(model)
    directions = parse_listing(client.list_directions(ident, listing_query(layers, k)))
    os.makedirs(folder, exist_ok=True)
    query = preview_query(preview_amount)
    for i, d in enumerate(directions):
        task.check()
        task.progress(i / max(1, len(directions)), f"preview {i + 1}/{len(directions)}")
        d["preview"] = client.download_direction_preview(ident, d["id"], query, preview_file(folder, model, d["id"]))
    if not directions:
        raise WorkError("The server listed no directions for this model")
    return {"model": model, "layers": layers, "directions": directions}


# ----------------------------------------------------------------------------- walks


def check_amounts(name, amounts, frame_start):
    """Sampled amounts as JSON numbers; DirectionsError naming the direction and frame when one
    is out of the server's range (a keyframe pushed too far, a runaway extrapolation)."""
    out = []
    for i, value in enumerate(amounts):
        value = float(value)
        if not math.isfinite(value) or abs(value) > limits.MAX_DIRECTION_AMOUNT:
            raise DirectionsError(f"Direction {name} is {value:g} at frame {frame_start + i}: amounts go from "
                                  f"-{limits.MAX_DIRECTION_AMOUNT:g} to {limits.MAX_DIRECTION_AMOUNT:g}; "
                                  "change its keyframes")
        out.append(value)
    return out


def walk_directions(sampled, frame_start, frame_end):
    """The walk body's `directions` from [(label, direction id, amounts per frame)]: one entry per
    direction that moves at all (a direction left at 0 changes nothing and is not sent)."""
    frames = frame_end - frame_start + 1
    out = []
    for label, direction_id, amounts in sampled:
        if len(amounts) != frames:
            raise DirectionsError(f"Direction {label}: {len(amounts)} amounts for {frames} frames")
        values = check_amounts(label, amounts, frame_start)
        if any(v != 0.0 for v in values):
            out.append({"id": direction_id, "amounts": values})
    if len(out) > limits.MAX_WALK_DIRECTIONS:
        raise DirectionsError(f"{len(out)} directions move in this walk; at most {limits.MAX_WALK_DIRECTIONS} "
                              "may: set the others to 0")
    return out
