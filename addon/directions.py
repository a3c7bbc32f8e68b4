"""Semantic directions in the scene: one animatable amount per direction, and sampling those
amounts for a walk.

`scene.latent_directions` is a collection of directions fetched from the server (id, layers,
preview strip); each item's `amount` is an ordinary animatable property, so the user keys
it (I over the slider) and edits it in the Graph Editor; its data path on the scene is
`latent_directions[i].amount`. Fetching again updates directions in place by id and adds
new ones at the end, and removing one shifts the F-curves of the ones after it, so a
direction's keys always stay with it.

Sampling for Bake Walk (main thread): each amount's F-curve is evaluated at every frame of
the range (`FCurve.evaluate`, found in the scene action's channelbag for the scene's slot,
Blender 5.0's layered actions): exact for keyframes, interpolation, handles and F-curve
modifiers, and fast, since nothing else in the scene is evaluated. Only when something
else can drive the amounts (drivers on them, NLA tracks) does it step the scene through
the frames (`scene.frame_set`, then the frame the user was on comes back): slower in a
heavy scene, but it is what Blender itself would show on each frame.
"""

from __future__ import annotations

import os

import bpy
from bpy.props import CollectionProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty, StringProperty

from .core import limits
from .core.directions import walk_directions

PATH = "latent_directions[{}].amount"
LIMIT = limits.MAX_DIRECTION_AMOUNT  # the amount property's hard range, +-
_previews = {"collection": None}  # a bpy.utils.previews collection of the preview strips, keyed by path


class LATENT_PG_direction(bpy.types.PropertyGroup):
    # `name` (every PropertyGroup has one) is the label the panel shows, e.g. "Coarse 1"
    direction_id: StringProperty(name="Direction", description="The server's id of the direction, e.g. coarse:0")
    layer_start: IntProperty(name="First layer", description="The first w index it moves")
    layer_end: IntProperty(name="End layer", description="One past the last w index it moves")
    amount: FloatProperty(name="Amount", default=0.0, min=-LIMIT, max=LIMIT, soft_min=-10.0, soft_max=10.0,
                          description="How far Bake Walk moves along this direction on this frame "
                                      "(keyframe it: I over the slider; Graph Editor for curves)")
    preview: StringProperty(name="Preview strip", subtype="FILE_PATH",
                            description="The centre image moved from -a to +a along the direction")
    model: StringProperty(name="Fetched from", description="The model whose direction this is")


class LATENT_PG_direction_options(bpy.types.PropertyGroup):
    layers: EnumProperty(name="Layers", items=limits.DIRECTION_RANGES, default="all",
                         description="Which layers the fetched directions move")
    count: IntProperty(name="Count", default=limits.DEFAULT_DIRECTIONS, min=1, max=limits.MAX_DIRECTIONS,
                       description="How many directions to fetch (the strongest first)")
    preview_amount: FloatProperty(name="Preview amount", default=limits.DEFAULT_PREVIEW_AMOUNT, min=0.0,
                                  max=limits.MAX_DIRECTION_AMOUNT, soft_max=20.0,
                                  description="A preview strip spans -amount .. +amount")


def label_of(direction_id):
    """"coarse:0" -> "Coarse 1" (ranks count from 1 for people)."""
    name, _, rank = direction_id.partition(":")
    return f"{name.capitalize()} {int(rank) + 1}" if rank.isdigit() else direction_id


# -- the collection ----------------------------------------------------------------------

def merge(scene, result, model_label):
    """Put fetched directions into the scene: update those with the same id in place (their
    amount and keys stay), add new ones at the end. Returns (updated, added) counts."""
    items = scene.latent_directions
    by_id = {item.direction_id: item for item in items}
    updated = added = 0
    for d in result["directions"]:
        item = by_id.get(d["id"])
        if item is None:
            item = items.add()
            item.direction_id = d["id"]
            added += 1
        else:
            updated += 1
        item.name = label_of(d["id"])
        item.layer_start, item.layer_end = d["layers"]
        item.preview = d["preview"]
        item.model = model_label
        _reload_preview(d["preview"])
    return updated, added


def _channelbag(scene):
    """The F-curves of the scene's action for the scene's slot (Blender 5.0 layered actions)."""
    ad = scene.animation_data
    if ad is None or ad.action is None:
        return None
    try:
        from bpy_extras import anim_utils

        return anim_utils.action_get_channelbag_for_slot(ad.action, ad.action_slot)
    except (ImportError, AttributeError):
        return None


def amount_curve(scene, index):
    bag = _channelbag(scene)
    return bag.fcurves.find(PATH.format(index)) if bag is not None else None


def remove(scene, index):
    """Remove direction `index` with its keys; later directions keep theirs (their F-curves
    move down one place with them)."""
    items = scene.latent_directions
    if not 0 <= index < len(items):
        raise IndexError(index)
    bag = _channelbag(scene)
    if bag is not None:
        own = bag.fcurves.find(PATH.format(index))
        if own is not None:
            bag.fcurves.remove(own)
        for later in range(index + 1, len(items)):
            fc = bag.fcurves.find(PATH.format(later))
            if fc is not None:
                fc.data_path = PATH.format(later - 1)
    drivers = scene.animation_data.drivers if scene.animation_data is not None else None
    if drivers is not None:
        own = drivers.find(PATH.format(index))
        if own is not None:
            drivers.remove(own)
        for later in range(index + 1, len(items)):
            fc = drivers.find(PATH.format(later))
            if fc is not None:
                fc.data_path = PATH.format(later - 1)
    items.remove(index)


# -- sampling ----------------------------------------------------------------------------

def _needs_scene_evaluation(scene):
    """True when something besides the action's own F-curves can set an amount."""
    ad = scene.animation_data
    if ad is None:
        return False
    if any(not track.mute for track in ad.nla_tracks):
        return True
    return any(fc.data_path.startswith("latent_directions[") for fc in ad.drivers)


def sample(scene, frame_start, frame_end):
    """[(label, direction id, [amount on each frame])] for every direction of the scene."""
    items = scene.latent_directions
    frames = range(frame_start, frame_end + 1)
    if not len(items):
        return []
    if _needs_scene_evaluation(scene):
        values = [[] for _ in items]
        current, subframe = scene.frame_current, scene.frame_subframe
        try:
            for frame in frames:
                scene.frame_set(frame)
                for i, item in enumerate(items):
                    values[i].append(item.amount)
        finally:
            scene.frame_set(current, subframe=subframe)
        return [(item.name, item.direction_id, values[i]) for i, item in enumerate(items)]
    out = []
    for i, item in enumerate(items):
        fc = amount_curve(scene, i)
        if fc is not None and not fc.mute and len(fc.keyframe_points):
            # clamped to the property's range, as Blender clamps the value it shows on each frame
            amounts = [min(max(fc.evaluate(frame), -LIMIT), LIMIT) for frame in frames]
        else:
            amounts = [item.amount] * len(frames)
        out.append((item.name, item.direction_id, amounts))
    return out


def walk_fields(scene, frame_start, frame_end):
    """What a walk body gains from the scene's directions: {"directions": [...]}, or {} when
    none moves (DirectionsError, a WalkError, when an amount is out of range)."""
    payload = walk_directions(sample(scene, frame_start, frame_end), frame_start, frame_end)
    return {"directions": payload} if payload else {}


# -- preview strips ----------------------------------------------------------------------

def _reload_preview(path):
    pcoll = _previews["collection"]
    if pcoll is not None and path and os.path.isfile(path):
        if path in pcoll:
            pcoll[path].reload()
        else:
            pcoll.load(path, path, "IMAGE")


def preview_icon(item):
    """The icon id of a direction's preview strip (0: none on disk)."""
    pcoll, path = _previews["collection"], item.preview
    if pcoll is None or not path:
        return 0
    if path not in pcoll:
        if not os.path.isfile(path):
            return 0
        pcoll.load(path, path, "IMAGE")
    return pcoll[path].icon_id


_classes = (LATENT_PG_direction, LATENT_PG_direction_options)


def register():
    import bpy.utils.previews

    for cls in _classes:
        bpy.utils.register_class(cls)
    bpy.types.Scene.latent_directions = CollectionProperty(type=LATENT_PG_direction)
    bpy.types.Scene.latent_direction_options = PointerProperty(type=LATENT_PG_direction_options)
    _previews["collection"] = bpy.utils.previews.new()


def unregister():
    import bpy.utils.previews

    if _previews["collection"] is not None:
        bpy.utils.previews.remove(_previews["collection"])
        _previews["collection"] = None
    del bpy.types.Scene.latent_direction_options
    del bpy.types.Scene.latent_directions
    for cls in reversed(_classes):
        bpy.utils.unregister_class(cls)
