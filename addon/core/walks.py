"""Latent-walk requests from plain waypoint data: validation and the POST /walks body (no bpy).

The bpy side (addon/walks.py) reads the scene's waypoints and keyframes into `Waypoint`s;
everything that can be wrong with them is found here, before anything is sent.
"""

from __future__ import annotations

import json
from typing import NamedTuple

from .limits import MIN_WALK_WAYPOINTS


class WalkError(ValueError):
    pass


class Waypoint(NamedTuple):
    frame: int
    seed: int
    use_vector: bool = False
    vector: str = ""  # the stored latent as JSON numbers, used when use_vector
    space: str = "Z"  # what `vector` is: "Z" (a z vector) or "W" (a w / W+ latent, e.g. from a projection)
    mix: bool = False  # style mixing: layers >= mix_from_layer come from mix_seed
    mix_seed: int = 0
    mix_from_layer: int = 0


def waypoint_payload(waypoints):
    """The waypoints as the server wants them: sorted by frame, {frame, seed}, {frame, z} or
    {frame, w}, with {mix: {seed, from_layer}} when style-mixed (then the walk runs in W)."""
    out = []
    seen = set()
    for wp in sorted(waypoints, key=lambda w: w.frame):
        if wp.frame in seen:
            raise WalkError(f"Two waypoints share frame {wp.frame}: move one of them")
        seen.add(wp.frame)
        if wp.use_vector:
            key = {"frame": wp.frame, ("w" if wp.space == "W" else "z"): _vector(wp)}
        else:
            key = {"frame": wp.frame, "seed": wp.seed}
        if wp.mix:
            key["mix"] = {"seed": wp.mix_seed, "from_layer": wp.mix_from_layer}
        out.append(key)
    return out


def _numbers(values):
    return isinstance(values, list) and bool(values) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _vector(wp):
    """The stored latent: a list of numbers; a w may also be one list per layer (W+)."""
    try:
        z = json.loads(wp.vector)
        per_layer = wp.space == "W" and isinstance(z, list) and bool(z) and all(_numbers(row) for row in z)
        if not (_numbers(z) or per_layer):
            raise ValueError
    except ValueError:
        raise WalkError(f"The stored vector of the waypoint at frame {wp.frame} is not a list of numbers") from None
    return z


def walk_body(model, waypoints, frame_start, frame_end, interpolation, easing, loop, psi):
    """The POST /walks body; WalkError when there is nothing to walk along."""
    payload = waypoint_payload(waypoints)
    if len(payload) < MIN_WALK_WAYPOINTS:
        have = "no waypoint" if not payload else "one waypoint, which would give the same image on every frame"
        raise WalkError(f"A walk needs at least {MIN_WALK_WAYPOINTS} waypoints and this one has {have}: "
                        "add waypoints at other frames (Latent Walk > +)")
    if frame_end < frame_start:
        raise WalkError("The scene's frame range is empty")
    return {
        "model": model,
        "waypoints": payload,
        "frame_start": frame_start,
        "frame_end": frame_end,
        "interpolation": interpolation,
        "easing": easing,
        "loop": loop,
        "psi": psi,
    }
