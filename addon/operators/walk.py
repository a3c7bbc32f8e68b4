"""Latent-walk waypoints and baking a walk into an image sequence on a material."""

from __future__ import annotations

import bpy
from bpy.props import IntProperty

import os

from .. import bridge, materials, storage, walks
from ..core import limits, work
from ..core.formatting import model_label, safe_name
from ..core.walks import WalkError
from .base import Refused, ServerOperator, grey_out, model_problem, model_ref, scene_from


class LATENT_OT_add_waypoint(bpy.types.Operator):
    """Add a waypoint at the current frame (keyframed: move its key to re-time the walk)"""

    bl_idname = "latent.add_waypoint"
    bl_label = "Add Waypoint"
    bl_options = {"REGISTER", "UNDO"}

    seed: IntProperty(name="Seed", default=-1, description="-1 uses the Generate seed")

    def execute(self, context):
        scene = context.scene
        seed = self.seed if self.seed >= 0 else scene.latent.gen_seed
        try:
            walks.add_waypoint(scene, scene.frame_current, seed)
        except WalkError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        return {"FINISHED"}


class LATENT_OT_remove_waypoint(bpy.types.Operator):
    """Remove the selected waypoint and its keyframe"""

    bl_idname = "latent.remove_waypoint"
    bl_label = "Remove Waypoint"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        s = context.scene.latent
        return grey_out(cls, None if 0 <= s.waypoint_index < len(s.waypoints) else "Select a waypoint to remove")

    def execute(self, context):
        try:
            walks.remove_waypoint(context.scene, context.scene.latent.waypoint_index)
        except WalkError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        return {"FINISHED"}


class LATENT_OT_bake_walk(ServerOperator, bpy.types.Operator):
    """Render one image per scene frame along the waypoints and load them as an image sequence"""

    bl_idname = "latent.bake_walk"
    bl_label = "Bake Walk"

    long_timeout = 300.0  # the frames zip of a long walk is large

    @classmethod
    def unavailable(cls, context):
        s = context.scene.latent
        if len(s.waypoints) < limits.MIN_WALK_WAYPOINTS:
            return (f"A walk needs at least {limits.MIN_WALK_WAYPOINTS} waypoints at different frames "
                    "(Latent Walk > +)")
        if not materials.target_objects(context, s.material.all_selected):
            return "Select the object whose material should show the walk"
        if storage.base_folder(context.scene) is None:
            return storage.NEEDS_FOLDER
        return model_problem(s)

    def plan(self, context):
        # the objects as they are now (poll() made sure there is one): the frames land on them
        objects = materials.target_objects(context, context.scene.latent.material.all_selected)
        model = model_ref(context.scene.latent)
        try:
            body = walks.walk_request(context.scene, model)
        except WalkError as exc:
            raise Refused(str(exc)) from None
        return objects, body

    def start(self, context, client, plan):
        objects, body = plan
        scene = context.scene
        # every bake gets a folder of its own beside this .blend: no other walk, and no
        # other .blend in the same folder, ever reads or replaces these frames
        try:
            out_dir = storage.new_folder("walks", safe_name(scene.name), scene)
        except storage.NoFolder as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        bridge.runner.submit("bake_walk", work.bake_walk, client, body, out_dir, "walk", label="Bake walk",
                             context={"scene": scene.name, "objects": objects, "frame_start": body["frame_start"],
                                      "folder": out_dir},
                             on_result=_walk_baked, on_error=_walk_not_baked, on_cancelled=_walk_not_baked)
        return {"FINISHED"}


def _walk_baked(msg):
    p = msg.payload
    name = f"Latent Walk {os.path.basename(p['folder'])}"
    img = storage.keep_image(bridge.load_image(p["files"][0], name), pack=False)
    img.source = "SEQUENCE"
    settings = scene_from(msg).latent
    # the material options as they are when the frames arrive, like Apply to Material
    _mats, note = materials.apply_to_objects(msg.context["objects"], materials.setup_sequence, img.name,
                                             msg.context["frame_start"], p["count"], p["first"],
                                             options=materials.options_from(settings.material))
    scene_from(msg).latent.walk_image = img.name
    scene_from(msg).latent.walk_id = str(p["walk_id"])  # its server copy can be deleted now
    bridge.notify("INFO", f"Walk baked from {model_label(p['model'])}: {p['count']} frames in {p['folder']}"
                  + (f" ({note})" if note else ""))


def _walk_not_baked(msg):
    """The bake's own folder, made for it a moment ago, goes if nothing landed in it."""
    folder = msg.context["folder"]
    if os.path.isdir(folder) and not os.listdir(folder):
        os.rmdir(folder)
    bridge.notify("ERROR" if msg.kind == "error" else "WARNING", msg.payload["message"])


classes = (LATENT_OT_add_waypoint, LATENT_OT_remove_waypoint, LATENT_OT_bake_walk)
