"""The `directions` of a walk: resolved against the walk's model when the walk is created,
stored with it (vectors included, so a resumed walk renders exactly the same), and turned
back into gan_core edits by the walk runner."""

from __future__ import annotations

from server.directions.routes import range_directions
from server.errors import invalid_input
from server.state import ServerState


def resolve_walk_directions(state: ServerState, path, items: list, frame_start: int, frame_end: int) -> list[dict]:
    """The walk body's `directions` as stored in its params: [{id, vector, layers, amounts}].
    Every check the renderer makes is made here first (422 naming the entry)."""
    from gan_core.directions import DirectionError, WalkDirection, check_walk_directions, parse_direction_id

    if not items:
        return []
    shape = range_directions(state, path, "all")  # the model's W+ shape (and loads it once)
    stored, edits = [], []
    for i, item in enumerate(items):
        where = f"directions[{i}]"
        if (item.id is None) == (item.vector is None):
            raise invalid_input(f"{where} needs exactly one of id (a direction of the model) or vector")
        if item.id is not None:
            if item.layers is not None:
                raise invalid_input(f"{where}: a direction given by id edits its own layers; leave layers out")
            try:
                range_name, rank = parse_direction_id(item.id)
            except DirectionError as exc:
                raise invalid_input(f"{where}: {exc}") from None
            found = range_directions(state, path, range_name).directions
            if rank >= len(found):
                raise invalid_input(f"{where}: this model has {len(found)} {range_name} directions; no {item.id!r}")
            vector, layers = found[rank].vector, found[rank].layers
        else:
            vector, layers = item.vector, tuple(item.layers) if item.layers is not None else (0, shape.num_ws)
        edits.append(WalkDirection(vector, layers, item.amounts))
        stored.append({"id": item.id, "layers": list(layers), "amounts": list(item.amounts)})
    try:
        checked = check_walk_directions(edits, frame_start, frame_end, shape.num_ws, shape.w_dim)
    except DirectionError as exc:
        raise invalid_input(str(exc)) from None
    for entry, edit in zip(stored, checked):
        entry["vector"] = [float(v) for v in edit.vector]
    return stored


def walk_directions(params: dict) -> list:
    """A stored walk's directions as gan_core.directions.WalkDirection (none: [])."""
    import numpy as np

    from gan_core.directions import WalkDirection

    return [WalkDirection(np.asarray(d["vector"], dtype=np.float32), tuple(d["layers"]),
                          np.asarray(d["amounts"], dtype=np.float32)) for d in params.get("directions") or ()]
