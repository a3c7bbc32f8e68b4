"""Latent-walk waypoints: stored in the scene, timed by keyframes.

Every waypoint has a stable `uid`. The scene property `latent.walk_key` carries one
constant keyframe per waypoint (value = uid, at the waypoint's frame), so moving a key in
the Dope Sheet / Timeline re-times the walk; `sync_from_keyframes` reads the keys back.
Editing a waypoint's frame in the panel moves its key.
"""

from __future__ import annotations

import json

import bpy

DATA_PATH = "latent.walk_key"


class WalkError(ValueError):
    pass


_syncing = False  # guards the frame-update callback while we write frames ourselves


def _fcurves(scene):
    ad = scene.animation_data
    if ad is None or ad.action is None:
        return []
    action = ad.action
    legacy = getattr(action, "fcurves", None)
    if legacy is not None and len(legacy):
        return list(legacy)
    try:
        from bpy_extras import anim_utils

        bag = anim_utils.action_get_channelbag_for_slot(action, ad.action_slot)
    except (ImportError, AttributeError):
        bag = None
    return list(bag.fcurves) if bag is not None else []


def key_curve(scene):
    for fc in _fcurves(scene):
        if fc.data_path == DATA_PATH:
            return fc
    return None


def _key_for(fc, uid):
    if fc is None:
        return None
    for kp in fc.keyframe_points:
        if round(kp.co[1]) == uid:
            return kp
    return None


def _insert_key(scene, uid, frame):
    settings = scene.latent
    old = settings.walk_key
    settings.walk_key = uid
    scene.keyframe_insert(DATA_PATH, frame=frame)
    settings.walk_key = old
    fc = key_curve(scene)
    kp = _key_for(fc, uid)
    if kp is not None:
        kp.interpolation = "CONSTANT"
    return kp


def _move_key(scene, uid, frame):
    fc = key_curve(scene)
    kp = _key_for(fc, uid)
    if kp is None:
        _insert_key(scene, uid, frame)
        return
    delta = frame - kp.co[0]
    kp.co[0] = frame
    kp.handle_left[0] += delta
    kp.handle_right[0] += delta
    fc.update()


def on_waypoint_frame_changed(waypoint, context):
    if _syncing or waypoint.uid == 0:
        return
    scene = waypoint.id_data
    if isinstance(scene, bpy.types.Scene):
        _move_key(scene, waypoint.uid, waypoint.frame)


def add_waypoint(scene, frame, seed, vector=None):
    global _syncing
    settings = scene.latent
    uid = max((w.uid for w in settings.waypoints), default=0) + 1
    for w in settings.waypoints:
        if w.frame == frame:
            raise WalkError(f"There is already a waypoint at frame {frame}")
    wp = settings.waypoints.add()
    _syncing = True
    try:
        wp.uid = uid
        wp.frame = frame
        wp.seed = seed
        if vector is not None:
            wp.vector = json.dumps([float(v) for v in vector])
            wp.use_vector = True
    finally:
        _syncing = False
    _insert_key(scene, uid, frame)
    settings.waypoint_index = len(settings.waypoints) - 1
    return wp


def remove_waypoint(scene, index):
    settings = scene.latent
    if not 0 <= index < len(settings.waypoints):
        raise WalkError("Select a waypoint to remove")
    uid = settings.waypoints[index].uid
    fc = key_curve(scene)
    kp = _key_for(fc, uid)
    if kp is not None:
        fc.keyframe_points.remove(kp)
    settings.waypoints.remove(index)
    settings.waypoint_index = max(0, min(index, len(settings.waypoints) - 1))


def sync_from_keyframes(scene):
    """Read the waypoint keys back into waypoint frames (keys moved in the Dope Sheet)."""
    global _syncing
    fc = key_curve(scene)
    if fc is None:
        return
    frames = {round(kp.co[1]): int(round(kp.co[0])) for kp in fc.keyframe_points}
    _syncing = True
    try:
        for wp in scene.latent.waypoints:
            if wp.uid in frames and wp.frame != frames[wp.uid]:
                wp.frame = frames[wp.uid]
    finally:
        _syncing = False


def walk_waypoints(scene):
    """The waypoints as the server wants them, sorted by frame."""
    sync_from_keyframes(scene)
    out = []
    seen = set()
    for wp in sorted(scene.latent.waypoints, key=lambda w: w.frame):
        if wp.frame in seen:
            raise WalkError(f"Two waypoints share frame {wp.frame}: move one of them")
        seen.add(wp.frame)
        if wp.use_vector:
            try:
                z = json.loads(wp.vector)
                if not isinstance(z, list) or not z or not all(isinstance(v, (int, float)) for v in z):
                    raise ValueError
            except ValueError:
                raise WalkError(f"The stored vector of the waypoint at frame {wp.frame} is not a list of numbers") \
                    from None
            out.append({"frame": wp.frame, "z": z})
        else:
            out.append({"frame": wp.frame, "seed": wp.seed})
    return out


def walk_request(scene, model):
    settings = scene.latent
    waypoints = walk_waypoints(scene)
    if not waypoints:
        raise WalkError("Add at least one waypoint (Latent > Walk > Add Waypoint)")
    if scene.frame_end < scene.frame_start:
        raise WalkError("The scene's frame range is empty")
    return {
        "model": model,
        "waypoints": waypoints,
        "frame_start": scene.frame_start,
        "frame_end": scene.frame_end,
        "interpolation": settings.interpolation,
        "easing": settings.easing,
        "loop": settings.loop,
        "psi": settings.walk_psi,
    }
