"""The latent-space explorer without Blender: the request, the history, the cells.

The server answers POST /explore with an N x N grid around a centre latent; every cell
carries its exact z and w and its PNG. Picking a cell makes its z the next centre (the
server puts the centre back in `center_index`, so the picked image is seen again), the
centre before goes on a history, and Back takes it off again.

The explorer's state that is worth saving with the .blend (the centre and the history) is
plain JSON (`dump_state` / `load_state`); the cells of the grid on screen are not saved:
their images are previews in a temporary folder.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os

from . import api, limits
from .work import WorkError, resolve_model

HISTORY_LIMIT = 100  # centres kept for Back; the oldest go first


class ExploreError(ValueError):
    """Something about the explorer that cannot work: the message says what to do."""


# ----------------------------------------------------------------------------- centres


def seed_center(seed):
    return {"seed": int(seed)}


def cell_center(cell):
    """The centre that shows `cell` again: its exact z."""
    return {"z": list(cell["z"])}


def check_center(center):
    """`center` if it is {"seed": int} or {"z": [numbers]}, else ExploreError."""
    if isinstance(center, dict) and set(center) == {"seed"}:
        seed = center["seed"]
        if isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed:
            return center
    if isinstance(center, dict) and set(center) == {"z"}:
        z = center["z"]
        if isinstance(z, list) and z and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in z):
            return center
    raise ExploreError("The explorer's centre is broken: press Explore to start again from a seed")


def center_label(center):
    """The centre in words for the panel."""
    if "seed" in center:
        return f"seed {center['seed']}"
    return f"a picked latent ({_digest(center['z'])})"


def _digest(z):
    return hashlib.sha1(json.dumps(z).encode()).hexdigest()[:8]


# ----------------------------------------------------------------------------- the request


def explore_body(model, center, grid, distance, psi, seed, noise_mode=limits.NOISE_MODE):
    """The POST /explore body; ExploreError for values the UI should not have let through."""
    if not limits.EXPLORE_MIN_GRID <= grid <= limits.EXPLORE_MAX_GRID:
        raise ExploreError(f"The grid must be {limits.EXPLORE_MIN_GRID} to {limits.EXPLORE_MAX_GRID} cells wide")
    if not 0.0 <= distance <= limits.EXPLORE_MAX_DISTANCE:
        raise ExploreError(f"The distance must be from 0 to {limits.EXPLORE_MAX_DISTANCE}")
    if not limits.PSI_MIN <= psi <= limits.PSI_MAX:
        raise ExploreError(f"Truncation psi must be from {limits.PSI_MIN} to {limits.PSI_MAX}")
    return {"model": model, "center": check_center(center), "grid": int(grid), "distance": float(distance),
            "psi": float(psi), "seed": int(seed), "noise_mode": noise_mode, "images": api.EXPLORE_IMAGES}


# ----------------------------------------------------------------------------- state and history


def new_state():
    return {"center": None, "history": []}


def load_state(text):
    """The saved explorer state; a missing or damaged one starts afresh (nothing to go back to)."""
    try:
        state = json.loads(text) if text else new_state()
        center = state.get("center")
        history = [check_center(c) for c in state.get("history", [])]
        return {"center": check_center(center) if center is not None else None, "history": history}
    except (ValueError, AttributeError, TypeError):
        return new_state()


def dump_state(state):
    return json.dumps({"center": state["center"], "history": state["history"]}, separators=(",", ":"))


def recentre(state, center):
    """A new state centred on `center`; the old centre (if any) goes on the history."""
    history = list(state["history"])
    if state["center"] is not None and state["center"] != center:
        history.append(state["center"])
    return {"center": check_center(center), "history": history[-HISTORY_LIMIT:]}


def go_back(state):
    """The state one step back: the last centre comes off the history."""
    if not state["history"]:
        raise ExploreError("Nothing to go back to: pick a cell first")
    history = list(state["history"])
    return {"center": history.pop(), "history": history}


# ----------------------------------------------------------------------------- cells


def pick(cells, index):
    """The cell at `index` of the grid on screen, or ExploreError."""
    if not cells:
        raise ExploreError("There is no grid yet: press Explore")
    if not isinstance(index, int) or not 0 <= index < len(cells):
        raise ExploreError(f"Pick one of the {len(cells)} cells of the grid")
    return cells[index]


def cell_name(cell, model):
    """Datablock name of a cell used as a texture: the model and a digest of its z, so
    another cell never takes the place of an image already in use."""
    from .formatting import model_label

    return f"Latent explore {_digest(cell['z'])} ({model_label(model)})"[:63]


def cell_file(cell, model):
    from .formatting import model_label, safe_name

    return f"latent_{safe_name(model_label(model))}_explore_{_digest(cell['z'])}.png"


def vector_text(values):
    """A latent as the JSON text waypoints and stored latents keep."""
    return json.dumps([float(v) for v in values], separators=(",", ":"))


def parse_vector(text):
    """`vector_text` read back: a list of numbers, or ExploreError."""
    try:
        values = json.loads(text)
    except ValueError:
        values = None
    if not isinstance(values, list) or not values or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise ExploreError("A stored latent must be a list of numbers")
    return values


# ----------------------------------------------------------------------------- the work (worker thread)


def fetch_grid(task, client, body, out_dir):
    """POST /explore and write each cell's PNG to `out_dir` (a folder of its own); returns
    plain data for the main thread: the model as resolved, the centre, every cell with its
    file."""
    body = {**body, "model": resolve_model(client, body["model"])}
    task.progress(0.1, "rendering the grid")
    answer = client.explore(body)
    task.check()
    missing = [f for f in api.EXPLORE_FIELDS if f not in answer]
    if missing:
        raise WorkError(f"The server's explore answer lacks {', '.join(missing)}: is it an older version?")
    os.makedirs(out_dir, exist_ok=True)
    cells = []
    for cell in answer["cells"]:
        try:
            png = base64.b64decode(cell["png"] or "", validate=True)
        except (binascii.Error, ValueError):
            png = b""
        if not png.startswith(b"\x89PNG"):
            raise WorkError("The server sent a grid cell without its image")
        path = os.path.join(out_dir, f"cell_{cell['index']:02d}.png")
        with open(path + ".part", "wb") as fh:
            fh.write(png)
        os.replace(path + ".part", path)
        cells.append({"index": cell["index"], "row": cell["row"], "col": cell["col"], "z": cell["z"],
                      "w": cell["w"], "path": path})
    return {"model": answer["model"], "center": body["center"], "grid": answer["grid"],
            "center_index": answer["center_index"], "resolution": answer["resolution"], "psi": body["psi"],
            "seamless": bool(answer.get("seamless")),
            "cells": cells, "folder": out_dir}
