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


def waypoint_payload(waypoints):
    """The waypoints as the server wants them: sorted by frame, {frame, seed} or {frame, z}."""
    out = []
    seen = set()
    for wp in sorted(waypoints, key=lambda w: w.frame):
        if wp.frame in seen:
            raise WalkError(f"Two waypoints share frame {wp.frame}: move one of them")
        seen.add(wp.frame)
        if wp.use_vector:
            out.append({"frame": wp.frame, "z": _vector(wp)})
        else:
            out.append({"frame": wp.frame, "seed": wp.seed})
    return out


def _vector(wp):
    try:
        z = json.loads(wp.vector)
        if not isinstance(z, list) or not z or not all(isinstance(v, (int, float)) for v in z):
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
