"""Latent-walk waypoints: stored in the scene, timed by keyframes.

Every waypoint has a stable `uid`. The scene property `latent.walk_key` carries one
constant keyframe per waypoint (value = uid, at the waypoint's frame), so moving a key in
the Dope Sheet / Timeline re-times the walk; `sync_from_keyframes` reads the keys back.
Editing a waypoint's frame in the panel moves its key.
"""

from __future__ import annotations

import bpy

from . import directions
from .core import seamless
from .core.walks import WalkError, Waypoint, walk_body

DATA_PATH = "latent.walk_key"

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


def add_waypoint(scene, frame, seed):
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


def _waypoints(scene):
    return [Waypoint(wp.frame, wp.seed, wp.use_vector, wp.vector, wp.vector_space, wp.mix, wp.mix_seed,
                     wp.mix_from_layer) for wp in scene.latent.waypoints]


def walk_request(scene, model):
    """The POST /walks body for the scene's frame range; WalkError when it cannot work."""
    sync_from_keyframes(scene)
    s = scene.latent
    body = walk_body(model, _waypoints(scene), scene.frame_start, scene.frame_end, s.interpolation, s.easing,
                     s.loop, s.walk_psi)
    try:
        body.update(seamless.output_fields(s.walk_seamless, s.walk_size_multiplier))
    except ValueError as exc:
        raise WalkError(str(exc)) from None
    body.update(directions.walk_fields(scene, body["frame_start"], body["frame_end"]))  # keyed amounts, per frame
    return body
